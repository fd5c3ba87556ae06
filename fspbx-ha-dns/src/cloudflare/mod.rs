//! Cloudflare API v4: bearer token, zone id by name, records listed page by page, updates in
//! place.
//!
//! Cloudflare has no conditional write, so the compare-and-swap guard is read-compare-write:
//! the records are read, the guard is checked, then the writes go out. Another writer can slip
//! in between, which [`Capabilities::atomic_cas`] declares as `false`. HTTP 429 is retried after
//! the `retry-after` the API asks for.

mod api;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use fspbx_ha_secret::Secret;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;
use url::Url;

use crate::cas::{self, Decision};
use crate::error::{Error, Result};
use crate::http;
use crate::provider::{DnsProvider, wait_until_read_back};
use crate::record::{
    Capabilities, Change, ChangeReceipt, RecordKind, RecordSet, fqdn, fqdn_in_zone,
    normalize_values,
};
use crate::retry::Backoff;

use api::{DnsRecord, Envelope, Op, RecordBody, ResultInfo, Zone};

const PROVIDER: &str = "cloudflare";
const DEFAULT_ENDPOINT: &str = "https://api.cloudflare.com/client/v4";

/// Settings of a [`Cloudflare`] provider.
#[derive(Debug, Clone)]
pub struct CloudflareConfig {
    /// The zone (`example.com`).
    pub zone: String,
    /// API token with `Zone:DNS:Edit` (and `Zone:Zone:Read` when the zone id is looked up).
    pub api_token: Secret,
    /// Zone id; found by name when not given.
    pub zone_id: Option<String>,
    /// API base (default `https://api.cloudflare.com/client/v4`).
    pub endpoint: Option<Url>,
    /// Page size of list calls (default 100).
    pub per_page: Option<u32>,
}

/// The Cloudflare provider.
pub struct Cloudflare {
    http: reqwest::Client,
    base: String,
    token: Secret,
    zone: String,
    zone_id: OnceCell<String>,
    per_page: u32,
    backoff: Backoff,
}

impl fmt::Debug for Cloudflare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cloudflare")
            .field("endpoint", &self.base)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

impl Cloudflare {
    /// Builds the provider. No request is made until the first call.
    pub fn new(cfg: CloudflareConfig) -> Result<Self> {
        let base = match cfg.endpoint {
            Some(u) => u.to_string(),
            None => DEFAULT_ENDPOINT.to_string(),
        };
        let parsed = Url::parse(&base).map_err(|e| Error::InvalidInput {
            field: "endpoint",
            value: base.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::InvalidInput {
                field: "endpoint",
                value: base,
                reason: "must be an http(s) URL".into(),
            });
        }
        let http = http::client(PROVIDER, &base)?;
        let zone_id = OnceCell::new();
        if let Some(id) = cfg.zone_id {
            let _ = zone_id.set(id);
        }
        Ok(Cloudflare {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: cfg.api_token,
            zone: fqdn(&cfg.zone),
            zone_id,
            per_page: cfg.per_page.unwrap_or(100).clamp(1, 5000),
            backoff: Backoff::default(),
        })
    }

    /// Sets the retry policy for HTTP 429.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The zone id, looked up by name on first use (`GET /zones?name=`).
    pub async fn zone_id(&self) -> Result<&str> {
        self.zone_id
            .get_or_try_init(|| async {
                let name = self.zone.trim_end_matches('.').to_string();
                let zones: Vec<Zone> = self.list("/zones", &[("name", name.as_str())]).await?;
                zones
                    .into_iter()
                    .find(|z| fqdn(&z.name) == self.zone)
                    .map(|z| z.id)
                    .ok_or_else(|| Error::ZoneNotFound {
                        provider: PROVIDER,
                        zone: self.zone.clone(),
                        hint: Some(
                            "the token sees no zone of that name; set zone_id or give the token \
                             Zone:Read on it"
                                .into(),
                        ),
                    })
            })
            .await
            .map(String::as_str)
    }

