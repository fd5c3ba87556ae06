//! The HTTP(S) probe: GET a URL, check the status range and, optionally, the body.

use std::time::Duration;

use super::observe::{Verdict, observe};
use super::{Observation, Probe, ProbeKind};
use crate::config::HttpProbeSpec;
use crate::{Error, Result};

/// How much of a body is searched for [`HttpProbe::with_body_contains`].
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An inclusive range of acceptable HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest acceptable status.
    pub min: u16,
    /// Highest acceptable status.
    pub max: u16,
}

impl StatusRange {
    /// Whether `status` is in the range.
    pub fn contains(&self, status: u16) -> bool {
        (self.min..=self.max).contains(&status)
    }
}

impl Default for StatusRange {
    /// 200..=399: success or redirect (redirects are not followed).
    fn default() -> Self {
        StatusRange { min: 200, max: 399 }
    }
}

/// GETs a URL (redirects not followed, no proxy, a fresh connection each run) and is healthy when the status is in range
/// and, if asked, the body contains a text. TLS is verified unless invalid certificates are
/// accepted explicitly (self-signed lab servers).
#[derive(Debug, Clone)]
pub struct HttpProbe {
    node: String,
    url: reqwest::Url,
    status: StatusRange,
    body_contains: Option<String>,
    timeout: Duration,
    client: reqwest::Client,
}

/// A client for probes: no proxy, no redirects, no kept-alive connections (each run opens a
/// fresh one, so a dead listener is seen as such and not as a stale pooled connection),
/// optionally accepting invalid certificates.
pub(crate) fn probe_client(node: &str, accept_invalid_certs: bool) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("fspbx-ha")
        .pool_max_idle_per_host(0)
        .tls_danger_accept_invalid_certs(accept_invalid_certs)
        .build()
        .map_err(|source| Error::ProbeClient {
            node: node.to_owned(),
            source: Box::new(source),
        })
}

/// Parses `url` for `node`; `key` names the setting in errors.
pub(crate) fn parse_url(node: &str, key: &str, url: &str) -> Result<reqwest::Url> {
    let bad = |reason: String| Error::ProbeUrl {
        node: node.to_owned(),
        key: key.to_owned(),
        url: url.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme {:?} is not http or https",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".to_owned()));
    }
    Ok(parsed)
}

/// The reason of a reqwest error with its causes (`error sending request: … connection
/// refused`).
pub(crate) fn reqwest_reason(e: &reqwest::Error) -> String {
    let mut text = if e.is_connect() {
        "connect failed".to_owned()
    } else if e.is_timeout() {
        "timed out".to_owned()
    } else {
        e.to_string()
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.ends_with(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

impl HttpProbe {
    /// A probe of `url` for `node`: status 200..=399, no body match, timeout 1 s, certificates
    /// verified. Fails when the URL is not an http(s) URL.
    pub fn new(node: &str, url: &str) -> Result<HttpProbe> {
        Ok(HttpProbe {
            node: node.to_owned(),
            url: parse_url(node, "probes.http.url", url)?,
            status: StatusRange::default(),
            body_contains: None,
            timeout: Duration::from_secs(1),
            client: probe_client(node, false)?,
        })
    }

    /// The probe `nodes[i].probes.http` describes; `key` is `nodes[i]`, `default_timeout` is
    /// `probes.timeout`.
    pub fn from_spec(
        node: &str,
        key: &str,
        spec: &HttpProbeSpec,
        default_timeout: Duration,
    ) -> Result<HttpProbe> {
        let mut p = HttpProbe {
            node: node.to_owned(),
            url: parse_url(node, &format!("{key}.probes.http.url"), &spec.url)?,
            status: StatusRange {
                min: spec.status_min,
                max: spec.status_max,
            },
            body_contains: None,
            timeout: spec.timeout.unwrap_or(default_timeout),
            client: probe_client(node, spec.accept_invalid_certs)?,
        };
        if let Some(b) = &spec.body_contains {
            p = p.with_body_contains(b);
        }
        Ok(p)
    }

    /// Sets the acceptable status range (inclusive).
    pub fn with_status(mut self, min: u16, max: u16) -> HttpProbe {
        self.status = StatusRange { min, max };
        self
    }

    /// Requires the body (its first MiB) to contain `text`.
    pub fn with_body_contains(mut self, text: impl Into<String>) -> HttpProbe {
        self.body_contains = Some(text.into());
        self
    }

    /// Accepts invalid TLS certificates (self-signed lab servers) or not (the default).
    pub fn accept_invalid_certs(mut self, yes: bool) -> Result<HttpProbe> {
        self.client = probe_client(&self.node, yes)?;
        Ok(self)
    }

    /// Sets the timeout of one run.
    pub fn with_timeout(mut self, timeout: Duration) -> HttpProbe {
        self.timeout = timeout;
        self
    }

    async fn run(&self) -> Verdict {
        let mut response = match self.client.get(self.url.clone()).send().await {
            Ok(r) => r,
            Err(e) => return Verdict::fail(reqwest_reason(&e)),
        };
        let status = response.status();
        let line = format!(
            "HTTP {}{}",
            status.as_u16(),
            status
                .canonical_reason()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        );
        if !self.status.contains(status.as_u16()) {
            return Verdict::fail(format!(
                "{line}, expected {}..={}",
                self.status.min, self.status.max
            ));
        }
        let Some(needle) = &self.body_contains else {
            return Verdict::ok(line);
        };
        let mut body: Vec<u8> = Vec::new();
        loop {
            if contains(&body, needle.as_bytes()) {
                return Verdict::ok(format!("{line}, body contains {needle:?}"));
            }
            if body.len() >= MAX_BODY_BYTES {
                break;
            }
            match response.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                Ok(None) => break,
                Err(e) => {
                    return Verdict::fail(format!(
                        "{line}, body unreadable: {}",
                        reqwest_reason(&e)
                    ));
                }
            }
        }
        Verdict::fail(format!("{line}, but the body does not contain {needle:?}"))
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[async_trait::async_trait]
impl Probe for HttpProbe {
    fn node(&self) -> &str {
        &self.node
    }

    fn kind(&self) -> ProbeKind {
        ProbeKind::Http
    }

    fn target(&self) -> String {
        self.url.to_string()
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn probe(&self) -> Result<Observation> {
        observe(self, self.timeout, async { Ok(self.run().await) }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_range_and_body_search() {
        let r = StatusRange::default();
        assert!(r.contains(200) && r.contains(399) && !r.contains(404) && !r.contains(199));
        assert!(contains(b"abc {\"status\":\"OK\"}", b"\"OK\""));
        assert!(!contains(b"ab", b"abc"));
    }

    #[test]
    fn bad_urls_are_configuration_errors_naming_the_key() {
        let e = HttpProbe::new("a", "ftp://x/").unwrap_err().to_string();
        assert!(
            e.contains("node a") && e.contains("probes.http.url") && e.contains("ftp"),
            "{e}"
        );
        let e = HttpProbe::new("b", "not a url").unwrap_err();
        assert_eq!(e.family(), crate::ErrorFamily::Config);
    }
}
