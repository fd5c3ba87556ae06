//! What the floating-record operations report, and the pure decisions behind them: which node
//! is active, what a flip must wait for, when clients holding the old answer will have moved.

use std::net::IpAddr;
use std::time::SystemTime;

use fspbx_ha_dns::plan::{Action, FlipStep, Step};
use fspbx_ha_dns::propagation::{PropagationReport, ServerAnswer};
use fspbx_ha_dns::{RecordKind, RecordSet};
use serde::Serialize;

use super::target::DnsNode;

/// `dns show`: what the provider holds and what every authoritative server answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FloatingReport {
    /// The zone.
    pub zone: String,
    /// The floating name.
    pub name: String,
    /// Provider name (`rfc2136`, `route53`, `cloudflare`).
    pub provider: &'static str,
    /// Whether the provider's compare-and-swap is atomic.
    pub atomic_cas: bool,
    /// The floating record's A and AAAA sets at the provider (empty: absent).
    pub floating: Vec<RecordSet>,
    /// The node the floating record points at (`None`: absent, or neither node's addresses).
    pub active_node: Option<String>,
    /// The node records at the provider (node A's first).
    pub nodes: Vec<RecordSet>,
    /// Every authoritative server's answer for the floating name (A, then AAAA when the
    /// provider holds one).
    pub servers: Vec<ServerAnswer>,
    /// Why the servers were not asked (they could not be found), if so.
    pub servers_error: Option<String>,
}

/// `dns set`: the compare-and-swap flip and, unless asked not to, its propagation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlipReport {
    /// The floating name.
    pub name: String,
    /// The node flipped to, when the target was (or matched) a node.
    pub target_node: Option<String>,
    /// The addresses flipped to.
    pub to: Vec<IpAddr>,
    /// One step per record kind (what it held, what it holds now, the receipt).
    pub steps: Vec<FlipStep>,
    /// What the authoritative servers answered while waiting (empty when not waiting).
    pub propagation: Vec<PropagationReport>,
    /// Whether every server answers the new value (`None` when not waiting).
    pub all_servers_answer: Option<bool>,
    /// When clients holding an old answer will all have moved (see [`clients_moved_by`]).
    pub clients_moved_by: Option<SystemTime>,
}

impl FlipReport {
    /// False when the servers were waited for and some still do not answer the new value.
    pub fn ok(&self) -> bool {
        self.all_servers_answer != Some(false)
    }
}

/// `dns verify`: whether every authoritative server answers the wanted value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// True when every server answers it for every kind.
    pub ok: bool,
    /// One report per record kind.
    pub reports: Vec<PropagationReport>,
    /// When clients holding an old answer will all have moved (see [`clients_moved_by`]).
    pub clients_moved_by: Option<SystemTime>,
}

/// `dns plan` / `dns apply`: the three names of the HA guide against the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordsReport {
    /// Whether the steps were carried out.
    pub applied: bool,
    /// One step per record set: unchanged, create or update.
    pub steps: Vec<Step>,
    /// Changes written (0 for a plan).
    pub changes: usize,
}

impl RecordsReport {
    /// Steps that would change something.
    pub fn pending(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.action != Action::Unchanged)
            .count()
    }
}

/// The index of the node `values` point at (all of them one node's addresses), if any.
pub fn active_index(nodes: &[DnsNode; 2], values: &[IpAddr]) -> Option<usize> {
    fspbx_ha_dns::plan::active_node(values, &nodes[0].addresses, &nodes[1].addresses)
}

/// The name of the node the floating record sets point at, if any.
pub fn active_node(nodes: &[DnsNode; 2], floating: &[RecordSet]) -> Option<String> {
    let values: Vec<IpAddr> = floating.iter().flat_map(|r| r.values.clone()).collect();
    active_index(nodes, &values).map(|i| nodes[i].name.clone())
}

