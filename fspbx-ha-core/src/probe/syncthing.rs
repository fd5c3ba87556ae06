//! The Syncthing health probe: `GET /rest/noauth/health` answers `{"status": "OK"}`; Syncthing
//! releases without that endpoint (Debian 12 ships 1.19) are asked `GET /rest/system/ping`
//! with the API key instead, which answers `{"ping": "pong"}`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fspbx_ha_secret::SecretRef;

use tokio::sync::Mutex;

use super::http::{parse_url, probe_client, reqwest_reason};
use super::observe::{Verdict, observe};
use super::{Observation, Probe, ProbeKind};
use crate::ssh::{LocalForward, SshSession};
use crate::{Error, Result};

/// Probes Syncthing's unauthenticated health endpoint `/rest/noauth/health` (the API key is
/// not sent there). Syncthing releases older than that endpoint answer it `404` (or `403 CSRF
/// Error`); then, when an API key reference is set ([`SyncthingHealthProbe::with_api_key`]),
/// the probe asks `/rest/system/ping` with the key instead, and keeps doing so. With an SSH
/// session, the API is reached through a local forward opened on first use and reopened after
/// a failure.
#[derive(Debug)]
pub struct SyncthingHealthProbe {
    node: String,
    key: String,
    base: reqwest::Url,
    client: reqwest::Client,
    timeout: Duration,
    api_key: Option<SecretRef>,
    /// The health endpoint is missing: use the ping fallback directly.
    legacy: AtomicBool,
    ssh: Option<(SshSession, Mutex<Option<LocalForward>>)>,
}

impl SyncthingHealthProbe {
    /// A probe of the Syncthing GUI/REST listener at `base_url` (e.g. `http://127.0.0.1:8384`)
    /// for `node`; `key` names the setting in errors (`nodes[0].syncthing.url`). Timeout 1 s.
    pub fn new(node: &str, key: &str, base_url: &str) -> Result<SyncthingHealthProbe> {
        Ok(SyncthingHealthProbe {
            node: node.to_owned(),
            key: key.trim_end_matches(".url").to_owned(),
            base: parse_url(node, key, base_url)?,
            client: probe_client(node, false)?,
            timeout: Duration::from_secs(1),
            api_key: None,
            legacy: AtomicBool::new(false),
            ssh: None,
        })
    }

    /// The API key reference (`syncthing.api_key`), used only for the `/rest/system/ping`
    /// fallback on Syncthing releases without `/rest/noauth/health`; resolved at each use.
    pub fn with_api_key(mut self, api_key: SecretRef) -> SyncthingHealthProbe {
        self.api_key = Some(api_key);
        self
    }

    /// Reaches the API through `session` (the URL's host and port as seen from the node).
    pub fn via_ssh(mut self, session: SshSession) -> SyncthingHealthProbe {
        self.ssh = Some((session, Mutex::new(None)));
        self
    }

    /// Accepts a self-signed certificate on an https GUI (off by default).
    pub fn accept_invalid_certs(mut self, yes: bool) -> Result<SyncthingHealthProbe> {
        self.client = probe_client(&self.node, yes)?;
        Ok(self)
    }

    /// Sets the timeout of one run.
    pub fn with_timeout(mut self, timeout: Duration) -> SyncthingHealthProbe {
        self.timeout = timeout;
        self
    }

    fn health_url(&self, base: &reqwest::Url) -> String {
        endpoint(base, HEALTH)
    }

    async fn run(&self) -> Result<Verdict> {
        let base = match &self.ssh {
            None => self.base.clone(),
            Some((session, forward)) => {
                let mut fwd = forward.lock().await;
                if fwd.is_none() {
                    let host = self.base.host_str().unwrap_or("127.0.0.1");
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    let port = self.base.port_or_known_default().unwrap_or(8384);
                    match session.forward_local(host, port).await {
                        Ok(f) => *fwd = Some(f),
                        Err(e) => return Ok(Verdict::fail(format!("SSH forward: {e}"))),
                    }
                }
                let mut local = self.base.clone();
                if let Some(f) = fwd.as_ref() {
                    let a = f.local_addr();
                    let _ = local.set_ip_host(a.ip());
                    let _ = local.set_port(Some(a.port()));
                }
                local
            }
        };
        let verdict = self.check(&base).await?;
        if !verdict.ok
            && let Some((_, forward)) = &self.ssh
        {
            // The forward may be what broke: reopen it next time.
            forward.lock().await.take();
        }
        Ok(verdict)
    }