    /// One call, 429 retried after `retry-after`; returns the envelope's result and paging.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&RecordBody>,
    ) -> Result<(Option<T>, Option<ResultInfo>)> {
        let url = format!("{}{}", self.base, path);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.token.expose())
                .query(query);
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(http::transport(PROVIDER, &url))?;
            let status = resp.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let code = "HTTP 429".to_string();
                http::pause_or_give_up(&self.backoff, PROVIDER, code, attempt, retry_after).await?;
                continue;
            }
            let text = resp.text().await.map_err(http::transport(PROVIDER, &url))?;
            let env: Envelope<T> =
                serde_json::from_str(&text).map_err(|e| Error::MalformedResponse {
                    provider: PROVIDER,
                    detail: format!(
                        "HTTP {} from {path}: {e}; body starts {:?}",
                        status.as_u16(),
                        text.chars().take(80).collect::<String>()
                    ),
                })?;
            if env.success && status.is_success() {
                return Ok((env.result, env.result_info));
            }
            let code = env
                .errors
                .first()
                .map(|e| e.code.to_string())
                .unwrap_or_else(|| format!("HTTP{}", status.as_u16()));
            let message = env
                .errors
                .iter()
                .map(|e| format!("{} {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            let auth = matches!(status.as_u16(), 401 | 403)
                || env
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, 10000 | 9109 | 6003 | 6111));
            return Err(if auth {
                Error::AuthRejected {
                    provider: PROVIDER,
                    status: status.as_u16(),
                    code,
                    message,
                }
            } else if env.errors.iter().any(|e| e.code == 7003) {
                Error::ZoneNotFound {
                    provider: PROVIDER,
                    zone: self.zone.clone(),
                    hint: Some(message),
                }
            } else {
                Error::Api {
                    provider: PROVIDER,
                    status: status.as_u16(),
                    code,
                    message,
                }
            });
        }
    }

    /// All pages of a list call.
    async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        filter: &[(&str, &str)],
    ) -> Result<Vec<T>> {
        let mut out = vec![];
        let per_page = self.per_page.to_string();
        let mut page = 1u32;
        loop {
            let page_s = page.to_string();
            let mut q: Vec<(&str, &str)> = filter.to_vec();
            q.push(("page", &page_s));
            q.push(("per_page", &per_page));
            let (items, info): (Option<Vec<T>>, _) = self.call(Method::GET, path, &q, None).await?;
            out.extend(items.unwrap_or_default());
            match info {
                Some(i) if i.has_more() => page += 1,
                _ => return Ok(out),
            }
            if page > 10_000 {
                return Err(Error::MalformedResponse {
                    provider: PROVIDER,
                    detail: format!("{path} claims more than 10000 pages"),
                });
            }
        }
    }

    /// The records of `name` (FQDN) of `kind`, with their ids; a CNAME in the way is an error.
    async fn records(&self, name: &str, kind: RecordKind) -> Result<Vec<DnsRecord>> {
        let id = self.zone_id().await?;
        let bare = name.trim_end_matches('.');
        let all: Vec<DnsRecord> = self
            .list(&format!("/zones/{id}/dns_records"), &[("name", bare)])
            .await?;
        let mut out = vec![];
        for r in all {
            if fqdn(&r.name) != name {
                continue;
            }
            if r.kind == "CNAME" {
                return Err(Error::ConflictingRecord {
                    provider: PROVIDER,
                    name: name.to_string(),
                    kind,
                    found_kind: "CNAME".into(),
                });
            }
            if r.kind == kind.as_str() {
                out.push(r);
            }
        }
        Ok(out)
    }

    fn to_set(name: &str, kind: RecordKind, recs: &[DnsRecord]) -> Result<Option<RecordSet>> {
        if recs.is_empty() {
            return Ok(None);
        }
        let mut values = vec![];
        for r in recs {
            values.push(
                r.content
                    .parse::<IpAddr>()
                    .map_err(|_| Error::MalformedResponse {
                        provider: PROVIDER,
                        detail: format!("{name} {kind} record {} holds {:?}", r.id, r.content),
                    })?,
            );
        }
        Ok(Some(RecordSet {
            name: name.to_string(),
            kind,
            ttl: recs.iter().map(|r| r.ttl).min().unwrap_or(0),
            values: normalize_values(values),
        }))
    }
}

#[async_trait]
impl DnsProvider for Cloudflare {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn zone(&self) -> &str {
        &self.zone
    }

    async fn get(&self, name: &str, kind: RecordKind) -> Result<Option<RecordSet>> {
        let fq = fqdn_in_zone(name, &self.zone)?;
        let recs = self.records(&fq, kind).await?;
        Self::to_set(&fq, kind, &recs)
    }

    async fn set(&self, change: &Change) -> Result<ChangeReceipt> {
        let change = change.validated(&self.zone)?;
        if change.ttl != 1 && !(30..=86_400).contains(&change.ttl) {
            return Err(Error::InvalidInput {
                field: "ttl",
                value: change.ttl.to_string(),
                reason: "Cloudflare accepts 1 (automatic) or 60..86400 seconds (30 on Enterprise \
                         zones)"
                    .into(),
            });
        }
        let existing = self.records(&change.name, change.kind).await?;
        let current = Self::to_set(&change.name, change.kind, &existing)?;
        let receipt = ChangeReceipt::accepted(PROVIDER, None, &change);
        match cas::decide(&change, current.as_ref()) {
            Decision::Mismatch => return Err(Error::cas_mismatch(PROVIDER, &change, current)),
            Decision::AlreadyApplied => return Ok(receipt),
            Decision::Write => {}
        }
        let zone_id = self.zone_id().await?;
        let bare = change.name.trim_end_matches('.').to_string();
        // The whole record, as PUT (replace) and POST (create) send it.
        let full = |content: IpAddr| RecordBody {
            kind: Some(change.kind.as_str().into()),
            name: Some(bare.clone()),
            content: Some(content.to_string()),
            ttl: change.ttl,
            proxied: false,
        };
        let records = format!("/zones/{zone_id}/dns_records");
        for op in api::plan_ops(&existing, &change.values, change.ttl) {
            let (method, path, body) = match op {
                Op::Put { id, content } => {
                    (Method::PUT, format!("{records}/{id}"), Some(full(content)))
                }
                Op::Patch { id } => (
                    Method::PATCH,
                    format!("{records}/{id}"),
                    Some(RecordBody {
                        kind: None,
                        name: None,
                        content: None,
                        ttl: change.ttl,
                        proxied: false,
                    }),
                ),
                Op::Post { content } => (Method::POST, records.clone(), Some(full(content))),
                Op::Delete { id } => (Method::DELETE, format!("{records}/{id}"), None),
            };
            let _: (Option<serde_json::Value>, _) =
                self.call(method, &path, &[], body.as_ref()).await?;
        }
        Ok(receipt)
    }

    async fn wait_applied(&self, receipt: &ChangeReceipt, timeout: Duration) -> Result<()> {
        // The API has no change status; the records it returns are what its edge serves.
        wait_until_read_back(
            PROVIDER,
            receipt,
            timeout,
            Duration::from_millis(500),
            || format!("the API returning {}", receipt.record),
            || self.get(&receipt.record.name, receipt.record.kind),
        )
        .await
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic_cas: false,
            min_ttl: 60,
            change_tracking: false,
        }
    }
}
