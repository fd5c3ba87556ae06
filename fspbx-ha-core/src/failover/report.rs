//! `failover status`: the last decisions from the audit log, who the floating record says is
//! active, whether a running controller reports itself healthy, and the registrations and calls
//! counted on the new active node since the last flip.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::audit::{AuditRecord, read_tail};
use super::counts::{CountKind, CountSample, samples_in};
use crate::Result;
use crate::config::ClusterConfig;
use crate::floating::{Floating, active_node};

/// How many audit records are searched for count samples (registrations, calls).
pub const COUNTS_TAIL: usize = 2000;

/// How long asking the controller's `/health` may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the running controller's `/health` said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControllerHealth {
    /// Where it was asked.
    pub addr: SocketAddr,
    /// `200 ok`.
    pub healthy: bool,
    /// Its answer, or why there was none.
    pub detail: String,
}

/// The failover picture for an operator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailoverStatusReport {
    /// The audit log read.
    pub audit_log: PathBuf,
    /// Its last records, oldest first.
    pub recent: Vec<AuditRecord>,
    /// The node the floating record points at (from the provider).
    pub active_node: Option<String>,
    /// Why the record could not be read, if so.
    pub record_error: Option<String>,
    /// The controller's `/health`, when `failover.metrics_listen` is set.
    pub controller: Option<ControllerHealth>,
    /// The registration samples taken after the last flip (from the audit log), oldest first.
    pub registrations: Vec<CountSample>,
    /// The call counts taken after the last flip (from the audit log), oldest first.
    pub calls: Vec<CountSample>,
}

impl FailoverStatusReport {
    /// False when a controller is configured with a metrics endpoint and it is not healthy
    /// (not running, or its rounds stopped).
    pub fn ok(&self) -> bool {
        self.controller.as_ref().is_none_or(|c| c.healthy)
    }
}

/// Asks `GET /health` at `addr`.
pub async fn ask_health(addr: SocketAddr) -> ControllerHealth {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: fspbx-ha\r\nConnection: close\r\n\r\n")
            .await?;
        let mut text = String::new();
        s.read_to_string(&mut text).await?;
        Ok::<_, std::io::Error>(text)
    };
    let (healthy, detail) = match tokio::time::timeout(HEALTH_TIMEOUT, ask).await {
        Err(_) => (false, format!("no answer within {HEALTH_TIMEOUT:?}")),
        Ok(Err(e)) => (
            false,
            format!("not reachable: {e} (is `failover watch` running?)"),
        ),
        Ok(Ok(text)) => {
            let ok = text.starts_with("HTTP/1.1 200");
            let body = text
                .split_once("\r\n\r\n")
                .map_or("", |(_, b)| b)
                .trim()
                .to_owned();
            (ok, body)
        }
    };
    ControllerHealth {
        addr,
        healthy,
        detail,
    }
}

/// The last `last` audit records, the floating record's node and the controller's health.
/// The registration and call samples are those after the last `flip` record among the last
/// [`COUNTS_TAIL`] records, whatever `last` is.
pub async fn status_report(config: &ClusterConfig, last: usize) -> Result<FailoverStatusReport> {
    let wide = read_tail(&config.failover.audit_log, last.max(COUNTS_TAIL))?;
    let since_flip = wide
        .iter()
        .rposition(|r| r.event == "flip")
        .map_or(&wide[..], |i| &wide[i + 1..]);
    let registrations = samples_in(since_flip, CountKind::Registrations);
    let calls = samples_in(since_flip, CountKind::Calls);
    let recent = wide[wide.len().saturating_sub(last)..].to_vec();
    let (active, record_error) = match Floating::new(config) {
        Ok(f) => {
            let mut sets = vec![];
            let mut err = None;
            for kind in [fspbx_ha_dns::RecordKind::A, fspbx_ha_dns::RecordKind::Aaaa] {
                match f.provider().get(f.name(), kind).await {
                    Ok(s) => sets.extend(s),
                    Err(e) => err = Some(e.to_string()),
                }
            }
            (active_node(f.nodes(), &sets), err)
        }
        Err(e) => (None, Some(e.to_string())),
    };
    let controller = match config.failover.metrics_listen {
        Some(addr) => Some(ask_health(addr).await),
        None => None,
    };
    Ok(FailoverStatusReport {
        audit_log: config.failover.audit_log.clone(),
        recent,
        active_node: active,
        record_error,
        controller,
        registrations,
        calls,
    })
}
