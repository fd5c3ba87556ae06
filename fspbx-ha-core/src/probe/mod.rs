//! Health probes: is a node's SIP stack, web server, PostgreSQL, Syncthing (or any TCP port)
//! serving right now?
//!
//! Every probe implements [`Probe`] and answers with an [`Observation`]: which node, which
//! kind of probe, whether it was healthy, what was seen, how long it took and when. A service
//! that is down is an *observation* (`ok: false` with the reason in `detail`), never an error;
//! [`Probe::probe`] fails only when the probe itself is misconfigured (e.g. a password
//! reference that cannot be resolved). Each probe has its own timeout, and a [`ProbeSet`] runs
//! all of them concurrently.
//!
//! - [`SipProbe`]: SIP OPTIONS over UDP or TCP; the protocol part (request, response parsing,
//!   matching) is pure and lives in [`sip_message`].
//! - [`HttpProbe`]: HTTP(S) GET, status range and optional body match.
//! - [`TcpProbe`]: a TCP connect.
//! - [`PgProbe`]: PostgreSQL connect, `SELECT 1`, and optionally "accepts writes".
//! - [`SyncthingHealthProbe`]: Syncthing's unauthenticated `/rest/noauth/health`.
//!
//! ```no_run
//! # async fn demo(config: &fspbx_ha_core::config::ClusterConfig) {
//! use fspbx_ha_core::probe::ProbeSet;
//! let probes = ProbeSet::from_config(config, &[None, None]).unwrap();
//! for o in probes.run_all().await {
//!     println!("{} {} {} {:?} {}", o.node, o.kind, if o.ok { "ok" } else { "FAIL" }, o.latency, o.detail);
//! }
//! # }
//! ```

mod http;
mod observe;
mod postgres;
mod set;
mod sip;
pub mod sip_message;
mod syncthing;
mod tcp;

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use http::{HttpProbe, StatusRange};
pub use postgres::PgProbe;
pub use set::ProbeSet;
pub use sip::SipProbe;
pub use sip_message::SipAcceptance;
pub use syncthing::SyncthingHealthProbe;
pub use tcp::TcpProbe;

pub use crate::config::{PgProbeMode, SipTransport};

/// Which kind of probe made an observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProbeKind {
    /// SIP OPTIONS over UDP.
    SipUdp,
    /// SIP OPTIONS over TCP.
    SipTcp,
    /// HTTP(S) GET.
    Http,
    /// TCP connect.
    Tcp,
    /// PostgreSQL connect and `SELECT 1`.
    Postgres,
    /// PostgreSQL connect, `SELECT 1` and accepts writes.
    PostgresWritable,
    /// Syncthing `/rest/noauth/health`.
    Syncthing,
}

impl ProbeKind {
    /// The SIP kind for `transport`.
    pub fn sip(transport: SipTransport) -> ProbeKind {
        match transport {
            SipTransport::Udp => ProbeKind::SipUdp,
            SipTransport::Tcp => ProbeKind::SipTcp,
        }
    }

    /// Short name: `sip/udp`, `sip/tcp`, `http`, `tcp`, `postgres`, `postgres/writable`,
    /// `syncthing`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::SipUdp => "sip/udp",
            ProbeKind::SipTcp => "sip/tcp",
            ProbeKind::Http => "http",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Postgres => "postgres",
            ProbeKind::PostgresWritable => "postgres/writable",
            ProbeKind::Syncthing => "syncthing",
        }
    }
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one probe saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observation {
    /// The node probed.
    pub node: String,
    /// The kind of probe.
    pub kind: ProbeKind,
    /// What was probed, e.g. `udp:127.0.0.2:5060` or a URL (never a password).
    pub target: String,
    /// The service answered as required.
    pub ok: bool,
    /// What was seen: `200 OK`, `no answer within 1s`, `connection refused`, …
    pub detail: String,
    /// Time from the start of the probe to its verdict (the timeout when nothing answered).
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    /// When the probe started (wall clock).
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
}

impl fmt::Display for Observation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node {} {} {}: {} in {:.1} ms: {}",
            self.node,
            self.kind,
            self.target,
            if self.ok { "ok" } else { "FAILED" },
            self.latency.as_secs_f64() * 1000.0,
            self.detail
        )
    }
}

/// A health probe of one service of one node.
#[async_trait::async_trait]
pub trait Probe: Send + Sync + fmt::Debug {
    /// The node it probes.
    fn node(&self) -> &str;
    /// Its kind.
    fn kind(&self) -> ProbeKind;
    /// What it probes, for messages (never a password).
    fn target(&self) -> String;
    /// The longest one run may take; a run that takes longer is a failed observation.
    fn timeout(&self) -> Duration;
    /// Probes once. A service that is down, slow or wrong is an `Ok` observation with
    /// `ok: false`; `Err` means the probe itself is misconfigured.
    async fn probe(&self) -> crate::Result<Observation>;
}
