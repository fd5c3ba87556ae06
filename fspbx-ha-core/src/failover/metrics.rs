//! What the controller exposes about itself: a [`ControllerStatus`] snapshot, its Prometheus
//! text rendering (pure), and a tiny HTTP server for `GET /metrics` and `GET /health`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::Health;
use crate::probe::Observation;
use crate::{Error, Result};

/// One node as the controller sees it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// The policy's verdict.
    pub health: Health,
    /// Whether its last probe round passed (`None` before the first).
    pub last_round_ok: Option<bool>,
    /// The observations of its last round.
    pub observations: Vec<Observation>,
}

/// A snapshot of the controller, shared with `/metrics`, `/health` and the frontends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControllerStatus {
    /// When the controller started.
    #[serde(with = "humantime_serde")]
    pub started_at: SystemTime,
    /// The probe interval.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Probe rounds completed.
    pub rounds: u64,
    /// When the last round completed.
    #[serde(with = "humantime_serde")]
    pub last_round_at: Option<SystemTime>,
    /// The node the floating record points at, as last read (`None`: neither, or unknown).
    pub active: Option<String>,
    /// Why the last read of the floating record failed, if it did.
    pub record_error: Option<String>,
    /// The target of a flip in progress.
    pub pending_flip: Option<String>,
    /// Both nodes, A first.
    pub nodes: Vec<NodeStatus>,
    /// Flips applied.
    pub flips_ok: u64,
    /// Flips that failed (provider error, lost compare-and-swap, timeout).
    pub flips_failed: u64,
    /// Fencing attempts.
    pub fences: u64,
    /// Notifications sent.
    pub notifications: u64,
    /// The last critical message, if any.
    pub last_alert: Option<String>,
}

impl ControllerStatus {
    /// A status before the first round.
    pub fn new(interval: Duration, nodes: &[String]) -> ControllerStatus {
        ControllerStatus {
            started_at: SystemTime::now(),
            interval,
            rounds: 0,
            last_round_at: None,
            active: None,
            record_error: None,
            pending_flip: None,
            nodes: nodes
                .iter()
                .map(|n| NodeStatus {
                    name: n.clone(),
                    health: Health::Unknown,
                    last_round_ok: None,
                    observations: vec![],
                })
                .collect(),
            flips_ok: 0,
            flips_failed: 0,
            fences: 0,
            notifications: 0,
            last_alert: None,
        }
    }

    /// Whether the controller is alive at `now`: a round completed within `stale_after` (or
    /// it started less than that ago).
    pub fn healthy(&self, now: SystemTime, stale_after: Duration) -> bool {
        let last = self.last_round_at.unwrap_or(self.started_at);
        now.duration_since(last).unwrap_or_default() <= stale_after
    }
}

fn health_value(h: Health) -> u8 {
    match h {
        Health::Down => 0,
        Health::Up => 1,
        Health::Unknown => 2,
    }
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The Prometheus text exposition (version 0.0.4) of `s`.
pub fn render_prometheus(s: &ControllerStatus) -> String {
    let mut o = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(o, "{name}{labels} {v}");
        }
    };
    metric(
        "fspbx_ha_rounds_total",
        "counter",
        "Probe rounds completed.",
        &[(String::new(), s.rounds as f64)],
    );
    metric(
        "fspbx_ha_last_round_timestamp_seconds",
        "gauge",
        "Unix time of the last completed probe round.",
        &[(String::new(), s.last_round_at.map_or(0.0, secs))],
    );
    let nodes = |f: &dyn Fn(&NodeStatus) -> f64| -> Vec<(String, f64)> {
        s.nodes
            .iter()
            .map(|n| (format!("{{node=\"{}\"}}", label(&n.name)), f(n)))
            .collect()
    };
    metric(
        "fspbx_ha_node_health",
        "gauge",
        "Policy health of a node: 1 up, 0 down, 2 unknown.",
        &nodes(&|n| f64::from(health_value(n.health))),
    );
    metric(
        "fspbx_ha_node_last_round_ok",
        "gauge",
        "Whether the node's last probe round passed (1) or not (0); -1 before the first.",
        &nodes(&|n| {
            n.last_round_ok
                .map_or(-1.0, |ok| if ok { 1.0 } else { 0.0 })
        }),
    );
    metric(
        "fspbx_ha_node_active",
        "gauge",
        "1 for the node the floating record points at.",
        &nodes(&|n| f64::from(u8::from(s.active.as_deref() == Some(&n.name)))),
    );
    let probes: Vec<(String, f64)> = s
        .nodes
        .iter()
        .flat_map(|n| n.observations.iter())
        .map(|o| {
            (
                format!(
                    "{{node=\"{}\",kind=\"{}\",target=\"{}\"}}",
                    label(&o.node),
                    o.kind,
                    label(&o.target)
                ),
                o.latency.as_secs_f64(),
            )
        })
        .collect();
    let probes_ok: Vec<(String, f64)> = s
        .nodes
        .iter()
        .flat_map(|n| n.observations.iter())
        .map(|o| {
            (
                format!(
                    "{{node=\"{}\",kind=\"{}\",target=\"{}\"}}",
                    label(&o.node),
                    o.kind,
                    label(&o.target)
                ),
                if o.ok { 1.0 } else { 0.0 },
            )
        })
        .collect();
    metric(
        "fspbx_ha_probe_latency_seconds",
        "gauge",
        "Latency of the last run of each probe.",
        &probes,
    );
    metric(
        "fspbx_ha_probe_ok",
        "gauge",
        "Whether the last run of each probe passed.",
        &probes_ok,
    );
    metric(
        "fspbx_ha_flips_total",
        "counter",
        "Flips of the floating record by outcome.",
        &[
            ("{result=\"ok\"}".to_owned(), s.flips_ok as f64),
            ("{result=\"failed\"}".to_owned(), s.flips_failed as f64),
        ],
    );
    metric(
        "fspbx_ha_fences_total",
        "counter",
        "Fencing attempts.",
        &[(String::new(), s.fences as f64)],
    );
    metric(
        "fspbx_ha_notifications_total",
        "counter",
        "Notifications sent.",
        &[(String::new(), s.notifications as f64)],
    );
    metric(
        "fspbx_ha_flip_pending",
        "gauge",
        "1 while a flip is in progress.",
        &[(String::new(), f64::from(u8::from(s.pending_flip.is_some())))],
    );
    o
}

