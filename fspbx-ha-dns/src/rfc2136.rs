//! RFC 2136 dynamic updates signed with TSIG (RFC 8945), through hickory.
//!
//! Works with BIND, Knot, PowerDNS and the many hosts that accept dynamic updates. The
//! compare-and-swap guard is an update *prerequisite* (RFC 2136 §2.4), so the server checks it
//! and applies the change in one step: this provider's CAS is atomic.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use fspbx_ha_secret::Secret;
use hickory_net::NetError;
use hickory_net::proto::ProtoError;
use hickory_net::proto::op::{Message, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_net::proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_net::proto::rr::rdata::{A, AAAA};
use hickory_net::proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};

use crate::error::{Error, Result};
use crate::propagation::{parse_name, record_type};
use crate::provider::{DnsProvider, wait_until_read_back};
use crate::record::{
    Capabilities, Change, ChangeReceipt, Expected, RecordKind, RecordSet, fqdn, fqdn_in_zone,
    normalize_values,
};
use crate::wire;

const PROVIDER: &str = "rfc2136";

/// TSIG algorithms hickory can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TsigAlg {
    /// `hmac-sha256` (the default).
    HmacSha256,
    /// `hmac-sha384`.
    HmacSha384,
    /// `hmac-sha512`.
    HmacSha512,
}

impl TsigAlg {
    fn hickory(self) -> TsigAlgorithm {
        match self {
            TsigAlg::HmacSha256 => TsigAlgorithm::HmacSha256,
            TsigAlg::HmacSha384 => TsigAlgorithm::HmacSha384,
            TsigAlg::HmacSha512 => TsigAlgorithm::HmacSha512,
        }
    }
}

impl FromStr for TsigAlg {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().trim_end_matches('.') {
            "hmac-sha256" => Ok(TsigAlg::HmacSha256),
            "hmac-sha384" => Ok(TsigAlg::HmacSha384),
            "hmac-sha512" => Ok(TsigAlg::HmacSha512),
            _ => Err(Error::InvalidInput {
                field: "algorithm",
                value: s.to_string(),
                reason: "use hmac-sha256, hmac-sha384 or hmac-sha512".into(),
            }),
        }
    }
}

impl fmt::Display for TsigAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TsigAlg::HmacSha256 => "hmac-sha256",
            TsigAlg::HmacSha384 => "hmac-sha384",
            TsigAlg::HmacSha512 => "hmac-sha512",
        })
    }
}

/// A TSIG key: its name, algorithm and base64 secret (as `keymgr -t` or `tsig-keygen` print it).
#[derive(Debug, Clone)]
pub struct TsigKey {
    /// Key name, as the server knows it.
    pub name: String,
    /// Algorithm.
    pub algorithm: TsigAlg,
    /// The base64 secret.
    pub secret: Secret,
}

struct Signing {
    key_name: String,
    signer: TSigner,
}

/// The RFC 2136 provider: one primary server, one zone, an optional TSIG key.
pub struct Rfc2136 {
    server: SocketAddr,
    zone: String,
    zone_name: Name,
    signing: Option<Signing>,
    timeout: Duration,
}

impl fmt::Debug for Rfc2136 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rfc2136")
            .field("server", &self.server)
            .field("zone", &self.zone)
            .field("key_name", &self.signing.as_ref().map(|s| &s.key_name))
            .finish_non_exhaustive()
    }
}