/// The node `dns apply` points the floating record at: the one it points at now, else the
/// first node (absent, or pointing elsewhere).
pub fn apply_target(nodes: &[DnsNode; 2], floating_values: &[IpAddr]) -> usize {
    active_index(nodes, floating_values).unwrap_or(0)
}

/// One record kind a flip waits for at the authoritative servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// Kind.
    pub kind: RecordKind,
    /// The addresses the servers must answer (empty: the record must be gone).
    pub want: Vec<IpAddr>,
    /// The TTL of the record before the flip, when it existed.
    pub old_ttl: Option<u32>,
}

/// What a flip waits for: every kind that was written or that now holds addresses (a kind that
/// was absent and stays absent is not waited for).
pub fn waits_after_flip(steps: &[FlipStep]) -> Vec<Wait> {
    steps
        .iter()
        .filter(|s| s.changed() || !s.to.is_empty())
        .map(|s| Wait {
            kind: s.kind,
            want: s.to.clone(),
            old_ttl: s.from.as_ref().map(|r| r.ttl),
        })
        .collect()
}

/// What `dns verify` waits for: `addresses` split by family (kinds without any are left out).
pub fn waits_for_addresses(addresses: &[IpAddr]) -> Vec<Wait> {
    [RecordKind::A, RecordKind::Aaaa]
        .into_iter()
        .filter_map(|kind| {
            let want: Vec<IpAddr> = addresses.iter().copied().filter(|a| kind.fits(a)).collect();
            (!want.is_empty()).then_some(Wait {
                kind,
                want,
                old_ttl: None,
            })
        })
        .collect()
}

