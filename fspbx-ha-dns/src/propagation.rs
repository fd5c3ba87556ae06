//! Propagation checks: ask every authoritative server directly, without any cache, what it
//! answers for a name, and decide whether the world has moved.
//!
//! The verdict and the TTL arithmetic are pure functions ([`verdict`], [`clients_moved_by`]); the
//! [`Checker`] does the queries.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use hickory_net::proto::op::ResponseCode;
use hickory_net::proto::rr::{Name, RData, RecordType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::record::{RecordKind, fqdn, normalize_values};
use crate::wire;

/// What one authoritative server answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerAnswer {
    /// The server asked.
    pub server: SocketAddr,
    /// What it said about the record.
    pub outcome: Outcome,
    /// The zone's SOA serial on that server, when it answered the SOA query.
    pub soa_serial: Option<u32>,
    /// Round-trip time of the record query.
    #[serde(with = "millis")]
    pub rtt: Duration,
}

/// The answer of one server for one name and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The server is authoritative and holds these records.
    Records {
        /// TTL it hands out.
        ttl: u32,
        /// The addresses, sorted.
        values: Vec<IpAddr>,
    },
    /// The name exists but has no record of this kind.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// The server answered without the authoritative flag (it does not serve the zone).
    NotAuthoritative,
    /// The server did not answer usefully.
    Failed {
        /// What went wrong (timeout, rcode, …).
        detail: String,
    },
}

/// Which servers already answer the wanted value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Servers answering exactly the wanted values.
    pub moved: Vec<SocketAddr>,
    /// Servers answering something else (old value, no record, not authoritative).
    pub lagging: Vec<SocketAddr>,
    /// Servers that did not answer.
    pub unreachable: Vec<SocketAddr>,
}

impl Verdict {
    /// True when every server asked answers the wanted values.
    pub fn all_moved(&self) -> bool {
        !self.moved.is_empty() && self.lagging.is_empty() && self.unreachable.is_empty()
    }
}

/// Sorts the answers into moved / lagging / unreachable for the wanted values. An empty `want`
/// means "the record is gone" (NODATA or NXDOMAIN count as moved).
pub fn verdict(want: &[IpAddr], answers: &[ServerAnswer]) -> Verdict {
    let want = normalize_values(want.to_vec());
    let mut v = Verdict {
        moved: vec![],
        lagging: vec![],
        unreachable: vec![],
    };
    for a in answers {
        let moved = match &a.outcome {
            Outcome::Records { values, .. } => *values == want,
            Outcome::NoData | Outcome::NxDomain => want.is_empty(),
            Outcome::NotAuthoritative => false,
            Outcome::Failed { .. } => {
                v.unreachable.push(a.server);
                continue;
            }
        };
        if moved {
            v.moved.push(a.server);
        } else {
            v.lagging.push(a.server);
        }
    }
    v
}

/// When clients that cached the old answer will have moved: a resolver may have fetched the old
/// record just before the last authoritative server switched, and keeps it for `old_ttl`
/// seconds.
pub fn clients_moved_by(servers_moved_at: SystemTime, old_ttl: u32) -> SystemTime {
    servers_moved_at + Duration::from_secs(u64::from(old_ttl))
}

/// The largest TTL among answers that still carry other values than `want`: how long a client
/// may keep the old answer.
pub fn old_ttl(want: &[IpAddr], answers: &[ServerAnswer]) -> Option<u32> {
    let want = normalize_values(want.to_vec());
    answers
        .iter()
        .filter_map(|a| match &a.outcome {
            Outcome::Records { ttl, values } if *values != want => Some(*ttl),
            _ => None,
        })
        .max()
}