impl Rfc2136 {
    /// A provider updating `zone` on the primary `server`, signing with `key` (no key: updates
    /// are sent unsigned, which servers normally refuse).
    pub fn new(server: SocketAddr, zone: &str, key: Option<TsigKey>) -> Result<Self> {
        let zone = fqdn(zone);
        let zone_name = parse_name(&zone)?;
        let signing =
            match key {
                None => None,
                Some(k) => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(k.secret.expose().trim())
                        .map_err(|_| Error::InvalidInput {
                            field: "key_secret",
                            value: "<redacted>".into(),
                            reason: "the TSIG secret must be base64, as printed by `keymgr -t` or \
                                 `tsig-keygen`"
                                .into(),
                        })?;
                    let key_name = parse_name(&k.name)?;
                    let signer = TSigner::new(bytes, k.algorithm.hickory(), key_name, 300)
                        .map_err(|e| Error::InvalidInput {
                            field: "algorithm",
                            value: k.algorithm.to_string(),
                            reason: e.to_string(),
                        })?;
                    Some(Signing {
                        key_name: k.name,
                        signer,
                    })
                }
            };
        Ok(Rfc2136 {
            server,
            zone,
            zone_name,
            signing,
            timeout: Duration::from_secs(3),
        })
    }

    /// Sets the timeout of one exchange (default 3 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The primary server updates go to.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    async fn read(&self, name: &str, kind: RecordKind) -> Result<Option<RecordSet>> {
        let fq = fqdn(name);
        let qname = parse_name(&fq)?;
        let resp = wire::exchange(
            self.server,
            wire::query_message(qname, record_type(kind), false),
            None,
            self.timeout,
            2,
        )
        .await
        .map_err(|e| self.net_error(e))?;
        let rcode = resp.metadata.response_code;
        match rcode {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            ResponseCode::Refused | ResponseCode::NotAuth => {
                return Err(self.zone_not_served());
            }
            other => {
                return Err(Error::DnsRcode {
                    server: self.server,
                    name: fq,
                    rcode: rcode_name(other),
                });
            }
        }
        if !resp.metadata.authoritative {
            return Err(self.zone_not_served());
        }
        records_from_answers(&fq, kind, &resp.answers)
    }

    fn zone_not_served(&self) -> Error {
        Error::ZoneNotFound {
            provider: PROVIDER,
            zone: self.zone.clone(),
            hint: Some(format!(
                "{} does not answer authoritatively for it; point `server` at the zone's primary",
                self.server
            )),
        }
    }

    fn net_error(&self, e: NetError) -> Error {
        if let Some(s) = &self.signing
            && is_tsig_failure(&e)
        {
            return Error::TsigRejected {
                server: self.server,
                key_name: s.key_name.clone(),
                detail: "the reply was not signed with our key (BADSIG/BADKEY)".into(),
            };
        }
        match e {
            NetError::Timeout => Error::Timeout {
                provider: PROVIDER,
                what: format!("DNS exchange with {}", self.server),
                after: self.timeout,
            },
            other => Error::Dns {
                server: self.server,
                detail: other.to_string(),
            },
        }
    }
}

/// The RFC mnemonic of a response code (`NOTAUTH`, `NXRRSET`, …).
pub(crate) fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::YXRRSet => "YXRRSET".into(),
        ResponseCode::NXRRSet => "NXRRSET".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        ResponseCode::NotZone => "NOTZONE".into(),
        ResponseCode::BADSIG => "BADSIG".into(),
        ResponseCode::BADKEY => "BADKEY".into(),
        ResponseCode::BADTIME => "BADTIME".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

/// hickory stringifies TSIG verification failures into a protocol message; a server that
/// refuses the key answers NOTAUTH with an empty MAC, which fails verification.
fn is_tsig_failure(e: &NetError) -> bool {
    match e {
        NetError::Proto(ProtoError::Msg(m)) => {
            let m = m.to_ascii_lowercase();
            m.contains("hmac") || m.contains("tsig")
        }
        NetError::Proto(ProtoError::Message(m)) => m.to_ascii_lowercase().contains("tsig"),
        _ => false,
    }
}

/// Turns the answer section into a record set, refusing a CNAME in the way.
fn records_from_answers(
    fq: &str,
    kind: RecordKind,
    answers: &[Record],
) -> Result<Option<RecordSet>> {
    let mut ttl: Option<u32> = None;
    let mut values = vec![];
    for r in answers {
        let ip = match (&r.data, kind) {
            (RData::A(a), RecordKind::A) => IpAddr::V4(a.0),
            (RData::AAAA(a), RecordKind::Aaaa) => IpAddr::V6(a.0),
            (RData::CNAME(_), _) => {
                return Err(Error::ConflictingRecord {
                    provider: PROVIDER,
                    name: fq.to_string(),
                    kind,
                    found_kind: "CNAME".into(),
                });
            }
            _ => continue,
        };
        ttl = Some(ttl.map_or(r.ttl, |t| t.min(r.ttl)));
        values.push(ip);
    }
    Ok(ttl.map(|ttl| RecordSet {
        name: fq.to_string(),
        kind,
        ttl,
        values: normalize_values(values),
    }))
}

