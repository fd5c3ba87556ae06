//! The SIP OPTIONS probe over UDP and TCP (the protocol part is in [`super::sip_message`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::Instant;

use super::observe::{Verdict, io_reason, no_answer, observe};
use super::sip_message::{
    Framing, OptionsRequest, Outcome, Parsed, SipAcceptance, SipResponse, classify, parse_response,
};
use super::{Observation, Probe, ProbeKind};
use crate::config::{SipProbeSpec, SipTransport};

/// RFC 3261 T1: first UDP retransmission after 500 ms, doubling up to T2.
const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2: the longest interval between UDP retransmissions of a non-INVITE request.
const T2: Duration = Duration::from_secs(4);
/// Extra time the outer guard gives the probe beyond its own deadline (it ends on its own).
const GUARD_SLACK: Duration = Duration::from_millis(250);

/// Sends SIP OPTIONS to `sip:ping@host:port` over UDP or TCP and waits for the matching final
/// answer.
///
/// The response must carry our Via branch, Call-ID and CSeq; anything else arriving meanwhile
/// is ignored (and counted in the detail). 1xx answers are skipped. By default any final
/// answer counts as healthy (a `403` proves the SIP stack is alive);
/// [`SipProbe::require_2xx`] asks for a 2xx. Over UDP the request is retransmitted after
/// 500 ms, 1 s, 2 s, … (RFC 3261 timer E) until the timeout, and an ICMP "port unreachable"
/// ends the probe at once; responses must come from the probed address (as FreeSWITCH's and
/// Kamailio's do: they answer from the socket the request reached).
#[derive(Debug, Clone)]
pub struct SipProbe {
    node: String,
    host: String,
    port: u16,
    transport: SipTransport,
    acceptance: SipAcceptance,
    timeout: Duration,
    bind: Option<SocketAddr>,
}

impl SipProbe {
    /// A probe of `host:port` over `transport` for `node`, timeout 1 s, any final answer
    /// healthy.
    pub fn new(node: &str, host: &str, port: u16, transport: SipTransport) -> SipProbe {
        SipProbe {
            node: node.to_owned(),
            host: host.to_owned(),
            port,
            transport,
            acceptance: SipAcceptance::AnyFinal,
            timeout: Duration::from_secs(1),
            bind: None,
        }
    }

    /// The probe `nodes[i].probes.sip` describes; `default_timeout` is `probes.timeout`.
    pub fn from_spec(node: &str, spec: &SipProbeSpec, default_timeout: Duration) -> SipProbe {
        SipProbe::new(node, &spec.host, spec.port, spec.transport)
            .with_timeout(spec.timeout.unwrap_or(default_timeout))
            .require_2xx(spec.require_2xx)
    }

    /// Sets the timeout of one run.
    pub fn with_timeout(mut self, timeout: Duration) -> SipProbe {
        self.timeout = timeout;
        self
    }

    /// Only a 2xx counts as healthy (`true`), or any final answer (`false`, the default).
    pub fn require_2xx(mut self, yes: bool) -> SipProbe {
        self.acceptance = if yes {
            SipAcceptance::Require2xx
        } else {
            SipAcceptance::AnyFinal
        };
        self
    }

    /// Sends from this local address (a chosen source address or port) instead of an
    /// ephemeral port on the unspecified address of the target's family.
    pub fn bind_to(mut self, local: SocketAddr) -> SipProbe {
        self.bind = Some(local);
        self
    }

    /// Which answers count as healthy.
    pub fn acceptance(&self) -> SipAcceptance {
        self.acceptance
    }

    async fn run(&self) -> Verdict {
        let deadline = Instant::now() + self.timeout;
        let target = match resolve(&self.host, self.port).await {
            Ok(t) => t,
            Err(v) => return v,
        };
        let local = self.bind.unwrap_or_else(|| unspecified_like(target));
        match self.transport {
            SipTransport::Udp => self.run_udp(target, local, deadline).await,
            SipTransport::Tcp => self.run_tcp(target, local, deadline).await,
        }
    }

