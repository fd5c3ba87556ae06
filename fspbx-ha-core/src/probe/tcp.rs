//! The TCP connect probe.

use std::time::Duration;

use tokio::net::TcpStream;

use super::observe::{Verdict, io_reason, observe};
use super::sip::resolve;
use super::{Observation, Probe, ProbeKind};

/// Healthy when a TCP connection to `host:port` is accepted within the timeout (it is closed
/// at once).
#[derive(Debug, Clone)]
pub struct TcpProbe {
    node: String,
    host: String,
    port: u16,
    timeout: Duration,
}

impl TcpProbe {
    /// A probe of `host:port` for `node`, timeout 1 s.
    pub fn new(node: &str, host: &str, port: u16) -> TcpProbe {
        TcpProbe {
            node: node.to_owned(),
            host: host.to_owned(),
            port,
            timeout: Duration::from_secs(1),
        }
    }

    /// Sets the timeout of one run.
    pub fn with_timeout(mut self, timeout: Duration) -> TcpProbe {
        self.timeout = timeout;
        self
    }

    async fn run(&self) -> Verdict {
        let target = match resolve(&self.host, self.port).await {
            Ok(t) => t,
            Err(v) => return v,
        };
        match TcpStream::connect(target).await {
            Ok(_) => Verdict::ok(format!("connected to {target}")),
            Err(e) => Verdict::fail(format!("connect to {target}: {}", io_reason(&e))),
        }
    }
}

#[async_trait::async_trait]
impl Probe for TcpProbe {
    fn node(&self) -> &str {
        &self.node
    }

    fn kind(&self) -> ProbeKind {
        ProbeKind::Tcp
    }

    fn target(&self) -> String {
        format!("{}:{}", super::sip_message::uri_host(&self.host), self.port)
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn probe(&self) -> crate::Result<Observation> {
        observe(self, self.timeout, async { Ok(self.run().await) }).await
    }
}