/// The result of [`Checker::wait_for`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropagationReport {
    /// Name checked (FQDN).
    pub name: String,
    /// Kind checked.
    pub kind: RecordKind,
    /// Values waited for.
    pub want: Vec<IpAddr>,
    /// The last answer of every server.
    pub answers: Vec<ServerAnswer>,
    /// The verdict on those answers.
    pub verdict: Verdict,
    /// How long it took until every server answered `want` (or until giving up).
    #[serde(with = "millis")]
    pub waited: Duration,
    /// The largest TTL an old answer was seen with during the wait (or the one given).
    pub old_ttl: Option<u32>,
    /// When every authoritative server answered the new value.
    pub servers_moved_at: Option<SystemTime>,
    /// When clients holding the old answer will have moved (`servers_moved_at` + `old_ttl`);
    /// `None` when the servers have not all moved, or the old TTL is unknown (given by nobody and
    /// not seen during the wait).
    pub clients_moved_by: Option<SystemTime>,
}

/// Queries a fixed list of authoritative servers directly.
#[derive(Debug, Clone)]
pub struct Checker {
    servers: Vec<SocketAddr>,
    zone: String,
    timeout: Duration,
}

impl Checker {
    /// A checker for `zone` asking `servers` (authoritative servers, any port).
    pub fn new(zone: &str, servers: Vec<SocketAddr>) -> Result<Self> {
        if servers.is_empty() {
            return Err(Error::InvalidInput {
                field: "servers",
                value: String::new(),
                reason: "give at least one authoritative server (host:port)".into(),
            });
        }
        Ok(Checker {
            servers,
            zone: fqdn(zone),
            timeout: Duration::from_secs(2),
        })
    }

    /// Finds the zone's authoritative servers by asking `bootstrap` (an authoritative server of
    /// the zone, or a recursive resolver) for the zone's NS records and their addresses; every
    /// address found is used with `port`.
    pub async fn discover(zone: &str, bootstrap: SocketAddr, port: u16) -> Result<Self> {
        let zone_name = parse_name(&fqdn(zone))?;
        // A recursive question to the bootstrap server, 2 s per try, 2 re-sends.
        let ask = |name: Name, rtype: RecordType| async move {
            wire::exchange(
                bootstrap,
                wire::query_message(name, rtype, true),
                None,
                Duration::from_secs(2),
                2,
            )
            .await
            .map_err(|e| Error::Dns {
                server: bootstrap,
                detail: e.to_string(),
            })
        };
        let resp = ask(zone_name, RecordType::NS).await?;
        check_rcode(bootstrap, &fqdn(zone), resp.metadata.response_code)?;
        let hosts: Vec<Name> = resp
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(ns) => Some(ns.0.clone()),
                _ => None,
            })
            .collect();
        let mut servers = vec![];
        for host in hosts {
            for rtype in [RecordType::A, RecordType::AAAA] {
                let resp = ask(host.clone(), rtype).await?;
                for r in &resp.answers {
                    let ip = match &r.data {
                        RData::A(a) => IpAddr::V4(a.0),
                        RData::AAAA(a) => IpAddr::V6(a.0),
                        _ => continue,
                    };
                    let sa = SocketAddr::new(ip, port);
                    if !servers.contains(&sa) {
                        servers.push(sa);
                    }
                }
            }
        }
        if servers.is_empty() {
            return Err(Error::ZoneNotFound {
                provider: "propagation",
                zone: fqdn(zone),
                hint: Some(format!(
                    "{bootstrap} listed no NS host with an address: configure the servers explicitly"
                )),
            });
        }
        Checker::new(zone, servers)
    }

    /// The servers to check for `zone`: the `configured` ones (`host[:port]`, from
    /// `floating.nameservers`) if any; else those named by the zone's NS records, asked of
    /// `primary` (the RFC 2136 server, whose port they share) or of the system's first resolver
    /// in /etc/resolv.conf.
    pub async fn for_zone(
        zone: &str,
        configured: &[String],
        primary: Option<SocketAddr>,
    ) -> Result<Self> {
        if !configured.is_empty() {
            let servers = configured
                .iter()
                .map(|s| crate::config::parse_server(s, "floating.nameservers"))
                .collect::<Result<Vec<_>>>()?;
            return Checker::new(zone, servers);
        }
        if let Some(p) = primary {
            return Checker::discover(zone, p, p.port()).await;
        }
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let bootstrap = system_resolver(&resolv).ok_or_else(|| Error::InvalidInput {
            field: "floating.nameservers",
            value: String::new(),
            reason: "no name servers configured and no resolver in /etc/resolv.conf to find \
                     the zone's NS records: list the authoritative servers"
                .into(),
        })?;
        Checker::discover(zone, bootstrap, 53).await
    }

    /// Sets the per-query timeout (default 2 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The servers asked.
    pub fn servers(&self) -> &[SocketAddr] {
        &self.servers
    }

    /// Asks every server once, concurrently.
    pub async fn ask(&self, name: &str, kind: RecordKind) -> Result<Vec<ServerAnswer>> {
        let name = parse_name(&fqdn(name))?;
        let zone = parse_name(&self.zone)?;
        let asks = self
            .servers
            .iter()
            .map(|s| ask_one(*s, name.clone(), kind, zone.clone(), self.timeout));
        Ok(futures_util::future::join_all(asks).await)
    }

    /// Asks all servers every `interval` until they all answer `want`, or `timeout` passes
    /// (then [`Error::Timeout`] is *not* returned: the report says who lags, so the caller can
    /// show it). `known_old_ttl` is the TTL of the record before the change, if the caller knows
    /// it; otherwise the largest TTL seen on an old answer is used.
    pub async fn wait_for(
        &self,
        name: &str,
        kind: RecordKind,
        want: &[IpAddr],
        known_old_ttl: Option<u32>,
        timeout: Duration,
        interval: Duration,
    ) -> Result<PropagationReport> {
        let start = Instant::now();
        let want = normalize_values(want.to_vec());
        let mut seen_old_ttl = known_old_ttl;
        loop {
            let answers = self.ask(name, kind).await?;
            seen_old_ttl = seen_old_ttl.max(old_ttl(&want, &answers));
            let v = verdict(&want, &answers);
            let done = v.all_moved();
            if done || start.elapsed() >= timeout {
                let now = SystemTime::now();
                let servers_moved_at = done.then_some(now);
                return Ok(PropagationReport {
                    name: fqdn(name),
                    kind,
                    want,
                    answers,
                    verdict: v,
                    waited: start.elapsed(),
                    old_ttl: seen_old_ttl,
                    servers_moved_at,
                    clients_moved_by: servers_moved_at
                        .zip(seen_old_ttl)
                        .map(|(t, ttl)| clients_moved_by(t, ttl)),
                });
            }
            tokio::time::sleep(interval).await;
        }
    }
}