fn rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// Builds the UPDATE message for a validated change: zone section, the CAS prerequisite, the
/// deletion of the whole RRset and the new records — applied by the server all or nothing.
pub(crate) fn update_message(zone: &Name, change: &Change) -> Result<Message> {
    let name = parse_name(&change.name)?;
    let rtype = record_type(change.kind);
    let mut m = Message::query();
    m.metadata.op_code = OpCode::Update;
    m.metadata.recursion_desired = false;
    let mut zq = Query::new();
    zq.set_name(zone.clone())
        .set_query_class(DNSClass::IN)
        .set_query_type(RecordType::SOA);
    m.add_zone(zq);
    // §2.4.3 for CNAME: a server silently ignores A/AAAA added beside a CNAME, so a CNAME in
    // the way must fail the update (YXRRSET) instead of "succeeding" without effect.
    let mut no_cname = Record::update0(name.clone(), 0, RecordType::CNAME);
    no_cname.dns_class = DNSClass::NONE;
    m.add_pre_requisite(no_cname);
    match &change.expect {
        None => {}
        // RFC 2136 §2.4.3: RRset does not exist (class NONE, empty rdata).
        Some(Expected::Absent) => {
            let mut r = Record::update0(name.clone(), 0, rtype);
            r.dns_class = DNSClass::NONE;
            m.add_pre_requisite(r);
        }
        // §2.4.2: RRset exists, value dependent (class IN, TTL 0, the full set).
        Some(Expected::Values(values)) => {
            for ip in values {
                m.add_pre_requisite(Record::from_rdata(name.clone(), 0, rdata(*ip)));
            }
        }
    }
    // §2.5.2: delete the RRset (class ANY, empty rdata), then §2.5.1: add the new records.
    let mut del = Record::update0(name.clone(), 0, rtype);
    del.dns_class = DNSClass::ANY;
    m.add_update(del);
    for ip in &change.values {
        m.add_update(Record::from_rdata(name.clone(), change.ttl, rdata(*ip)));
    }
    Ok(m)
}

#[async_trait]
impl DnsProvider for Rfc2136 {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn zone(&self) -> &str {
        &self.zone
    }

    async fn get(&self, name: &str, kind: RecordKind) -> Result<Option<RecordSet>> {
        let fq = fqdn_in_zone(name, &self.zone)?;
        self.read(&fq, kind).await
    }

    async fn set(&self, change: &Change) -> Result<ChangeReceipt> {
        let change = change.validated(&self.zone)?;
        let message = update_message(&self.zone_name, &change)?;
        let signer = self.signing.as_ref().map(|s| s.signer.clone());
        let resp = wire::exchange(self.server, message, signer, self.timeout, 0)
            .await
            .map_err(|e| self.net_error(e))?;
        let rcode = resp.metadata.response_code;
        tracing::debug!(server = %self.server, name = %change.name, %rcode, "rfc2136 update");
        match rcode {
            ResponseCode::NoError => Ok(ChangeReceipt::accepted(PROVIDER, None, &change)),
            ResponseCode::NXRRSet | ResponseCode::YXRRSet | ResponseCode::NXDomain => {
                // Reading also reports a CNAME in the way (ConflictingRecord).
                let found = self.read(&change.name, change.kind).await?;
                Err(Error::cas_mismatch(PROVIDER, &change, found))
            }
            ResponseCode::NotAuth | ResponseCode::BADSIG | ResponseCode::BADKEY => {
                match &self.signing {
                    Some(s) => Err(Error::TsigRejected {
                        server: self.server,
                        key_name: s.key_name.clone(),
                        detail: rcode_name(rcode),
                    }),
                    None => Err(Error::UpdateRefused {
                        server: self.server,
                        name: change.name.clone(),
                        rcode: rcode_name(rcode),
                        hint: Some(
                            "the update was unsigned: configure key_name and key_secret (TSIG)"
                                .into(),
                        ),
                    }),
                }
            }
            ResponseCode::NotZone => Err(Error::NameNotInZone {
                name: change.name.clone(),
                zone: self.zone.clone(),
            }),
            ResponseCode::Refused => Err(Error::UpdateRefused {
                server: self.server,
                name: change.name.clone(),
                rcode: rcode_name(rcode),
                hint: Some("the server's ACL does not allow this key to update this zone".into()),
            }),
            other => Err(Error::UpdateRefused {
                server: self.server,
                name: change.name.clone(),
                rcode: rcode_name(other),
                hint: None,
            }),
        }
    }