    async fn check(&self, base: &reqwest::Url) -> Result<Verdict> {
        if !self.legacy.load(Ordering::Relaxed) {
            let (status, body) = match self.get(&endpoint(base, HEALTH), None).await {
                Ok(r) => r,
                Err(v) => return Ok(v),
            };
            if !health_endpoint_missing(status, &body) {
                return Ok(health_verdict(status, &body));
            }
            if self.api_key.is_none() {
                return Ok(Verdict::fail(format!(
                    "this Syncthing has no {HEALTH} (HTTP {status}; older than that endpoint) and no \
                     API key is set for the /rest/system/ping fallback"
                )));
            }
            self.legacy.store(true, Ordering::Relaxed);
        }
        let Some(reference) = &self.api_key else {
            return Ok(Verdict::fail(format!("no {HEALTH} and no API key")));
        };
        let key = reference.resolve().map_err(|source| Error::Secret {
            key: format!("{}.api_key", self.key),
            source,
        })?;
        let (status, body) = match self.get(&endpoint(base, PING), Some(key.expose())).await {
            Ok(r) => r,
            Err(v) => return Ok(v),
        };
        Ok(ping_verdict(status, &body))
    }

    /// GET `url` (with the API key header when given): status and body, or a failed verdict.
    async fn get(
        &self,
        url: &str,
        api_key: Option<&str>,
    ) -> std::result::Result<(u16, Vec<u8>), Verdict> {
        let mut request = self.client.get(url);
        if let Some(k) = api_key {
            request = request.header("X-API-Key", k);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Verdict::fail(reqwest_reason(&e)))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| {
            Verdict::fail(format!(
                "HTTP {status}, body unreadable: {}",
                reqwest_reason(&e)
            ))
        })?;
        Ok((status, body.to_vec()))
    }
}

const HEALTH: &str = "/rest/noauth/health";
const PING: &str = "/rest/system/ping";

fn endpoint(base: &reqwest::Url, path: &str) -> String {
    format!("{}{path}", base.as_str().trim_end_matches('/'))
}

/// Whether the answer means "this Syncthing has no health endpoint": `404`, or the CSRF check
/// of releases that protect every `/rest` path (`403 CSRF Error`).
fn health_endpoint_missing(status: u16, body: &[u8]) -> bool {
    status == 404 || (status == 403 && body.starts_with(b"CSRF Error"))
}

/// The verdict on `/rest/system/ping`.
fn ping_verdict(status: u16, body: &[u8]) -> Verdict {
    #[derive(serde::Deserialize)]
    struct Ping {
        ping: String,
    }
    match (status, serde_json::from_slice::<Ping>(body)) {
        (200, Ok(p)) if p.ping == "pong" => {
            Verdict::ok(format!("pong from {PING} (no {HEALTH} in this release)"))
        }
        (403, _) => Verdict::fail(format!("HTTP 403 from {PING}: the API key was refused")),
        (s, _) => Verdict::fail(format!(
            "HTTP {s} from {PING}: {:?}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        )),
    }
}

/// The verdict on the health endpoint's status and body.
fn health_verdict(status: u16, body: &[u8]) -> Verdict {
    #[derive(serde::Deserialize)]
    struct Health {
        status: String,
    }
    if status != 200 {
        return Verdict::fail(format!("HTTP {status} from {HEALTH}"));
    }
    match serde_json::from_slice::<Health>(body) {
        Ok(h) if h.status == "OK" => Verdict::ok("status OK"),
        Ok(h) => Verdict::fail(format!("status {:?}", h.status)),
        Err(_) => Verdict::fail(format!(
            "not a Syncthing health answer: {:?}",
            String::from_utf8_lossy(&body[..body.len().min(80)])
        )),
    }
}

#[async_trait::async_trait]
impl Probe for SyncthingHealthProbe {
    fn node(&self) -> &str {
        &self.node
    }

    fn kind(&self) -> ProbeKind {
        ProbeKind::Syncthing
    }

    fn target(&self) -> String {
        let via = if self.ssh.is_some() { " (via SSH)" } else { "" };
        format!("{}{via}", self.health_url(&self.base))
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn probe(&self) -> Result<Observation> {
        observe(self, self.timeout, self.run()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_body() {
        assert!(health_verdict(200, br#"{"status": "OK"}"#).ok);
        assert!(!health_verdict(200, br#"{"status": "degraded"}"#).ok);
        assert!(!health_verdict(200, b"<html>").ok);
        assert!(!health_verdict(403, br#"{"status": "OK"}"#).ok);
        assert!(health_endpoint_missing(404, b"404 page not found"));
        assert!(health_endpoint_missing(403, b"CSRF Error\n"));
        assert!(!health_endpoint_missing(403, b"Forbidden"));
        assert!(ping_verdict(200, br#"{"ping":"pong"}"#).ok);
        assert!(
            ping_verdict(403, b"Forbidden")
                .detail
                .contains("API key was refused")
        );
    }
}
