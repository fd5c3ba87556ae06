//! Amazon Route53 (API 2013-04-01): SigV4-signed XML over HTTPS.
//!
//! Compare-and-swap is one `ChangeResourceRecordSets` batch holding `DELETE` of the current record
//! set (exact TTL and values) and `CREATE` of the new one: Route53 applies a batch all or
//! nothing and refuses a DELETE that does not match, so the guard is enforced by the server. A
//! plain set is an `UPSERT`. `GetChange` is polled until `INSYNC`. Throttling and
//! `PriorRequestNotComplete` are retried with backoff.

pub mod sign;
mod xml;

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use fspbx_ha_secret::Secret;
use reqwest::{Method, StatusCode};
use tokio::sync::OnceCell;
use url::Url;

use crate::cas::{self, Decision};
use crate::error::{Error, Result};
use crate::http;
use crate::provider::DnsProvider;
use crate::record::{
    Capabilities, Change, ChangeReceipt, RecordKind, RecordSet, fqdn, fqdn_in_zone,
    normalize_values,
};
use crate::retry::Backoff;

const PROVIDER: &str = "route53";
const DEFAULT_ENDPOINT: &str = "https://route53.amazonaws.com";

/// Settings of a [`Route53`] provider.
#[derive(Debug, Clone)]
pub struct Route53Config {
    /// The zone (`example.com`).
    pub zone: String,
    /// AWS access key id.
    pub access_key_id: String,
    /// AWS secret access key.
    pub secret_access_key: Secret,
    /// Hosted zone id; found by name when not given.
    pub hosted_zone_id: Option<String>,
    /// API endpoint (default `https://route53.amazonaws.com`; the lab points it at moto).
    pub endpoint: Option<Url>,
    /// Signing region (default `us-east-1`, Route53's global region).
    pub region: Option<String>,
}

/// The Route53 provider.
pub struct Route53 {
    http: reqwest::Client,
    endpoint: Url,
    region: String,
    access_key_id: String,
    secret: Secret,
    zone: String,
    zone_id: OnceCell<String>,
    backoff: Backoff,
    poll: Duration,
}