    async fn wait_applied(&self, receipt: &ChangeReceipt, timeout: Duration) -> Result<()> {
        // The primary applies an update before it answers; reading it back confirms it serves
        // the new data (and catches a server that answered NOERROR without applying).
        wait_until_read_back(
            PROVIDER,
            receipt,
            timeout,
            Duration::from_millis(50),
            || format!("{} serving {}", self.server, receipt.record),
            || self.read(&receipt.record.name, receipt.record.kind),
        )
        .await
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic_cas: true,
            min_ttl: 0,
            change_tracking: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(expect: Option<Expected>) -> Change {
        let mut c = Change::set(
            "pbx.example.test",
            RecordKind::A,
            30,
            vec!["10.0.0.3".parse().unwrap()],
        );
        c.expect = expect;
        c.validated("example.test").unwrap()
    }

    #[test]
    fn cas_update_carries_value_dependent_prerequisite() {
        let zone = Name::from_ascii("example.test.").unwrap();
        let m = update_message(
            &zone,
            &change(Some(Expected::Values(vec!["10.0.0.2".parse().unwrap()]))),
        )
        .unwrap();
        assert_eq!(m.metadata.op_code, OpCode::Update);
        let pre = m.prerequisites();
        assert_eq!(pre.len(), 2);
        assert_eq!(pre[0].dns_class, DNSClass::NONE);
        assert_eq!(pre[0].data, RData::Update0(RecordType::CNAME));
        assert_eq!(pre[1].dns_class, DNSClass::IN);
        assert_eq!(pre[1].ttl, 0);
        assert_eq!(pre[1].data, RData::A(A("10.0.0.2".parse().unwrap())));
        let up = m.updates();
        assert_eq!(up.len(), 2);
        assert_eq!(up[0].dns_class, DNSClass::ANY);
        assert_eq!(up[1].ttl, 30);
        assert_eq!(up[1].data, RData::A(A("10.0.0.3".parse().unwrap())));
    }

    #[test]
    fn absent_guard_is_rrset_does_not_exist() {
        let zone = Name::from_ascii("example.test.").unwrap();
        let m = update_message(&zone, &change(Some(Expected::Absent))).unwrap();
        let pre = m.prerequisites();
        assert_eq!(pre.len(), 2);
        assert_eq!(pre[1].dns_class, DNSClass::NONE);
        assert_eq!(pre[1].data, RData::Update0(RecordType::A));
        let m = update_message(&zone, &change(None)).unwrap();
        assert_eq!(m.prerequisites().len(), 1, "only the no-CNAME guard");
    }

    #[test]
    fn bad_secret_is_refused_without_echo() {
        let err = Rfc2136::new(
            "127.0.0.1:53".parse().unwrap(),
            "example.test",
            Some(TsigKey {
                name: "k".into(),
                algorithm: TsigAlg::HmacSha256,
                secret: Secret::new("not base64 !!! s3cr3t"),
            }),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("key_secret"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn cname_in_the_way_is_reported() {
        let cname = Record::from_rdata(
            Name::from_ascii("pbx.example.test.").unwrap(),
            60,
            RData::CNAME(hickory_net::proto::rr::rdata::CNAME(
                Name::from_ascii("other.example.test.").unwrap(),
            )),
        );
        let err = records_from_answers("pbx.example.test.", RecordKind::A, &[cname]).unwrap_err();
        assert!(matches!(err, Error::ConflictingRecord { .. }), "{err}");
    }
}
