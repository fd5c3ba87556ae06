//! The pair at a glance (`fspbx-ha status`): where the floating record points and whether every
//! authoritative server agrees, replication health both ways (with schema drift, tables to
//! refresh, the sequence strategy's compliance and slot retention), and Syncthing's state. The three
//! parts are read concurrently; a part that cannot be read is reported, never fatal. The verdict
//! is a pure function of the three parts ([`verdict`]).

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

use crate::config::ClusterConfig;
use crate::files::{Files, FilesOptions, FilesStatus};
use crate::floating::{Floating, FloatingReport};
use crate::replication::slots::{SlotSafety, reachable_slots};
use crate::replication::{self, Pair, ReplicationStatus, Verdict};

/// One part of the status: read, not configured, or not readable.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Part<T> {
    /// Read.
    Ok {
        /// What was read.
        value: T,
    },
    /// The configuration has nothing to read here.
    NotConfigured {
        /// Why.
        reason: String,
    },
    /// Reading failed.
    Unavailable {
        /// The error, as text (never a secret).
        error: String,
    },
}

impl<T> Part<T> {
    fn from_result(r: crate::Result<T>) -> Part<T> {
        match r {
            Ok(value) => Part::Ok { value },
            Err(e) => Part::Unavailable {
                error: e.to_string(),
            },
        }
    }
}

/// The pair's state.
#[derive(Debug, Clone, Serialize)]
pub struct PairStatus {
    /// healthy / degraded / broken.
    pub verdict: Verdict,
    /// Why, when not healthy (and notes).
    pub reasons: Vec<String>,
    /// The floating record and what the authoritative servers answer.
    pub floating: Part<FloatingReport>,
    /// Replication both ways.
    pub replication: Part<ReplicationStatus>,
    /// When replication cannot be read as a pair (a node down): the slots of the node(s) that
    /// still answer, with their retained WAL and warnings. `None` otherwise.
    pub reachable_slots: Option<SlotSafety>,
    /// Syncthing both ways, with conflict counts.
    pub files: Part<FilesStatus>,
}

/// Reads every part of the pair's state, concurrently.
pub async fn pair_status(config: &ClusterConfig) -> PairStatus {
    let floating = async {
        match Floating::new(config) {
            Ok(f) => Part::from_result(f.show().await),
            Err(e) => Part::Unavailable {
                error: e.to_string(),
            },
        }
    };
    let repl = async {
        match Pair::connect(config).await {
            Ok(pair) => (Part::from_result(replication::status(&pair).await), None),
            Err(e) => (
                Part::Unavailable {
                    error: e.to_string(),
                },
                reachable_slots(config).await.0,
            ),
        }
    };
    let files = async {
        if config.nodes.iter().any(|n| n.syncthing.is_none()) {
            return Part::NotConfigured {
                reason: "no [nodes.syncthing] section on every node".into(),
            };
        }
        match Files::connect(config, FilesOptions::default()).await {
            Ok(f) => Part::from_result(f.status().await),
            Err(e) => Part::Unavailable {
                error: e.to_string(),
            },
        }
    };
    let (floating, (replication, reachable_slots), files) = tokio::join!(floating, repl, files);
    let (verdict, mut reasons) = verdict(&floating, &replication, &files);
    if let Some(s) = &reachable_slots {
        reasons.extend(
            s.critical
                .iter()
                .chain(&s.warnings)
                .map(|w| format!("slots: {w}")),
        );
    }
    PairStatus {
        verdict,
        reasons,
        floating,
        replication,
        reachable_slots,
        files,
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Healthy => "healthy",
        Verdict::Degraded => "degraded",
        Verdict::Broken => "broken",
    }
}

fn worse(a: Verdict, b: Verdict) -> Verdict {
    use Verdict::*;
    match (a, b) {
        (Broken, _) | (_, Broken) => Broken,
        (Degraded, _) | (_, Degraded) => Degraded,
        _ => Healthy,
    }
}

/// Addresses every reachable server answers, if they all answer the same.
fn servers_agree(report: &FloatingReport) -> Option<bool> {
    use fspbx_ha_dns::propagation::Outcome;
    if report.servers.is_empty() {
        return None;
    }
    let want: Vec<IpAddr> = {
        let mut v: Vec<IpAddr> = report
            .floating
            .iter()
            .filter(|r| r.kind == fspbx_ha_dns::RecordKind::A)
            .flat_map(|r| r.values.clone())
            .collect();
        v.sort();
        v
    };
    Some(report.servers.iter().all(|s| match &s.outcome {
        Outcome::Records { values, .. } => *values == want,
        _ => false,
    }))
}