impl fmt::Debug for Route53 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route53")
            .field("endpoint", &self.endpoint.as_str())
            .field("zone", &self.zone)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A failed API call, before it is turned into an [`Error`] (the caller decides what an
/// `InvalidChangeBatch` means).
struct ApiFailure {
    status: StatusCode,
    code: String,
    message: String,
}

impl Route53 {
    /// Builds the provider. No request is made until the first call.
    pub fn new(cfg: Route53Config) -> Result<Self> {
        let endpoint = match cfg.endpoint {
            Some(u) => u,
            None => Url::parse(DEFAULT_ENDPOINT).map_err(|e| Error::InvalidInput {
                field: "endpoint",
                value: DEFAULT_ENDPOINT.into(),
                reason: e.to_string(),
            })?,
        };
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(Error::InvalidInput {
                field: "endpoint",
                value: endpoint.to_string(),
                reason: "must be an http(s) URL with a host".into(),
            });
        }
        if cfg.access_key_id.trim().is_empty() {
            return Err(Error::InvalidInput {
                field: "access_key_id",
                value: String::new(),
                reason: "set the AWS access key id".into(),
            });
        }
        let http = http::client(PROVIDER, endpoint.as_str())?;
        let zone_id = OnceCell::new();
        if let Some(id) = cfg.hosted_zone_id {
            let id = id.trim_start_matches("/hostedzone/").to_string();
            let _ = zone_id.set(id);
        }
        Ok(Route53 {
            http,
            endpoint,
            region: cfg.region.unwrap_or_else(|| "us-east-1".into()),
            access_key_id: cfg.access_key_id,
            secret: cfg.secret_access_key,
            zone: fqdn(&cfg.zone),
            zone_id,
            backoff: Backoff::default(),
            poll: Duration::from_secs(2),
        })
    }

    /// Sets the retry policy for throttling.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets how often `GetChange` is polled (default 2 s).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The hosted zone id, looked up by name on first use (`ListHostedZonesByName`).
    pub async fn hosted_zone_id(&self) -> Result<&str> {
        self.zone_id
            .get_or_try_init(|| async {
                let path = "/2013-04-01/hostedzonesbyname";
                let query = [("dnsname", self.zone.as_str()), ("maxitems", "1")];
                let body = self
                    .call(Method::GET, path, &query, None)
                    .await?
                    .map_err(|f| self.api_error(f))?;
                let list: xml::ListHostedZonesByName = parse(&body)?;
                list.HostedZones
                    .HostedZone
                    .into_iter()
                    .find(|z| fqdn(&z.Name) == self.zone)
                    .map(|z| z.Id.trim_start_matches("/hostedzone/").to_string())
                    .ok_or_else(|| Error::ZoneNotFound {
                        provider: PROVIDER,
                        zone: self.zone.clone(),
                        hint: Some(
                            "no hosted zone of that name is visible to this key; set \
                             hosted_zone_id or check the key's permissions"
                                .into(),
                        ),
                    })
            })
            .await
            .map(String::as_str)
    }

    /// Sends one signed request, retrying throttling. `Ok(Err(..))` is an API error the caller
    /// interprets.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<std::result::Result<String, ApiFailure>> {
        let mut url = self.endpoint.clone();
        url.set_path(path);
        if query.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(query);
        }
        let body = body.unwrap_or_default();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let headers = sign::signed_headers(
                method.as_str(),
                url.as_str(),
                body.as_bytes(),
                &self.access_key_id,
                &self.secret,
                &self.region,
                SystemTime::now(),
            )?;
            let mut req = self.http.request(method.clone(), url.clone());
            for (k, v) in &headers {
                req = req.header(k.as_str(), v.as_str());
            }
            if !body.is_empty() {
                req = req
                    .header("content-type", "application/xml")
                    .body(body.clone());
            }
            let resp = req
                .send()
                .await
                .map_err(http::transport(PROVIDER, url.as_str()))?;
            let status = resp.status();
            let text = resp
                .text()
                .await
                .map_err(http::transport(PROVIDER, url.as_str()))?;
            if status.is_success() {
                return Ok(Ok(text));
            }
            let (code, message) = xml::parse_error(&text).unwrap_or_else(|| {
                (
                    format!("HTTP{}", status.as_u16()),
                    text.chars().take(200).collect(),
                )
            });
            let throttled = matches!(
                code.as_str(),
                "Throttling" | "ThrottlingException" | "PriorRequestNotComplete"
            ) || status == StatusCode::TOO_MANY_REQUESTS;
            if throttled {
                http::pause_or_give_up(&self.backoff, PROVIDER, code, attempt, None).await?;
                continue;
            }
            return Ok(Err(ApiFailure {
                status,
                code,
                message,
            }));
        }
    }

    fn api_error(&self, f: ApiFailure) -> Error {
        match (f.status.as_u16(), f.code.as_str()) {
            (401 | 403, _)
            | (
                _,
                "SignatureDoesNotMatch"
                | "InvalidClientTokenId"
                | "AccessDenied"
                | "IncompleteSignature"
                | "MissingAuthenticationToken",
            ) => Error::AuthRejected {
                provider: PROVIDER,
                status: f.status.as_u16(),
                code: f.code,
                message: f.message,
            },
            (_, "NoSuchHostedZone") => Error::ZoneNotFound {
                provider: PROVIDER,
                zone: self.zone.clone(),
                hint: Some(f.message),
            },
            _ => Error::Api {
                provider: PROVIDER,
                status: f.status.as_u16(),
                code: f.code,
                message: f.message,
            },
        }
    }

    async fn read(&self, name: &str, kind: RecordKind) -> Result<Option<RecordSet>> {
        let id = self.hosted_zone_id().await?;
        let path = format!("/2013-04-01/hostedzone/{id}/rrset");
        let query = [("name", name), ("maxitems", "20")];
        let body = self
            .call(Method::GET, &path, &query, None)
            .await?
            .map_err(|f| self.api_error(f))?;
        let list: xml::ListResourceRecordSets = parse(&body)?;
        record_from_list(name, kind, list.ResourceRecordSets.ResourceRecordSet)
    }

    async fn post_batch(
        &self,
        comment: &str,
        items: Vec<xml::ChangeItem>,
    ) -> Result<std::result::Result<String, ApiFailure>> {
        let id = self.hosted_zone_id().await?;
        let req = xml::ChangeRequest {
            xmlns: xml::XMLNS,
            ChangeBatch: xml::ChangeBatch {
                Comment: comment.to_string(),
                Changes: xml::Changes { Change: items },
            },
        };
        let body = quick_xml::se::to_string(&req).map_err(|e| Error::MalformedResponse {
            provider: PROVIDER,
            detail: format!("cannot serialize the change batch: {e}"),
        })?;
        let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>{body}");
        let path = format!("/2013-04-01/hostedzone/{id}/rrset/");
        Ok(
            match self.call(Method::POST, &path, &[], Some(body)).await? {
                Ok(text) => {
                    let info: xml::ChangeInfoResponse = parse(&text)?;
                    Ok(info.ChangeInfo.Id)
                }
                Err(f) => Err(f),
            },
        )
    }
}