/// When clients holding an old answer will all have moved: the latest of the reports' times.
/// `None` when any kind has not moved at every server, no report was made, or no old TTL is
/// known for any of them (then nobody can have cached an old answer we know of).
pub fn clients_moved_by(reports: &[PropagationReport]) -> Option<SystemTime> {
    if reports.is_empty() || !reports.iter().all(|r| r.verdict.all_moved()) {
        return None;
    }
    reports.iter().filter_map(|r| r.clients_moved_by).max()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use fspbx_ha_dns::propagation::{Outcome, Verdict};

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nodes() -> [DnsNode; 2] {
        [
            DnsNode {
                name: "a".into(),
                hostname: "server1.example.test".into(),
                addresses: vec![ip("127.0.0.2")],
            },
            DnsNode {
                name: "b".into(),
                hostname: "server2.example.test".into(),
                addresses: vec![ip("127.0.0.3"), ip("::3")],
            },
        ]
    }

    #[test]
    fn active_node_and_apply_target() {
        let n = nodes();
        let rs = |v: &[&str], kind| {
            RecordSet::new(
                "pbx.example.test",
                kind,
                30,
                v.iter().map(|s| ip(s)).collect(),
            )
        };
        assert_eq!(
            active_node(&n, &[rs(&["127.0.0.2"], RecordKind::A)]),
            Some("a".into())
        );
        assert_eq!(
            active_node(
                &n,
                &[
                    rs(&["127.0.0.3"], RecordKind::A),
                    rs(&["::3"], RecordKind::Aaaa)
                ]
            ),
            Some("b".into())
        );
        assert_eq!(active_node(&n, &[]), None);
        assert_eq!(active_node(&n, &[rs(&["127.0.0.9"], RecordKind::A)]), None);
        // apply keeps the record on B, sends an absent or foreign one to A.
        assert_eq!(apply_target(&n, &[ip("127.0.0.3")]), 1);
        assert_eq!(apply_target(&n, &[]), 0);
        assert_eq!(apply_target(&n, &[ip("127.0.0.9")]), 0);
    }

    fn step(kind: RecordKind, from: Option<(u32, &str)>, to: &[&str], changed: bool) -> FlipStep {
        let to: Vec<IpAddr> = to.iter().map(|s| ip(s)).collect();
        FlipStep {
            kind,
            from: from.map(|(ttl, v)| RecordSet::new("pbx.example.test", kind, ttl, vec![ip(v)])),
            receipt: changed.then(|| fspbx_ha_dns::ChangeReceipt {
                provider: "rfc2136".into(),
                id: None,
                record: RecordSet::new("pbx.example.test", kind, 30, to.clone()),
                accepted_at: SystemTime::UNIX_EPOCH,
            }),
            to,
        }
    }

    #[test]
    fn a_flip_waits_for_written_or_populated_kinds_with_the_old_ttl() {
        let steps = [
            step(
                RecordKind::A,
                Some((300, "127.0.0.2")),
                &["127.0.0.3"],
                true,
            ),
            // AAAA absent before and after: nothing to wait for.
            step(RecordKind::Aaaa, None, &[], false),
        ];
        assert_eq!(
            waits_after_flip(&steps),
            [Wait {
                kind: RecordKind::A,
                want: vec![ip("127.0.0.3")],
                old_ttl: Some(300)
            }]
        );
        // A removed AAAA is waited for (servers must stop answering it).
        let steps = [step(RecordKind::Aaaa, Some((30, "::2")), &[], true)];
        assert!(waits_after_flip(&steps)[0].want.is_empty());
        // Already right: still confirmed at the servers.
        let steps = [step(
            RecordKind::A,
            Some((30, "127.0.0.3")),
            &["127.0.0.3"],
            false,
        )];
        assert_eq!(waits_after_flip(&steps).len(), 1);
    }

    #[test]
    fn verify_waits_per_family() {
        let w = waits_for_addresses(&[ip("::3"), ip("127.0.0.3")]);
        assert_eq!(
            w.iter()
                .map(|w| (w.kind, w.want.clone()))
                .collect::<Vec<_>>(),
            [
                (RecordKind::A, vec![ip("127.0.0.3")]),
                (RecordKind::Aaaa, vec![ip("::3")])
            ]
        );
        assert!(waits_for_addresses(&[]).is_empty());
    }

    fn report(moved: bool, clients: Option<u64>) -> PropagationReport {
        let server: SocketAddr = "127.0.0.53:53".parse().unwrap();
        let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        PropagationReport {
            name: "pbx.example.test.".into(),
            kind: RecordKind::A,
            want: vec![ip("127.0.0.3")],
            answers: vec![ServerAnswer {
                server,
                outcome: Outcome::NoData,
                soa_serial: None,
                rtt: Duration::ZERO,
            }],
            verdict: Verdict {
                moved: if moved { vec![server] } else { vec![] },
                lagging: if moved { vec![] } else { vec![server] },
                unreachable: vec![],
            },
            waited: Duration::from_secs(1),
            old_ttl: clients.map(|_| 30),
            servers_moved_at: moved.then(|| at(1000)),
            clients_moved_by: clients.map(at),
        }
    }

    #[test]
    fn clients_move_by_the_latest_kind_and_only_when_all_servers_moved() {
        let t = |s| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(
            clients_moved_by(&[report(true, Some(1030)), report(true, Some(1300))]),
            t(1300)
        );
        assert_eq!(
            clients_moved_by(&[report(true, None), report(true, Some(1030))]),
            t(1030)
        );
        assert_eq!(clients_moved_by(&[report(true, None)]), None);
        assert_eq!(
            clients_moved_by(&[report(true, Some(1030)), report(false, None)]),
            None
        );
        assert_eq!(clients_moved_by(&[]), None);
    }

    #[test]
    fn flip_report_ok_only_fails_when_servers_lag() {
        let mut r = FlipReport {
            name: "pbx.example.test.".into(),
            target_node: Some("b".into()),
            to: vec![ip("127.0.0.3")],
            steps: vec![],
            propagation: vec![],
            all_servers_answer: None,
            clients_moved_by: None,
        };
        assert!(r.ok());
        r.all_servers_answer = Some(true);
        assert!(r.ok());
        r.all_servers_answer = Some(false);
        assert!(!r.ok());
    }
}