/// The verdict and its reasons from the three parts. Pure.
pub fn verdict(
    floating: &Part<FloatingReport>,
    replication: &Part<ReplicationStatus>,
    files: &Part<FilesStatus>,
) -> (Verdict, Vec<String>) {
    let mut v = Verdict::Healthy;
    let mut reasons = Vec::new();
    match floating {
        Part::Ok { value } => {
            if value.active_node.is_none() {
                v = Verdict::Broken;
                reasons.push(if value.floating.is_empty() {
                    format!("floating record {} is absent", value.name)
                } else {
                    format!("floating record {} points at neither node", value.name)
                });
            }
            match servers_agree(value) {
                Some(false) => {
                    v = worse(v, Verdict::Degraded);
                    reasons.push(
                        "the authoritative servers do not all answer the floating record's value"
                            .into(),
                    );
                }
                None => {
                    v = worse(v, Verdict::Degraded);
                    reasons.push(format!(
                        "no authoritative server answered{}",
                        value
                            .servers_error
                            .as_deref()
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ));
                }
                Some(true) => {}
            }
        }
        Part::Unavailable { error } => {
            v = Verdict::Broken;
            reasons.push(format!("floating record: {error}"));
        }
        Part::NotConfigured { reason } => reasons.push(format!("floating record: {reason}")),
    }
    match replication {
        Part::Ok { value } => {
            v = worse(v, value.verdict);
            reasons.extend(value.reasons.iter().map(|r| format!("replication: {r}")));
        }
        Part::Unavailable { error } => {
            v = Verdict::Broken;
            reasons.push(format!("replication: {error}"));
        }
        Part::NotConfigured { reason } => reasons.push(format!("replication: {reason}")),
    }
    match files {
        Part::Ok { value } => {
            if !value.sync.connected() {
                v = worse(v, Verdict::Degraded);
                reasons.push("files: the Syncthing daemons are not connected".into());
            } else if !value.sync.is_complete() {
                v = worse(v, Verdict::Degraded);
                reasons.push(format!("files: {}", value.sync.pending()));
            }
            for c in &value.conflicts {
                if let Some(n) = c.count.filter(|&n| n > 0) {
                    v = worse(v, Verdict::Degraded);
                    reasons.push(format!("files: {n} sync-conflict file(s) on {}", c.node));
                }
            }
        }
        Part::Unavailable { error } => {
            v = worse(v, Verdict::Degraded);
            reasons.push(format!("files: {error}"));
        }
        Part::NotConfigured { reason } => reasons.push(format!("files: {reason}")),
    }
    (v, reasons)
}