/// The record set of `name`/`kind` in a `ListResourceRecordSets` page (which starts at `name`
/// and may hold other names and types after it).
fn record_from_list(
    name: &str,
    kind: RecordKind,
    sets: Vec<xml::RrSet>,
) -> Result<Option<RecordSet>> {
    for s in sets {
        if fqdn(&s.Name) != name {
            continue;
        }
        if s.Type == "CNAME" {
            return Err(Error::ConflictingRecord {
                provider: PROVIDER,
                name: name.to_string(),
                kind,
                found_kind: "CNAME".into(),
            });
        }
        if s.Type != kind.as_str() {
            continue;
        }
        if s.AliasTarget.is_some() {
            return Err(Error::ConflictingRecord {
                provider: PROVIDER,
                name: name.to_string(),
                kind,
                found_kind: format!("{} alias", kind.as_str()),
            });
        }
        let mut values = vec![];
        for r in s
            .ResourceRecords
            .map(|r| r.ResourceRecord)
            .unwrap_or_default()
        {
            let ip: IpAddr = r
                .Value
                .trim()
                .parse()
                .map_err(|_| Error::MalformedResponse {
                    provider: PROVIDER,
                    detail: format!("{name} {kind} holds {:?}, not an address", r.Value),
                })?;
            values.push(ip);
        }
        return Ok(Some(RecordSet {
            name: name.to_string(),
            kind,
            ttl: s.TTL.unwrap_or(0),
            values: normalize_values(values),
        }));
    }
    Ok(None)
}

fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T> {
    quick_xml::de::from_str(body).map_err(|e| Error::MalformedResponse {
        provider: PROVIDER,
        detail: format!(
            "{e}; body starts {:?}",
            body.chars().take(120).collect::<String>()
        ),
    })
}

fn rrset(rs: &RecordSet) -> xml::RrSet {
    xml::RrSet {
        Name: rs.name.clone(),
        Type: rs.kind.as_str().into(),
        TTL: Some(rs.ttl),
        ResourceRecords: Some(xml::Records {
            ResourceRecord: rs
                .values
                .iter()
                .map(|v| xml::Record {
                    Value: v.to_string(),
                })
                .collect(),
        }),
        AliasTarget: None,
    }
}

/// The batch for a validated change given what is there now (pure): CAS = DELETE(current) +
/// CREATE(new); unguarded = UPSERT (or DELETE of the current set to remove it).
pub(crate) fn plan_batch(
    change: &Change,
    current: Option<&RecordSet>,
) -> Vec<(&'static str, RecordSet)> {
    let new = change.record_set();
    let mut items = vec![];
    if change.expect.is_some() {
        if let Some(cur) = current {
            items.push(("DELETE", cur.clone()));
        }
        if !new.values.is_empty() {
            items.push(("CREATE", new));
        }
    } else if new.values.is_empty() {
        if let Some(cur) = current {
            items.push(("DELETE", cur.clone()));
        }
    } else {
        items.push(("UPSERT", new));
    }
    items
}

