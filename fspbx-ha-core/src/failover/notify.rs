//! Notifications: a local command and/or a webhook told about what the controller decided.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::FailoverSpec;

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
    webhook: Option<String>,
    client: reqwest::Client,
}

impl Notifier {
    /// The notifier `spec` describes (none configured: [`Notifier::is_empty`]).
    pub fn from_spec(spec: &FailoverSpec) -> Notifier {
        Notifier {
            command: spec.notify_command.clone(),
            webhook: spec.webhook.clone(),
            client: reqwest::Client::builder()
                .timeout(NOTIFY_TIMEOUT)
                .build()
                .unwrap_or_default(),
        }
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
            match self.client.post(url).json(n).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => failures.push(format!("failover.webhook {url}: HTTP {}", r.status())),
                Err(e) => failures.push(format!("failover.webhook {url}: {e}")),
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
        let n = Notifier::from_spec(&spec);
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
        });
        let errs = failing.send(&note).await;
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("nope"), "{errs:?}");
    }
}