    async fn run_udp(&self, target: SocketAddr, local: SocketAddr, deadline: Instant) -> Verdict {
        let sock = match UdpSocket::bind(local).await {
            Ok(s) => s,
            Err(e) => return Verdict::fail(format!("cannot bind UDP {local}: {}", io_reason(&e))),
        };
        // Connected: the kernel reports ICMP port-unreachable as ECONNREFUSED on recv.
        if let Err(e) = sock.connect(target).await {
            return Verdict::fail(format!("cannot send to {target}: {}", io_reason(&e)));
        }
        let local = match sock.local_addr() {
            Ok(a) => a,
            Err(e) => return Verdict::fail(format!("no local address: {}", io_reason(&e))),
        };
        let request = OptionsRequest::new(SipTransport::Udp, &self.host, self.port, local);
        let bytes = request.render().into_bytes();
        let refused = || {
            Verdict::fail(format!(
                "port unreachable (ICMP): nothing listens on udp {target}"
            ))
        };
        match sock.send(&bytes).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return refused(),
            Err(e) => return Verdict::fail(format!("cannot send to {target}: {}", io_reason(&e))),
        }
        let mut waiting = Waiting::default();
        let mut interval = T1;
        let mut retransmit_at = Instant::now() + interval;
        let mut buf = vec![0u8; 65_535];
        loop {
            let wake = retransmit_at.min(deadline);
            match tokio::time::timeout_at(wake, sock.recv(&mut buf)).await {
                Err(_) if Instant::now() >= deadline => {
                    return waiting.timed_out(self.timeout);
                }
                Err(_) => {
                    // Timer E: same request (same branch) again, doubling up to T2.
                    waiting.retransmissions += 1;
                    if let Err(e) = sock.send(&bytes).await {
                        if e.kind() == std::io::ErrorKind::ConnectionRefused {
                            return refused();
                        }
                        return Verdict::fail(format!(
                            "cannot send to {target}: {}",
                            io_reason(&e)
                        ));
                    }
                    interval = (interval * 2).min(T2);
                    retransmit_at = Instant::now() + interval;
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return refused();
                }
                Ok(Err(e)) => {
                    return Verdict::fail(format!("receive from {target}: {}", io_reason(&e)));
                }
                Ok(Ok(n)) => match parse_response(&buf[..n], Framing::Datagram) {
                    Ok(Parsed::Complete { response, .. }) => {
                        if let Some(v) = waiting.consider(&request, &response, self.acceptance) {
                            return v;
                        }
                    }
                    // Not a response at all (a stray request, a keepalive, noise): skip it.
                    Ok(Parsed::Incomplete) | Err(_) => waiting.ignored += 1,
                },
            }
        }
    }

    async fn run_tcp(&self, target: SocketAddr, local: SocketAddr, deadline: Instant) -> Verdict {
        let connect = async {
            let sock = if target.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }?;
            if self.bind.is_some() {
                sock.bind(local)?;
            }
            sock.connect(target).await
        };
        let mut stream: TcpStream = match tokio::time::timeout_at(deadline, connect).await {
            Err(_) => {
                return Verdict::fail(format!(
                    "TCP connect to {target}: {}",
                    no_answer(self.timeout)
                ));
            }
            Ok(Err(e)) => {
                return Verdict::fail(format!("TCP connect to {target}: {}", io_reason(&e)));
            }
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(e) => return Verdict::fail(format!("no local address: {}", io_reason(&e))),
        };
        let request = OptionsRequest::new(SipTransport::Tcp, &self.host, self.port, local);
        if let Err(e) = stream.write_all(request.render().as_bytes()).await {
            return Verdict::fail(format!("send to {target}: {}", io_reason(&e)));
        }
        let mut waiting = Waiting::default();
        let mut buf: Vec<u8> = Vec::with_capacity(2048);
        let mut chunk = [0u8; 4096];
        loop {
            // Take every complete message already buffered.
            loop {
                match parse_response(&buf, Framing::Stream) {
                    Ok(Parsed::Incomplete) => break,
                    Ok(Parsed::Complete { response, len }) => {
                        buf.drain(..len);
                        if let Some(v) = waiting.consider(&request, &response, self.acceptance) {
                            return v;
                        }
                    }
                    Err(m) => {
                        return Verdict::fail(format!("malformed SIP response from {target}: {m}"));
                    }
                }
            }
            match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                Err(_) => return waiting.timed_out(self.timeout),
                Ok(Ok(0)) => {
                    return Verdict::fail(format!(
                        "{target} closed the connection before a final answer{}",
                        waiting.note()
                    ));
                }
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => {
                    return Verdict::fail(format!("receive from {target}: {}", io_reason(&e)));
                }
            }
        }
    }
}