#[async_trait]
impl DnsProvider for Route53 {
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
        // An unguarded set of values is one UPSERT: no need to read first. Otherwise the
        // current set is needed (DELETE must name its exact TTL and values), and a guard that
        // already fails here is refused without a write.
        let current = if change.expect.is_none() && !change.values.is_empty() {
            None
        } else {
            self.read(&change.name, change.kind).await?
        };
        let mismatch = |found| Error::cas_mismatch(PROVIDER, &change, found);
        let receipt = |id| ChangeReceipt::accepted(PROVIDER, id, &change);
        if change.expect.is_some() || change.values.is_empty() {
            match cas::decide(&change, current.as_ref()) {
                Decision::Mismatch => return Err(mismatch(current)),
                Decision::AlreadyApplied => return Ok(receipt(None)),
                Decision::Write => {}
            }
        }
        let items = plan_batch(&change, current.as_ref())
            .into_iter()
            .map(|(action, rs)| xml::ChangeItem {
                Action: action,
                ResourceRecordSet: rrset(&rs),
            })
            .collect();
        let comment = match &change.expect {
            Some(e) => format!("fspbx-ha: {} {} {e} -> flip", change.name, change.kind),
            None => format!("fspbx-ha: set {} {}", change.name, change.kind),
        };
        match self.post_batch(&comment, items).await? {
            Ok(id) => Ok(receipt(Some(id))),
            // The server refused the batch: with a guard this is a lost race (the DELETE no
            // longer matches, or the CREATE finds a record). Read what won.
            Err(f)
                if change.expect.is_some()
                    && matches!(f.code.as_str(), "InvalidChangeBatch" | "InvalidInput") =>
            {
                let now = self.read(&change.name, change.kind).await?;
                if now != current {
                    Err(mismatch(now))
                } else {
                    Err(self.api_error(f))
                }
            }
            Err(f) => Err(self.api_error(f)),
        }
    }

    async fn wait_applied(&self, receipt: &ChangeReceipt, timeout: Duration) -> Result<()> {
        let Some(id) = &receipt.id else {
            return Ok(());
        };
        let id = id.trim_start_matches("/change/");
        let start = Instant::now();
        loop {
            let path = format!("/2013-04-01/change/{id}");
            let body = self
                .call(Method::GET, &path, &[], None)
                .await?
                .map_err(|f| self.api_error(f))?;
            let info: xml::ChangeInfoResponse = parse(&body)?;
            if info.ChangeInfo.Status == "INSYNC" {
                return Ok(());
            }
            if start.elapsed() + self.poll > timeout {
                return Err(Error::Timeout {
                    provider: PROVIDER,
                    what: format!(
                        "change {id} reaching INSYNC (last status {})",
                        info.ChangeInfo.Status
                    ),
                    after: timeout,
                });
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic_cas: true,
            min_ttl: 0,
            change_tracking: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Expected;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn current() -> RecordSet {
        RecordSet::new("pbx.example.com", RecordKind::A, 300, vec![ip("192.0.2.1")])
    }

    #[test]
    fn cas_is_delete_exact_current_plus_create() {
        let c = Change::set("pbx.example.com", RecordKind::A, 60, vec![ip("192.0.2.2")])
            .expecting(Expected::Values(vec![ip("192.0.2.1")]))
            .validated("example.com")
            .unwrap();
        let b = plan_batch(&c, Some(&current()));
        assert_eq!(b.len(), 2);
        assert_eq!(b[0], ("DELETE", current()));
        assert_eq!(b[1].0, "CREATE");
        assert_eq!(b[1].1.ttl, 60);
    }

    #[test]
    fn plain_set_is_upsert_and_empty_is_delete() {
        let c = Change::set("pbx.example.com", RecordKind::A, 60, vec![ip("192.0.2.2")])
            .validated("example.com")
            .unwrap();
        assert_eq!(plan_batch(&c, Some(&current()))[0].0, "UPSERT");
        let c = Change::set("pbx.example.com", RecordKind::A, 60, vec![])
            .validated("example.com")
            .unwrap();
        assert_eq!(
            plan_batch(&c, Some(&current())),
            vec![("DELETE", current())]
        );
        assert!(plan_batch(&c, None).is_empty());
    }

    #[test]
    fn list_page_is_filtered_to_the_exact_name_and_kind() {
        let page = vec![
            xml::RrSet {
                Name: "pbx.example.com.".into(),
                Type: "AAAA".into(),
                TTL: Some(60),
                ResourceRecords: Some(xml::Records {
                    ResourceRecord: vec![xml::Record {
                        Value: "2001:db8::1".into(),
                    }],
                }),
                AliasTarget: None,
            },
            xml::RrSet {
                Name: "pbx2.example.com.".into(),
                Type: "A".into(),
                TTL: Some(60),
                ResourceRecords: None,
                AliasTarget: None,
            },
        ];
        assert_eq!(
            record_from_list("pbx.example.com.", RecordKind::A, page.clone()).unwrap(),
            None
        );
        let aaaa = record_from_list("pbx.example.com.", RecordKind::Aaaa, page)
            .unwrap()
            .unwrap();
        assert_eq!(aaaa.values, vec![ip("2001:db8::1")]);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let r = Route53::new(Route53Config {
            zone: "example.com".into(),
            access_key_id: "AKID".into(),
            secret_access_key: Secret::new("very-secret-key"),
            hosted_zone_id: None,
            endpoint: None,
            region: None,
        })
        .unwrap();
        assert!(!format!("{r:?}").contains("very-secret-key"));
    }
}
