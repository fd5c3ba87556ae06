//! Notifications: a local command and/or a webhook told about what the controller decided.

use std::time::{Duration, SystemTime};

use fspbx_ha_secret::Secret;
use serde::Serialize;

use crate::config::FailoverSpec;
use crate::{Error, Result};

/// How long one command or webhook call may take.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// `info`, `warning` or `critical`.
    pub level: String,
    /// What kind of event (`decision`, `flip`, `fence`, …).
    pub event: String,
    /// The sentence.
    pub message: String,
    /// When (RFC 3339).
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
}

/// Sends notifications to `failover.notify_command` and `failover.webhook`.
#[derive(Debug, Clone)]
pub struct Notifier {
    command: Option<String>,
    webhook: Option<Secret>,
    client: reqwest::Client,
}

impl Notifier {
    /// The notifier `spec` describes (none configured: [`Notifier::is_empty`]); the webhook's
    /// secret reference is resolved now.
    pub fn from_spec(spec: &FailoverSpec) -> Result<Notifier> {
        let webhook = spec
            .webhook
            .as_ref()
            .map(|r| {
                r.resolve().map_err(|source| Error::Secret {
                    key: "failover.webhook".into(),
                    source,
                })
            })
            .transpose()?;
        Ok(Notifier {
            command: spec.notify_command.clone(),
            webhook,
            client: reqwest::Client::builder()
                .timeout(NOTIFY_TIMEOUT)
                .build()
                .unwrap_or_default(),
        })
    }

    /// Whether nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.command.is_none() && self.webhook.is_none()
    }

    /// Sends `n` to every configured sink; returns one message per sink that failed.
    pub async fn send(&self, n: &Notification) -> Vec<String> {
        let mut failures = vec![];
        if let Some(cmd) = &self.command
            && let Err(e) = run_command(cmd, n).await
        {
            failures.push(format!("failover.notify_command: {e}"));
        }
        if let Some(url) = &self.webhook {
            // The URL is a secret: errors name the key, never the URL.
            match self.client.post(url.expose()).json(n).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => failures.push(format!("failover.webhook: HTTP {}", r.status())),
                Err(e) => failures.push(format!("failover.webhook: {}", e.without_url())),
            }
        }
        failures
    }
}

/// Runs `sh -c cmd` with the notification in its environment (not its argv).
async fn run_command(cmd: &str, n: &Notification) -> Result<(), String> {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .env("FSPBX_HA_LEVEL", &n.level)
        .env("FSPBX_HA_EVENT", &n.event)
        .env("FSPBX_HA_MESSAGE", &n.message)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = c
        .spawn()
        .map_err(|e| format!("cannot start `sh -c`: {e}"))?;
    match tokio::time::timeout(NOTIFY_TIMEOUT, child.wait_with_output()).await {
        Err(_) => Err(format!("did not finish within {NOTIFY_TIMEOUT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => Err(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_command_gets_the_notification_in_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("n.txt");
        let spec = FailoverSpec {
            notify_command: Some(format!(
                "printf '%s|%s|%s' \"$FSPBX_HA_LEVEL\" \"$FSPBX_HA_EVENT\" \"$FSPBX_HA_MESSAGE\" > {}",
                out.display()
            )),
            ..FailoverSpec::default()
        };
        let n = Notifier::from_spec(&spec).unwrap();
        assert!(!n.is_empty());
        let note = Notification {
            level: "critical".into(),
            event: "decision".into(),
            message: "node A is down; it's 'quoted'".into(),
            at: SystemTime::now(),
        };
        assert!(n.send(&note).await.is_empty());
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "critical|decision|node A is down; it's 'quoted'"
        );
        let failing = Notifier::from_spec(&FailoverSpec {
            notify_command: Some("echo nope >&2; exit 3".into()),
            ..FailoverSpec::default()
        })
        .unwrap();
        let errs = failing.send(&note).await;
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("nope"), "{errs:?}");
    }

    /// A one-request HTTP endpoint answering `status`; returns its URL and the request it got.
    async fn endpoint(status: u16) -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook/T0KEN", l.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = s.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len || n == 0 {
                        break;
                    }
                }
            }
            let reply =
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            s.write_all(reply.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf).to_string()
        });
        (url, task)
    }

    #[tokio::test]
    async fn the_webhook_gets_json_and_its_url_never_shows_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("hook");
        let note = Notification {
            level: "warning".into(),
            event: "flip".into(),
            message: "flipped to b".into(),
            at: SystemTime::now(),
        };
        for (status, ok) in [(200, true), (500, false)] {
            let (url, got) = endpoint(status).await;
            std::fs::write(&secret, &url).unwrap();
            let spec = FailoverSpec {
                webhook: Some(fspbx_ha_secret::SecretRef::file(&secret)),
                ..FailoverSpec::default()
            };
            let errs = Notifier::from_spec(&spec).unwrap().send(&note).await;
            let request = got.await.unwrap();
            assert!(
                request.starts_with("POST /hook/T0KEN HTTP/1.1"),
                "{request}"
            );
            let body: serde_json::Value =
                serde_json::from_str(request.split_once("\r\n\r\n").unwrap().1).unwrap();
            assert_eq!(body["level"], "warning");
            assert_eq!(body["message"], "flipped to b");
            assert_eq!(errs.is_empty(), ok, "{errs:?}");
            for e in &errs {
                assert!(e.contains("HTTP 500") && !e.contains("T0KEN"), "{e}");
            }
        }
        let missing = FailoverSpec {
            webhook: Some(fspbx_ha_secret::SecretRef::env("FSPBX_HA_NO_SUCH_VAR_4711")),
            ..FailoverSpec::default()
        };
        let err = Notifier::from_spec(&missing).unwrap_err().to_string();
        assert!(err.contains("failover.webhook"), "{err}");
    }
}