async fn ask_one(
    server: SocketAddr,
    name: Name,
    kind: RecordKind,
    zone: Name,
    timeout: Duration,
) -> ServerAnswer {
    let rtype = record_type(kind);
    let started = Instant::now();
    let record = wire::exchange(
        server,
        wire::query_message(name, rtype, false),
        None,
        timeout,
        1,
    )
    .await;
    let rtt = started.elapsed();
    // Asked after the record: the serial is at least the zone version that gave the answer.
    let soa = wire::exchange(
        server,
        wire::query_message(zone, RecordType::SOA, false),
        None,
        timeout,
        1,
    )
    .await;
    let soa_serial = soa.ok().and_then(|r| {
        r.answers.iter().find_map(|rec| match &rec.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
    });
    let outcome = match record {
        Err(e) => Outcome::Failed {
            detail: e.to_string(),
        },
        Ok(resp) => {
            let rcode = resp.metadata.response_code;
            if !resp.metadata.authoritative
                && !matches!(rcode, ResponseCode::ServFail | ResponseCode::Refused)
            {
                Outcome::NotAuthoritative
            } else {
                match rcode {
                    ResponseCode::NoError => {
                        let mut ttl = None;
                        let mut values = vec![];
                        for r in &resp.answers {
                            let ip = match &r.data {
                                RData::A(a) if rtype == RecordType::A => IpAddr::V4(a.0),
                                RData::AAAA(a) if rtype == RecordType::AAAA => IpAddr::V6(a.0),
                                _ => continue,
                            };
                            ttl = Some(ttl.map_or(r.ttl, |t: u32| t.min(r.ttl)));
                            values.push(ip);
                        }
                        match ttl {
                            Some(ttl) => Outcome::Records {
                                ttl,
                                values: normalize_values(values),
                            },
                            None => Outcome::NoData,
                        }
                    }
                    ResponseCode::NXDomain => Outcome::NxDomain,
                    other => Outcome::Failed {
                        detail: format!("rcode {}", crate::rfc2136::rcode_name(other)),
                    },
                }
            }
        }
    };
    ServerAnswer {
        server,
        outcome,
        soa_serial,
        rtt,
    }
}

/// The first `nameserver` of a resolv.conf text.
pub fn system_resolver(resolv_conf: &str) -> Option<SocketAddr> {
    resolv_conf.lines().find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next() == Some("nameserver"))
            .then(|| parts.next()?.parse::<IpAddr>().ok())
            .flatten()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

pub(crate) fn record_type(kind: RecordKind) -> RecordType {
    match kind {
        RecordKind::A => RecordType::A,
        RecordKind::Aaaa => RecordType::AAAA,
    }
}

pub(crate) fn parse_name(name: &str) -> Result<Name> {
    Name::from_ascii(name).map_err(|e| Error::InvalidInput {
        field: "name",
        value: name.to_string(),
        reason: e.to_string(),
    })
}

fn check_rcode(server: SocketAddr, name: &str, rcode: ResponseCode) -> Result<()> {
    if rcode == ResponseCode::NoError {
        Ok(())
    } else {
        Err(Error::DnsRcode {
            server,
            name: name.to_string(),
            rcode: crate::rfc2136::rcode_name(rcode),
        })
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn ans(server: &str, outcome: Outcome) -> ServerAnswer {
        ServerAnswer {
            server: sa(server),
            outcome,
            soa_serial: Some(1),
            rtt: Duration::from_millis(1),
        }
    }

    fn rec(ttl: u32, v: &[&str]) -> Outcome {
        Outcome::Records {
            ttl,
            values: v.iter().map(|x| x.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn verdict_sorts_servers() {
        let want: Vec<IpAddr> = vec!["10.0.0.3".parse().unwrap()];
        let answers = vec![
            ans("127.0.0.53:53", rec(60, &["10.0.0.3"])),
            ans("127.0.0.54:53", rec(300, &["10.0.0.2"])),
            ans(
                "127.0.0.55:53",
                Outcome::Failed {
                    detail: "timeout".into(),
                },
            ),
            ans("127.0.0.56:53", Outcome::NotAuthoritative),
        ];
        let v = verdict(&want, &answers);
        assert_eq!(v.moved, vec![sa("127.0.0.53:53")]);
        assert_eq!(v.lagging, vec![sa("127.0.0.54:53"), sa("127.0.0.56:53")]);
        assert_eq!(v.unreachable, vec![sa("127.0.0.55:53")]);
        assert!(!v.all_moved());
        assert_eq!(old_ttl(&want, &answers), Some(300));
        assert!(verdict(&want, &answers[..1]).all_moved());
        // Nobody asked is not "all moved".
        assert!(!verdict(&want, &[]).all_moved());
    }

    #[test]
    fn deletion_counts_nodata_as_moved() {
        let v = verdict(
            &[],
            &[
                ans("127.0.0.53:53", Outcome::NoData),
                ans("127.0.0.54:53", Outcome::NxDomain),
            ],
        );
        assert!(v.all_moved());
    }

    #[test]
    fn resolv_conf_first_nameserver() {
        let text =
            "# generated\nsearch example.com\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n";
        assert_eq!(system_resolver(text), Some(sa("192.0.2.53:53")));
        assert_eq!(system_resolver("nameserver bogus\n"), None);
    }

    #[test]
    fn clients_move_one_old_ttl_after_the_servers() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            clients_moved_by(t, 60),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1060)
        );
    }
}
