//! Timing a probe run and turning its verdict into an [`Observation`].

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use super::{Observation, Probe};

/// A probe's verdict before timing is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

impl Verdict {
    pub(crate) fn ok(detail: impl Into<String>) -> Verdict {
        Verdict {
            ok: true,
            detail: detail.into(),
        }
    }

    pub(crate) fn fail(detail: impl Into<String>) -> Verdict {
        Verdict {
            ok: false,
            detail: detail.into(),
        }
    }
}

/// `no answer within 500ms`.
pub(crate) fn no_answer(timeout: Duration) -> String {
    format!("no answer within {timeout:?}")
}

/// Runs `run` for `probe`, bounded by `limit` (usually the probe's timeout; probes that handle
/// their own deadline pass a little more as a safety net), and times it.
pub(crate) async fn observe<P, F>(probe: &P, limit: Duration, run: F) -> crate::Result<Observation>
where
    P: Probe + ?Sized,
    F: Future<Output = crate::Result<Verdict>>,
{
    let at = SystemTime::now();
    let start = Instant::now();
    let verdict = match tokio::time::timeout(limit, run).await {
        Ok(v) => v?,
        Err(_) => Verdict::fail(no_answer(probe.timeout())),
    };
    Ok(Observation {
        node: probe.node().to_owned(),
        kind: probe.kind(),
        target: probe.target(),
        ok: verdict.ok,
        detail: verdict.detail,
        latency: start.elapsed(),
        at,
    })
}

/// An I/O error as an operator reads it: `connection refused`, `timed out`, …
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".to_owned(),
        ConnectionReset => "connection reset by the server".to_owned(),
        HostUnreachable => "host unreachable".to_owned(),
        NetworkUnreachable => "network unreachable".to_owned(),
        AddrNotAvailable => "address not available".to_owned(),
        _ => e.to_string(),
    }
}
