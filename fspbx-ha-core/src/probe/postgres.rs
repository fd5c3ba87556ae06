//! The PostgreSQL probe: connect, `SELECT 1`, and optionally "accepts writes".

use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;

use super::observe::{Verdict, observe};
use super::{Observation, PgProbeMode, Probe, ProbeKind};
use crate::config::NodeSpec;
use crate::error::pg_reason;
use crate::ssh::SshSession;
use crate::{Error, Result};

/// Connects to a node's PostgreSQL (directly or through its SSH session, as
/// `postgres.via_ssh` says) with a fresh connection each run, runs `SELECT 1`, and in
/// [`PgProbeMode::Writable`] also requires that the server accepts writes: not in recovery
/// (`pg_is_in_recovery()` false) and `default_transaction_read_only` off.
///
/// An unresolvable password reference, or `via_ssh` without a session, is a configuration
/// error ([`Probe::probe`] returns `Err`); a server that is down or read-only is an
/// observation.
#[derive(Debug, Clone)]
pub struct PgProbe {
    key: String,
    node: NodeSpec,
    mode: PgProbeMode,
    ssh: Option<SshSession>,
    timeout: Duration,
}

/// What the probe query returned: in recovery, `default_transaction_read_only`.
const WRITABLE_SQL: &str = "SELECT 1, pg_is_in_recovery(), \
                            current_setting('default_transaction_read_only')";

impl PgProbe {
    /// A probe of `node`'s PostgreSQL; `key` is the node's key path (`nodes[0]`) for messages
    /// about its password reference. `ssh` is the node's session when `postgres.via_ssh` is
    /// set. Timeout 1 s.
    pub fn new(key: &str, node: &NodeSpec, mode: PgProbeMode, ssh: Option<SshSession>) -> PgProbe {
        PgProbe {
            key: key.to_owned(),
            node: node.clone(),
            mode,
            ssh,
            timeout: Duration::from_secs(1),
        }
    }

    /// Sets the timeout of one run (connection included).
    pub fn with_timeout(mut self, timeout: Duration) -> PgProbe {
        self.timeout = timeout;
        self
    }

    async fn run(&self) -> Result<Verdict> {
        let conn = match crate::pg::connect(&self.key, &self.node, self.ssh.as_ref()).await {
            Ok(c) => c,
            // The probe is misconfigured: say so as an error, not as "the node is down".
            Err(e @ (Error::Secret { .. } | Error::PgNeedsSsh { .. })) => return Err(e),
            Err(Error::PgConnect { source, .. }) => {
                return Ok(Verdict::fail(format!(
                    "cannot connect: {}",
                    pg_reason(&source)
                )));
            }
            Err(e) => return Ok(Verdict::fail(e.to_string())),
        };
        let sql = match self.mode {
            PgProbeMode::Writable => WRITABLE_SQL,
            PgProbeMode::Connect | PgProbeMode::Off => "SELECT 1",
        };
        let rows = match conn.client().simple_query(sql).await {
            Ok(r) => r,
            Err(e) => return Ok(Verdict::fail(format!("{sql} failed: {}", pg_reason(&e)))),
        };
        let Some(row) = rows.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        }) else {
            return Ok(Verdict::fail(format!("{sql} returned no row")));
        };
        if row.get(0) != Some("1") {
            return Ok(Verdict::fail(format!("SELECT 1 returned {:?}", row.get(0))));
        }
        if self.mode != PgProbeMode::Writable {
            return Ok(Verdict::ok("SELECT 1 ok"));
        }
        Ok(writable_verdict(row.get(1), row.get(2)))
    }
}

/// The verdict on `pg_is_in_recovery()` and `default_transaction_read_only` as text.
fn writable_verdict(in_recovery: Option<&str>, read_only: Option<&str>) -> Verdict {
    match (in_recovery, read_only) {
        (Some("f"), Some("off")) => Verdict::ok("SELECT 1 ok; accepts writes"),
        (Some("t"), _) => Verdict::fail("read-only: the server is in recovery (a standby)"),
        (Some("f"), Some(ro)) => {
            Verdict::fail(format!("read-only: default_transaction_read_only = {ro}"))
        }
        (r, ro) => Verdict::fail(format!(
            "unexpected answer: pg_is_in_recovery = {r:?}, default_transaction_read_only = {ro:?}"
        )),
    }
}

#[async_trait::async_trait]
impl Probe for PgProbe {
    fn node(&self) -> &str {
        &self.node.name
    }

    fn kind(&self) -> ProbeKind {
        match self.mode {
            PgProbeMode::Writable => ProbeKind::PostgresWritable,
            PgProbeMode::Connect | PgProbeMode::Off => ProbeKind::Postgres,
        }
    }

    fn target(&self) -> String {
        self.node.postgres.describe()
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
    fn writable_needs_both_settings() {
        assert!(writable_verdict(Some("f"), Some("off")).ok);
        let v = writable_verdict(Some("t"), Some("off"));
        assert!(!v.ok && v.detail.contains("recovery"));
        let v = writable_verdict(Some("f"), Some("on"));
        assert!(!v.ok && v.detail.contains("default_transaction_read_only = on"));
        assert!(!writable_verdict(None, None).ok);
    }
}