impl PairStatus {
    /// A short human summary, one line per part.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "pair: {}", verdict_word(self.verdict));
        match &self.floating {
            Part::Ok { value } => {
                let values: Vec<String> = value
                    .floating
                    .iter()
                    .flat_map(|r| r.values.iter().map(|v| v.to_string()))
                    .collect();
                let agree = match servers_agree(value) {
                    Some(true) => {
                        format!("all {} authoritative servers agree", value.servers.len())
                    }
                    Some(false) => "authoritative servers disagree".into(),
                    None => "no authoritative server answered".into(),
                };
                let _ = writeln!(
                    out,
                    "  floating     {} -> node {} ({}); {agree}",
                    value.name,
                    value.active_node.as_deref().unwrap_or("none"),
                    if values.is_empty() {
                        "absent".into()
                    } else {
                        values.join(", ")
                    },
                );
            }
            Part::NotConfigured { reason } => {
                let _ = writeln!(out, "  floating     not configured: {reason}");
            }
            Part::Unavailable { error } => {
                let _ = writeln!(out, "  floating     unavailable: {error}");
            }
        }
        match &self.replication {
            Part::Ok { value } => {
                let dirs: Vec<String> = value
                    .directions
                    .iter()
                    .map(|d| {
                        format!(
                            "{}->{} {}",
                            d.from,
                            d.to,
                            d.heartbeat_lag_s
                                .map_or("no heartbeat".into(), |s| format!("{s:.2} s"))
                        )
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "  replication  {}; heartbeat lag {}",
                    verdict_word(value.verdict),
                    dirs.join(", ")
                );
                if let Some(c) = &value.conflicts {
                    let states: Vec<String> = c
                        .directions
                        .iter()
                        .map(|d| format!("{}->{} {}", d.from, d.to, d.state.as_str()))
                        .collect();
                    let _ = writeln!(out, "  apply        {}", states.join(", "));
                }
                if let Some(d) = &value.drift {
                    let _ = writeln!(out, "  schema       {}", d.summary());
                }
                if let Some(q) = &value.sequences {
                    let _ = writeln!(out, "  sequences    {}", q.summary());
                }
                if let Some(sl) = &value.slots {
                    for l in sl.summary_lines() {
                        let _ = writeln!(out, "  slots        {l}");
                    }
                }
            }
            Part::NotConfigured { reason } => {
                let _ = writeln!(out, "  replication  not configured: {reason}");
            }
            Part::Unavailable { error } => {
                let _ = writeln!(out, "  replication  unavailable: {error}");
                if let Some(sl) = &self.reachable_slots {
                    for l in sl.summary_lines() {
                        let _ = writeln!(out, "  slots        {l}");
                    }
                }
            }
        }
        match &self.files {
            Part::Ok { value } => {
                let conflicts: u64 = value.conflicts.iter().filter_map(|c| c.count).sum();
                let _ = writeln!(
                    out,
                    "  files        {}; {conflicts} sync-conflict file(s)",
                    value.sync.summary()
                );
            }
            Part::NotConfigured { reason } => {
                let _ = writeln!(out, "  files        not configured: {reason}");
            }
            Part::Unavailable { error } => {
                let _ = writeln!(out, "  files        unavailable: {error}");
            }
        }
        if self.verdict != Verdict::Healthy {
            for r in &self.reasons {
                let _ = writeln!(out, "  - {r}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fspbx_ha_dns::propagation::{Outcome, ServerAnswer};
    use fspbx_ha_dns::{RecordKind, RecordSet};

    use super::*;

    fn floating(values: &[&str], answers: &[&[&str]]) -> FloatingReport {
        let ips = |v: &[&str]| -> Vec<IpAddr> { v.iter().map(|s| s.parse().unwrap()).collect() };
        FloatingReport {
            zone: "example.test".into(),
            name: "pbx.example.test".into(),
            provider: "rfc2136",
            atomic_cas: true,
            floating: if values.is_empty() {
                vec![]
            } else {
                vec![RecordSet {
                    name: "pbx.example.test.".into(),
                    kind: RecordKind::A,
                    ttl: 30,
                    values: ips(values),
                }]
            },
            active_node: (values == ["127.0.0.2"]).then(|| "a".to_string()),
            nodes: vec![],
            servers: answers
                .iter()
                .enumerate()
                .map(|(i, a)| ServerAnswer {
                    server: format!("127.0.0.{}:53", 53 + i).parse().unwrap(),
                    outcome: Outcome::Records {
                        ttl: 30,
                        values: ips(a),
                    },
                    soa_serial: Some(1),
                    rtt: Duration::from_millis(1),
                })
                .collect(),
            servers_error: None,
        }
    }

    fn repl(verdict: Verdict, reasons: &[&str]) -> Part<ReplicationStatus> {
        Part::Ok {
            value: ReplicationStatus {
                verdict,
                reasons: reasons.iter().map(|s| s.to_string()).collect(),
                notes: vec![],
                directions: vec![],
                conflicts: None,
                drift: None,
                sequences: None,
                slots: None,
            },
        }
    }

    fn no_files() -> Part<FilesStatus> {
        Part::NotConfigured {
            reason: "none".into(),
        }
    }

    #[test]
    fn healthy_when_every_part_is() {
        let f = Part::Ok {
            value: floating(&["127.0.0.2"], &[&["127.0.0.2"], &["127.0.0.2"]]),
        };
        let (v, _) = verdict(&f, &repl(Verdict::Healthy, &[]), &no_files());
        assert_eq!(v, Verdict::Healthy);
    }

    #[test]
    fn lagging_server_degrades_and_absent_record_breaks() {
        let f = Part::Ok {
            value: floating(&["127.0.0.2"], &[&["127.0.0.2"], &["127.0.0.3"]]),
        };
        let (v, reasons) = verdict(&f, &repl(Verdict::Healthy, &[]), &no_files());
        assert_eq!(v, Verdict::Degraded);
        assert!(reasons[0].contains("do not all answer"), "{reasons:?}");

        let f = Part::Ok {
            value: floating(&[], &[]),
        };
        let (v, reasons) = verdict(&f, &repl(Verdict::Healthy, &[]), &no_files());
        assert_eq!(v, Verdict::Broken);
        assert!(reasons[0].contains("is absent"), "{reasons:?}");
    }

    #[test]
    fn replication_verdict_and_unreadable_parts_count() {
        let f = Part::Ok {
            value: floating(&["127.0.0.2"], &[&["127.0.0.2"]]),
        };
        let (v, reasons) = verdict(
            &f,
            &repl(Verdict::Broken, &["a -> b does not flow"]),
            &no_files(),
        );
        assert_eq!(v, Verdict::Broken);
        assert!(reasons.contains(&"replication: a -> b does not flow".to_string()));

        let files: Part<FilesStatus> = Part::Unavailable {
            error: "node b: cannot reach Syncthing".into(),
        };
        let (v, reasons) = verdict(&f, &repl(Verdict::Healthy, &[]), &files);
        assert_eq!(v, Verdict::Degraded);
        assert!(reasons.iter().any(|r| r.contains("cannot reach Syncthing")));

        let f: Part<FloatingReport> = Part::Unavailable {
            error: "server rejected the TSIG key".into(),
        };
        assert_eq!(
            verdict(&f, &repl(Verdict::Healthy, &[]), &no_files()).0,
            Verdict::Broken
        );
    }
}