/// A bound `/metrics` + `/health` listener.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
}

impl MetricsServer {
    /// Binds `addr` (`failover.metrics_listen`); port 0 picks a free one.
    pub async fn bind(addr: SocketAddr) -> Result<MetricsServer> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::FailoverIo {
                action: "bind the metrics listener on",
                target: addr.to_string(),
                key: "failover.metrics_listen",
                source,
            })?;
        Ok(MetricsServer { listener })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until the task is dropped or aborted: `GET /metrics` (Prometheus text),
    /// `GET /health` (`200 ok` while rounds complete within `stale_after`, else `503`),
    /// anything else `404`.
    pub async fn serve(self, status: Arc<Mutex<ControllerStatus>>, stale_after: Duration) {
        loop {
            let Ok((stream, _)) = self.listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let status = status.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    answer(stream, &status, stale_after),
                )
                .await;
            });
        }
    }
}

/// The status line and body for a request line (`GET /metrics HTTP/1.1`).
pub fn respond(
    request_line: &str,
    status: &ControllerStatus,
    now: SystemTime,
    stale_after: Duration,
) -> (u16, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    if method != "GET" {
        return (405, "text/plain", "only GET\n".into());
    }
    match path {
        "/metrics" => (200, "text/plain; version=0.0.4", render_prometheus(status)),
        "/health" => {
            if status.healthy(now, stale_after) {
                (200, "text/plain", "ok\n".into())
            } else {
                let age = status
                    .last_round_at
                    .and_then(|t| now.duration_since(t).ok())
                    .map_or("no round yet".to_owned(), |d| {
                        format!("last round {:.1}s ago", d.as_secs_f64())
                    });
                (503, "text/plain", format!("stale: {age}\n"))
            }
        }
        _ => (404, "text/plain", "try /metrics or /health\n".into()),
    }
}

async fn answer(
    mut stream: TcpStream,
    status: &Mutex<ControllerStatus>,
    stale_after: Duration,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let line = head.lines().next().unwrap_or("");
    let snapshot = status.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let (code, ctype, body) = respond(line, &snapshot, SystemTime::now(), stale_after);
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let resp = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_nodes_health_and_active() {
        let mut s = ControllerStatus::new(Duration::from_millis(500), &["a".into(), "b".into()]);
        s.rounds = 7;
        s.active = Some("b".into());
        s.nodes[0].health = Health::Down;
        s.nodes[1].health = Health::Up;
        s.nodes[1].last_round_ok = Some(true);
        s.flips_ok = 1;
        let t = render_prometheus(&s);
        assert!(t.contains("fspbx_ha_rounds_total 7\n"), "{t}");
        assert!(t.contains("fspbx_ha_node_health{node=\"a\"} 0\n"), "{t}");
        assert!(t.contains("fspbx_ha_node_health{node=\"b\"} 1\n"), "{t}");
        assert!(t.contains("fspbx_ha_node_active{node=\"b\"} 1\n"), "{t}");
        assert!(t.contains("fspbx_ha_node_active{node=\"a\"} 0\n"), "{t}");
        assert!(
            t.contains("fspbx_ha_node_last_round_ok{node=\"a\"} -1\n"),
            "{t}"
        );
        assert!(t.contains("fspbx_ha_flips_total{result=\"ok\"} 1\n"), "{t}");
        assert!(t.contains("# TYPE fspbx_ha_flips_total counter\n"), "{t}");
    }

    #[test]
    fn health_turns_503_when_rounds_stop() {
        let mut s = ControllerStatus::new(Duration::from_millis(500), &["a".into(), "b".into()]);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        s.last_round_at = Some(t0);
        let stale = Duration::from_secs(3);
        let (code, _, body) = respond(
            "GET /health HTTP/1.1",
            &s,
            t0 + Duration::from_secs(1),
            stale,
        );
        assert_eq!((code, body.as_str()), (200, "ok\n"));
        let (code, _, body) = respond(
            "GET /health HTTP/1.1",
            &s,
            t0 + Duration::from_secs(10),
            stale,
        );
        assert_eq!(code, 503);
        assert!(body.contains("last round 10.0s ago"), "{body}");
        assert_eq!(respond("GET /nope HTTP/1.1", &s, t0, stale).0, 404);
        assert_eq!(respond("POST /metrics HTTP/1.1", &s, t0, stale).0, 405);
        let (code, ctype, body) = respond("GET /metrics?x=1 HTTP/1.1", &s, t0, stale);
        assert_eq!((code, ctype), (200, "text/plain; version=0.0.4"));
        assert!(body.contains("fspbx_ha_rounds_total 0"));
    }
}