/// What arrived while waiting for our final answer.
#[derive(Debug, Default)]
struct Waiting {
    ignored: usize,
    provisional: Option<String>,
    retransmissions: usize,
}

impl Waiting {
    /// A verdict when `response` is our final answer; `None` to keep waiting.
    fn consider(
        &mut self,
        request: &OptionsRequest,
        response: &SipResponse,
        acceptance: SipAcceptance,
    ) -> Option<Verdict> {
        if request.mismatch(response).is_some() {
            self.ignored += 1;
            return None;
        }
        let mut detail = response.status_line();
        if let Some(server) = response.server() {
            detail.push_str(&format!(" from {server}"));
        }
        detail.push_str(&self.note());
        match classify(response, acceptance) {
            Outcome::Provisional => {
                self.provisional = Some(response.status_line());
                None
            }
            Outcome::Healthy => Some(Verdict::ok(detail)),
            Outcome::Unhealthy => Some(Verdict::fail(format!("{detail}; a 2xx is required"))),
        }
    }

    /// ` (ignored 1 unmatched message, 2 retransmissions)`, or empty.
    fn note(&self) -> String {
        let mut parts = Vec::new();
        if self.ignored > 0 {
            parts.push(format!(
                "ignored {} unmatched message{}",
                self.ignored,
                if self.ignored == 1 { "" } else { "s" }
            ));
        }
        if self.retransmissions > 0 {
            parts.push(format!("{} retransmission(s)", self.retransmissions));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }

    fn timed_out(&self, timeout: Duration) -> Verdict {
        let mut detail = match &self.provisional {
            Some(p) => format!("only {p}, no final answer within {timeout:?}"),
            None => no_answer(timeout),
        };
        detail.push_str(&self.note());
        Verdict::fail(detail)
    }
}

/// The first address `host:port` resolves to, or a failed verdict naming the host.
pub(crate) async fn resolve(host: &str, port: u16) -> Result<SocketAddr, Verdict> {
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, port));
    }
    match tokio::net::lookup_host((host, port)).await {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| Verdict::fail(format!("{host} resolves to no address"))),
        Err(e) => Err(Verdict::fail(format!("cannot resolve {host}: {e}"))),
    }
}

/// `0.0.0.0:0` or `[::]:0`, matching the family of `target`.
fn unspecified_like(target: SocketAddr) -> SocketAddr {
    match target {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

#[async_trait::async_trait]
impl Probe for SipProbe {
    fn node(&self) -> &str {
        &self.node
    }

    fn kind(&self) -> ProbeKind {
        ProbeKind::sip(self.transport)
    }

    fn target(&self) -> String {
        let t = match self.transport {
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
        };
        format!(
            "sip:ping@{}:{};transport={t}",
            super::sip_message::uri_host(&self.host),
            self.port
        )
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn probe(&self) -> crate::Result<Observation> {
        observe(self, self.timeout + GUARD_SLACK, async {
            Ok(self.run().await)
        })
        .await
    }
}
