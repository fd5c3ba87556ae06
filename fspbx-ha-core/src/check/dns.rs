//! The HA guide's three names at the authoritative servers: each node's own record
//! (`dns.node_record`, one item per node) and the floating record (`dns.floating`, node `dns`).
//!
//! The evaluation ([`evaluate_node_record`], [`evaluate_floating`]) is pure; [`check_dns`] asks
//! the servers. Unreachable servers are results, not errors.

use std::net::IpAddr;

use fspbx_ha_dns::plan::{self, DesiredRecord, RecordCheck};
use fspbx_ha_dns::propagation::{Outcome, ServerAnswer, verdict};
use fspbx_ha_dns::record::{fqdn, normalize_values};
use fspbx_ha_dns::{RecordKind, Result as DnsResult};

use super::{CheckItem, CheckStatus};
use crate::config::ClusterConfig;
use crate::floating::{self, DnsNode};

/// The node of the floating record's item.
pub(super) const DNS_NODE: &str = "dns";
const NODE_RECORD: &str = "dns.node_record";
const FLOATING: &str = "dns.floating";
const FIX_APPLY: &str = "run `fspbx-ha dns plan` to see the change, then `fspbx-ha dns apply`";

/// Checks the three names at the zone's authoritative servers.
pub(super) async fn check_dns(config: &ClusterConfig) -> Vec<CheckItem> {
    let Ok(nodes) = floating::dns_nodes(config) else {
        // Config validation already names the node count; nothing to check against.
        return vec![];
    };
    let checker = match floating::authoritative_servers(config).await {
        Ok(c) => c,
        Err(e) => return not_found(config, &nodes, &e.to_string()),
    };
    let mut items = vec![];
    for n in &nodes {
        let desired = node_desired(n);
        items.push(match plan::check_at_servers(&checker, &desired).await {
            Ok(checks) => evaluate_node_record(n, &checks),
            Err(e) => asked_badly(&n.name, NODE_RECORD, &e),
        });
    }
    let f = &config.floating;
    let floating = ask_floating(&checker, &f.name, &nodes).await;
    items.push(match floating {
        Ok(answers) => evaluate_floating(&f.name, f.ttl, &nodes, &answers),
        Err(e) => asked_badly(DNS_NODE, FLOATING, &e),
    });
    items
}

/// A node's record sets as they should be (the TTL is not judged: `dns apply` sets it).
fn node_desired(n: &DnsNode) -> Vec<DesiredRecord> {
    [RecordKind::A, RecordKind::Aaaa]
        .into_iter()
        .filter_map(|kind| {
            let values: Vec<IpAddr> = n
                .addresses
                .iter()
                .copied()
                .filter(|a| kind.fits(a))
                .collect();
            (!values.is_empty()).then(|| DesiredRecord {
                name: fqdn(&n.hostname),
                kind,
                ttl: 0,
                values: normalize_values(values),
                why: format!("node {}", n.name),
            })
        })
        .collect()
}

async fn ask_floating(
    checker: &fspbx_ha_dns::propagation::Checker,
    name: &str,
    nodes: &[DnsNode; 2],
) -> DnsResult<Vec<(RecordKind, Vec<ServerAnswer>)>> {
    let mut out = vec![(RecordKind::A, checker.ask(name, RecordKind::A).await?)];
    if nodes.iter().flat_map(|n| &n.addresses).any(IpAddr::is_ipv6) {
        out.push((RecordKind::Aaaa, checker.ask(name, RecordKind::Aaaa).await?));
    }
    Ok(out)
}

fn not_found(config: &ClusterConfig, nodes: &[DnsNode; 2], why: &str) -> Vec<CheckItem> {
    let observed = format!("not run: the zone's authoritative servers are unknown: {why}");
    let fix = Some(
        "list the zone's authoritative servers in floating.nameservers (host:port), or make \
         floating.provider.server (RFC 2136) answer the zone's NS query"
            .to_string(),
    );
    let mut items: Vec<CheckItem> = nodes
        .iter()
        .map(|n| {
            CheckItem::new(
                &n.name,
                NODE_RECORD,
                CheckStatus::Skip,
                observed.clone(),
                node_expected(n),
                fix.clone(),
            )
        })
        .collect();
    items.push(CheckItem::new(
        DNS_NODE,
        FLOATING,
        CheckStatus::Skip,
        observed,
        floating_expected(&config.floating.name, config.floating.ttl, nodes),
        fix,
    ));
    items
}

fn asked_badly(node: &str, check: &str, e: &fspbx_ha_dns::Error) -> CheckItem {
    CheckItem::new(
        node,
        check,
        CheckStatus::Fail,
        e.to_string(),
        "a name the servers can be asked about",
        Some("check the host names in the configuration".into()),
    )
}

fn node_expected(n: &DnsNode) -> String {
    format!(
        "{} → {} at every authoritative server",
        fqdn(&n.hostname),
        list(&n.addresses)
    )
}

fn floating_expected(name: &str, ttl: u32, nodes: &[DnsNode; 2]) -> String {
    format!(
        "{} → node {} ({}) or node {} ({}), TTL {ttl}, at every authoritative server",
        fqdn(name),
        nodes[0].name,
        list(&nodes[0].addresses),
        nodes[1].name,
        list(&nodes[1].addresses)
    )
}

fn list(v: &[IpAddr]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the servers said, one clause per server and kind: `127.0.0.53:53 A [127.0.0.2] TTL 60`.
pub(super) fn describe(kind: RecordKind, answers: &[ServerAnswer]) -> String {
    answers
        .iter()
        .map(|a| {
            let what = match &a.outcome {
                Outcome::Records { ttl, values } => format!("[{}] TTL {ttl}", list(values)),
                Outcome::NoData => "no record".into(),
                Outcome::NxDomain => "NXDOMAIN".into(),
                Outcome::NotAuthoritative => "not authoritative for the zone".into(),
                Outcome::Failed { detail } => format!("no answer ({detail})"),
            };
            format!("{} {kind} {what}", a.server)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn all_unreachable(answers: &[ServerAnswer]) -> bool {
    !answers.is_empty()
        && answers
            .iter()
            .all(|a| matches!(a.outcome, Outcome::Failed { .. }))
}

const FIX_UNREACHABLE: &str = "check that the authoritative servers run and answer on UDP and TCP \
     (floating.nameservers lists which are asked)";

/// Judges a node's record sets (A and/or AAAA) as the servers answer them. The TTL is not
/// judged (`dns apply` chooses it).
pub fn evaluate_node_record(node: &DnsNode, checks: &[RecordCheck]) -> CheckItem {
    let expected = node_expected(node);
    let observed = checks
        .iter()
        .map(|c| describe(c.desired.kind, &c.answers))
        .collect::<Vec<_>>()
        .join("; ");
    let (status, fix) = if checks.is_empty() {
        (
            CheckStatus::Fail,
            Some(format!(
                "give node {} its public addresses in the configuration",
                node.name
            )),
        )
    } else if checks.iter().all(|c| c.verdict.all_moved()) {
        (CheckStatus::Pass, None)
    } else if checks.iter().all(|c| all_unreachable(&c.answers)) {
        (CheckStatus::Fail, Some(FIX_UNREACHABLE.into()))
    } else {
        (CheckStatus::Fail, Some(FIX_APPLY.into()))
    };
    let observed = if status == CheckStatus::Pass {
        format!(
            "{} → {} at {} server(s)",
            fqdn(&node.hostname),
            list(&node.addresses),
            checks[0].answers.len()
        )
    } else {
        format!("{}: {observed}", fqdn(&node.hostname))
    };
    CheckItem::new(&node.name, NODE_RECORD, status, observed, expected, fix)
}

/// Judges the floating record as the servers answer it (per kind asked): every server must
/// answer one node's addresses — the same node everywhere — with the configured TTL.
pub fn evaluate_floating(
    name: &str,
    ttl: u32,
    nodes: &[DnsNode; 2],
    answers: &[(RecordKind, Vec<ServerAnswer>)],
) -> CheckItem {
    let expected = floating_expected(name, ttl, nodes);
    let described = answers
        .iter()
        .map(|(k, a)| describe(*k, a))
        .collect::<Vec<_>>()
        .join("; ");
    let on = |n: &DnsNode| {
        !n.addresses.is_empty()
            && answers.iter().all(|(kind, a)| {
                let want: Vec<IpAddr> = n
                    .addresses
                    .iter()
                    .copied()
                    .filter(|ip| kind.fits(ip))
                    .collect();
                verdict(&want, a).all_moved()
            })
    };
    let item = |status, observed: String, fix: Option<&str>| {
        CheckItem::new(
            DNS_NODE,
            FLOATING,
            status,
            observed,
            expected.clone(),
            fix.map(str::to_string),
        )
    };
    if let Some(n) = nodes.iter().find(|n| on(n)) {
        let wrong_ttl: Vec<u32> = answers
            .iter()
            .flat_map(|(_, a)| a)
            .filter_map(|a| match &a.outcome {
                Outcome::Records { ttl: t, .. } if *t != ttl => Some(*t),
                _ => None,
            })
            .collect();
        let servers = answers.first().map_or(0, |(_, a)| a.len());
        return match wrong_ttl.first() {
            None => item(
                CheckStatus::Pass,
                format!(
                    "{} → node {} ({}), TTL {ttl}, at {servers} server(s)",
                    fqdn(name),
                    n.name,
                    list(&n.addresses)
                ),
                None,
            ),
            Some(t) => item(
                CheckStatus::Fail,
                format!(
                    "{} → node {}, but with TTL {t} instead of floating.ttl = {ttl}: {described}",
                    fqdn(name),
                    n.name
                ),
                Some(FIX_APPLY),
            ),
        };
    }
    if answers.iter().all(|(_, a)| all_unreachable(a)) {
        return item(
            CheckStatus::Fail,
            format!("{}: no server answered: {described}", fqdn(name)),
            Some(FIX_UNREACHABLE),
        );
    }
    let absent = answers.iter().flat_map(|(_, a)| a).all(|a| {
        matches!(
            a.outcome,
            Outcome::NxDomain | Outcome::NoData | Outcome::Failed { .. }
        )
    });
    if absent {
        return item(
            CheckStatus::Fail,
            format!("{}: absent: {described}", fqdn(name)),
            Some(FIX_APPLY),
        );
    }
    // Some server already answers a node's addresses: the others lag behind (zone transfer).
    let some_on_a_node = answers
        .iter()
        .flat_map(|(_, a)| a)
        .any(|a| match &a.outcome {
            Outcome::Records { values, .. } => nodes
                .iter()
                .any(|n| values.iter().all(|v| n.addresses.contains(v))),
            _ => false,
        });
    let fix = if some_on_a_node {
        "the servers disagree: wait for the zone transfer (`fspbx-ha dns verify`), or check that \
         the secondaries receive NOTIFY and transfer the zone; if a node's address is wrong, \
         `fspbx-ha dns apply`"
    } else {
        FIX_APPLY
    };
    item(
        CheckStatus::Fail,
        format!(
            "{}: not one node's addresses at every server: {described}",
            fqdn(name)
        ),
        Some(fix),
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

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
                addresses: vec![ip("127.0.0.3")],
            },
        ]
    }

    const S1: &str = "127.0.0.53:53";
    const S2: &str = "127.0.0.54:53";

    fn ans(server: &str, outcome: Outcome) -> ServerAnswer {
        ServerAnswer {
            server: server.parse::<SocketAddr>().unwrap(),
            outcome,
            soa_serial: Some(3),
            rtt: Duration::from_millis(1),
        }
    }

    fn rec(ttl: u32, v: &str) -> Outcome {
        Outcome::Records {
            ttl,
            values: vec![ip(v)],
        }
    }

    fn failed() -> Outcome {
        Outcome::Failed {
            detail: "timed out".into(),
        }
    }

    fn node_check(n: &DnsNode, answers: Vec<ServerAnswer>) -> RecordCheck {
        let desired = DesiredRecord {
            name: fqdn(&n.hostname),
            kind: RecordKind::A,
            ttl: 300,
            values: n.addresses.clone(),
            why: format!("node {}", n.name),
        };
        RecordCheck {
            verdict: verdict(&desired.values, &answers),
            desired,
            answers,
        }
    }

    #[test]
    fn node_record_pass_wrong_missing_unreachable() {
        let n = &nodes()[1];
        let ok = evaluate_node_record(
            n,
            &[node_check(
                n,
                vec![ans(S1, rec(60, "127.0.0.3")), ans(S2, rec(60, "127.0.0.3"))],
            )],
        );
        assert_eq!(
            (ok.status, ok.node.as_str(), ok.check.as_str()),
            (CheckStatus::Pass, "b", "dns.node_record")
        );
        assert_eq!(
            ok.observed,
            "server2.example.test. → 127.0.0.3 at 2 server(s)"
        );
        assert_eq!(ok.fix, None);

        let wrong = evaluate_node_record(
            n,
            &[node_check(
                n,
                vec![ans(S1, rec(60, "127.0.0.9")), ans(S2, Outcome::NxDomain)],
            )],
        );
        assert_eq!(wrong.status, CheckStatus::Fail);
        assert!(
            wrong
                .observed
                .contains("127.0.0.53:53 A [127.0.0.9] TTL 60"),
            "{}",
            wrong.observed
        );
        assert!(
            wrong.observed.contains("127.0.0.54:53 A NXDOMAIN"),
            "{}",
            wrong.observed
        );
        assert!(wrong.fix.as_deref().unwrap().contains("fspbx-ha dns apply"));

        let down = evaluate_node_record(n, &[node_check(n, vec![ans(S1, failed())])]);
        assert_eq!(down.status, CheckStatus::Fail);
        assert!(
            down.observed.contains("no answer (timed out)"),
            "{}",
            down.observed
        );
        assert!(
            down.fix
                .as_deref()
                .unwrap()
                .contains("floating.nameservers")
        );
    }

    #[test]
    fn floating_on_either_node_with_the_ttl_passes() {
        let n = nodes();
        for (v, node) in [("127.0.0.2", "a"), ("127.0.0.3", "b")] {
            let i = evaluate_floating(
                "pbx.example.test",
                30,
                &n,
                &[(
                    RecordKind::A,
                    vec![ans(S1, rec(30, v)), ans(S2, rec(30, v))],
                )],
            );
            assert_eq!((i.status, i.node.as_str()), (CheckStatus::Pass, "dns"));
            assert!(
                i.observed
                    .contains(&format!("node {node} ({v}), TTL 30, at 2 server(s)")),
                "{}",
                i.observed
            );
        }
    }

    #[test]
    fn floating_missing_foreign_split_wrong_ttl_or_unreachable_fails() {
        let n = nodes();
        let eval = |a: Vec<ServerAnswer>| {
            evaluate_floating("pbx.example.test", 30, &n, &[(RecordKind::A, a)])
        };

        let missing = eval(vec![ans(S1, Outcome::NxDomain), ans(S2, Outcome::NxDomain)]);
        assert_eq!(missing.status, CheckStatus::Fail);
        assert!(
            missing
                .fix
                .as_deref()
                .unwrap()
                .contains("fspbx-ha dns apply")
        );
        assert!(
            missing.observed.starts_with("pbx.example.test.: absent: "),
            "{}",
            missing.observed
        );
        assert!(missing.observed.contains("NXDOMAIN"));

        let foreign = eval(vec![
            ans(S1, rec(30, "127.0.0.9")),
            ans(S2, rec(30, "127.0.0.9")),
        ]);
        assert_eq!(foreign.status, CheckStatus::Fail);
        assert!(
            foreign
                .fix
                .as_deref()
                .unwrap()
                .contains("fspbx-ha dns apply")
        );

        // Primary on B, secondary still on A: they disagree.
        let split = eval(vec![
            ans(S1, rec(30, "127.0.0.3")),
            ans(S2, rec(30, "127.0.0.2")),
        ]);
        assert_eq!(split.status, CheckStatus::Fail);
        assert!(
            split.fix.as_deref().unwrap().contains("zone transfer"),
            "{:?}",
            split.fix
        );

        let ttl = eval(vec![
            ans(S1, rec(300, "127.0.0.2")),
            ans(S2, rec(300, "127.0.0.2")),
        ]);
        assert_eq!(ttl.status, CheckStatus::Fail);
        assert!(
            ttl.observed
                .contains("TTL 300 instead of floating.ttl = 30"),
            "{}",
            ttl.observed
        );
        assert!(ttl.fix.as_deref().unwrap().contains("fspbx-ha dns apply"));

        let down = eval(vec![ans(S1, failed()), ans(S2, failed())]);
        assert_eq!(down.status, CheckStatus::Fail);
        assert!(
            down.observed.contains("no server answered"),
            "{}",
            down.observed
        );
        assert!(
            down.fix
                .as_deref()
                .unwrap()
                .contains("answer on UDP and TCP")
        );

        // One server on A, the other unreachable: not a pass.
        let half = eval(vec![ans(S1, rec(30, "127.0.0.2")), ans(S2, failed())]);
        assert_eq!(half.status, CheckStatus::Fail);
    }

    #[test]
    fn dual_stack_floating_needs_both_kinds_of_one_node() {
        let mut n = nodes();
        n[1].addresses.push(ip("::3"));
        let a = vec![ans(S1, rec(30, "127.0.0.3"))];
        let ok = evaluate_floating(
            "pbx.example.test",
            30,
            &n,
            &[
                (RecordKind::A, a.clone()),
                (RecordKind::Aaaa, vec![ans(S1, rec(30, "::3"))]),
            ],
        );
        assert_eq!(ok.status, CheckStatus::Pass, "{}", ok.observed);
        let no_aaaa = evaluate_floating(
            "pbx.example.test",
            30,
            &n,
            &[
                (RecordKind::A, a),
                (RecordKind::Aaaa, vec![ans(S1, Outcome::NoData)]),
            ],
        );
        assert_eq!(no_aaaa.status, CheckStatus::Fail);
        // Node A has no IPv6 address: its floating AAAA must be absent.
        let on_a = evaluate_floating(
            "pbx.example.test",
            30,
            &n,
            &[
                (RecordKind::A, vec![ans(S1, rec(30, "127.0.0.2"))]),
                (RecordKind::Aaaa, vec![ans(S1, Outcome::NoData)]),
            ],
        );
        assert_eq!(on_a.status, CheckStatus::Pass, "{}", on_a.observed);
    }
}
