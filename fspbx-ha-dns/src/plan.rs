//! The records of the HA guide's first step — one name per node and the floating name — and the
//! plan that creates or corrects them (`dns apply`): desired state, a pure diff against what
//! the provider holds, then guarded writes.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::propagation::{Checker, ServerAnswer, Verdict, verdict};
use crate::provider::DnsProvider;
use crate::record::{
    Change, ChangeReceipt, Expected, RecordKind, RecordSet, fqdn, normalize_values,
};

/// A record set as it should be, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredRecord {
    /// Name (FQDN).
    pub name: String,
    /// Kind.
    pub kind: RecordKind,
    /// TTL, seconds.
    pub ttl: u32,
    /// Addresses (sorted).
    pub values: Vec<IpAddr>,
    /// What the record is for (`node a`, `floating record`).
    pub why: String,
}

/// One node as the DNS sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord<'a> {
    /// Node name for messages (`a`).
    pub node: &'a str,
    /// Its own host name (`server1.example.com`).
    pub hostname: &'a str,
    /// Its public addresses.
    pub addresses: &'a [IpAddr],
}

/// Splits addresses into the A and AAAA record sets of `name`.
fn by_family(name: &str, ttl: u32, addrs: &[IpAddr], why: &str) -> Vec<DesiredRecord> {
    [RecordKind::A, RecordKind::Aaaa]
        .into_iter()
        .filter_map(|kind| {
            let values: Vec<IpAddr> = addrs.iter().copied().filter(|a| kind.fits(a)).collect();
            (!values.is_empty()).then(|| DesiredRecord {
                name: fqdn(name),
                kind,
                ttl,
                values: normalize_values(values),
                why: why.to_string(),
            })
        })
        .collect()
}

/// The desired records: each node's own name with its addresses (`node_ttl`), and the
/// floating name pointing at `active` with `floating_ttl`.
pub fn desired_records(
    a: &NodeRecord<'_>,
    b: &NodeRecord<'_>,
    floating: &str,
    floating_ttl: u32,
    active: &NodeRecord<'_>,
    node_ttl: u32,
) -> Vec<DesiredRecord> {
    let mut out = by_family(
        a.hostname,
        node_ttl,
        a.addresses,
        &format!("node {}", a.node),
    );
    out.extend(by_family(
        b.hostname,
        node_ttl,
        b.addresses,
        &format!("node {}", b.node),
    ));
    out.extend(by_family(
        floating,
        floating_ttl,
        active.addresses,
        &format!("floating record (active: node {})", active.node),
    ));
    out
}

/// Which node the floating record points at now, judging by `current` values: `Some(0)` for
/// `a`, `Some(1)` for `b`, `None` when it is absent or points elsewhere.
pub fn active_node(current: &[IpAddr], a: &[IpAddr], b: &[IpAddr]) -> Option<usize> {
    if current.is_empty() {
        return None;
    }
    if current.iter().all(|c| a.contains(c)) {
        Some(0)
    } else if current.iter().all(|c| b.contains(c)) {
        Some(1)
    } else {
        None
    }
}

/// What the plan does with one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// Already right.
    Unchanged,
    /// Missing: create it (guarded: must still be absent).
    Create,
    /// Wrong values or TTL: correct it (guarded: must still hold `from`).
    Update {
        /// What is there now.
        from: RecordSet,
    },
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The record as it should be.
    pub desired: DesiredRecord,
    /// What to do.
    pub action: Action,
}

impl Step {
    /// The guarded change that carries out this step (`None` when unchanged).
    pub fn change(&self) -> Option<Change> {
        let c = Change::set(
            &self.desired.name,
            self.desired.kind,
            self.desired.ttl,
            self.desired.values.clone(),
        );
        match &self.action {
            Action::Unchanged => None,
            Action::Create => Some(c.expecting(Expected::Absent)),
            Action::Update { from } => Some(c.expecting(Expected::Values(from.values.clone()))),
        }
    }
}

/// Diffs the desired records against what the provider holds (`current[i]` for `desired[i]`).
pub fn plan(desired: &[DesiredRecord], current: &[Option<RecordSet>]) -> Vec<Step> {
    desired
        .iter()
        .zip(current.iter().chain(std::iter::repeat(&None)))
        .map(|(d, cur)| {
            let action = match cur {
                None => Action::Create,
                Some(c) if c.values == d.values && c.ttl == d.ttl => Action::Unchanged,
                Some(c) => Action::Update { from: c.clone() },
            };
            Step {
                desired: d.clone(),
                action,
            }
        })
        .collect()
}

/// Reads what the provider holds for each desired record.
pub async fn read_current(
    provider: &dyn DnsProvider,
    desired: &[DesiredRecord],
) -> Result<Vec<Option<RecordSet>>> {
    let mut out = Vec::with_capacity(desired.len());
    for d in desired {
        out.push(provider.get(&d.name, d.kind).await?);
    }
    Ok(out)
}

/// Carries out the steps in order, each guarded by what the plan saw: a record changed by
/// someone else since the plan stops the run with [`crate::Error::CasMismatch`].
pub async fn apply(provider: &dyn DnsProvider, steps: &[Step]) -> Result<Vec<ChangeReceipt>> {
    let mut receipts = vec![];
    for s in steps {
        if let Some(c) = s.change() {
            receipts.push(provider.set(&c).await?);
        }
    }
    Ok(receipts)
}

/// One record kind of a flip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlipStep {
    /// Kind.
    pub kind: RecordKind,
    /// What the record held before (as read just before the write).
    pub from: Option<RecordSet>,
    /// The addresses it holds now.
    pub to: Vec<IpAddr>,
    /// The provider's receipt; `None` when the record already was right.
    pub receipt: Option<ChangeReceipt>,
}

impl FlipStep {
    /// Whether something was written.
    pub fn changed(&self) -> bool {
        self.receipt.is_some()
    }
}

/// Points `name` at `to` — A and AAAA by address family; a family `to` lacks is removed — each
/// kind guarded by compare-and-swap against what it holds now, or against `expected` when the
/// caller knows what it should be (`None` for a kind: must be absent).
pub async fn flip(
    provider: &dyn DnsProvider,
    name: &str,
    ttl: u32,
    to: &[IpAddr],
    expected: Option<&[IpAddr]>,
) -> Result<Vec<FlipStep>> {
    let mut steps = vec![];
    for kind in [RecordKind::A, RecordKind::Aaaa] {
        let want: Vec<IpAddr> =
            normalize_values(to.iter().copied().filter(|a| kind.fits(a)).collect());
        let current = provider.get(name, kind).await?;
        let guard = match expected {
            Some(e) => {
                let v: Vec<IpAddr> = e.iter().copied().filter(|a| kind.fits(a)).collect();
                if v.is_empty() {
                    Expected::Absent
                } else {
                    Expected::Values(v)
                }
            }
            None => Expected::from_current(current.as_ref()),
        };
        let same = match &current {
            None => want.is_empty(),
            Some(c) => c.values == want && c.ttl == ttl,
        };
        if same && expected.is_none() {
            steps.push(FlipStep {
                kind,
                from: current,
                to: want,
                receipt: None,
            });
            continue;
        }
        let change = Change::set(name, kind, ttl, want.clone()).expecting(guard);
        let receipt = provider.set(&change).await?;
        steps.push(FlipStep {
            kind,
            from: current,
            to: want,
            receipt: Some(receipt),
        });
    }
    Ok(steps)
}

/// What the authoritative servers say about one desired record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCheck {
    /// The record as it should be.
    pub desired: DesiredRecord,
    /// Every server's answer.
    pub answers: Vec<ServerAnswer>,
    /// Which servers answer the desired values.
    pub verdict: Verdict,
}

/// Asks every authoritative server about every desired record (`fspbx-ha check`).
pub async fn check_at_servers(
    checker: &Checker,
    desired: &[DesiredRecord],
) -> Result<Vec<RecordCheck>> {
    let mut out = vec![];
    for d in desired {
        let answers = checker.ask(&d.name, d.kind).await?;
        out.push(RecordCheck {
            verdict: verdict(&d.values, &answers),
            desired: d.clone(),
            answers,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn three_names_split_by_family() {
        let a_addrs = [ip("192.0.2.10"), ip("2001:db8::10")];
        let b_addrs = [ip("192.0.2.20")];
        let a = NodeRecord {
            node: "a",
            hostname: "server1.example.com",
            addresses: &a_addrs,
        };
        let b = NodeRecord {
            node: "b",
            hostname: "server2.example.com",
            addresses: &b_addrs,
        };
        let d = desired_records(&a, &b, "pbx.example.com", 60, &a, 300);
        let names: Vec<(String, RecordKind, u32)> =
            d.iter().map(|r| (r.name.clone(), r.kind, r.ttl)).collect();
        assert_eq!(
            names,
            vec![
                ("server1.example.com.".into(), RecordKind::A, 300),
                ("server1.example.com.".into(), RecordKind::Aaaa, 300),
                ("server2.example.com.".into(), RecordKind::A, 300),
                ("pbx.example.com.".into(), RecordKind::A, 60),
                ("pbx.example.com.".into(), RecordKind::Aaaa, 60),
            ]
        );
        assert_eq!(
            active_node(&[ip("192.0.2.20")], &a_addrs, &b_addrs),
            Some(1)
        );
        assert_eq!(active_node(&[ip("203.0.113.1")], &a_addrs, &b_addrs), None);
        assert_eq!(active_node(&[], &a_addrs, &b_addrs), None);
    }

    #[test]
    fn plan_creates_corrects_and_leaves_alone_with_guards() {
        let want = |name: &str, v: &str, ttl| DesiredRecord {
            name: fqdn(name),
            kind: RecordKind::A,
            ttl,
            values: vec![ip(v)],
            why: "t".into(),
        };
        let desired = vec![
            want("server1.example.com", "192.0.2.10", 300),
            want("server2.example.com", "192.0.2.20", 300),
            want("pbx.example.com", "192.0.2.10", 60),
        ];
        let wrong = RecordSet::new(
            "server2.example.com",
            RecordKind::A,
            300,
            vec![ip("192.0.2.99")],
        );
        let current = vec![
            Some(RecordSet::new(
                "server1.example.com",
                RecordKind::A,
                300,
                vec![ip("192.0.2.10")],
            )),
            Some(wrong.clone()),
            None,
        ];
        let steps = plan(&desired, &current);
        assert_eq!(steps[0].action, Action::Unchanged);
        assert_eq!(steps[0].change(), None);
        assert_eq!(steps[1].action, Action::Update { from: wrong });
        assert_eq!(
            steps[1].change().unwrap().expect,
            Some(Expected::Values(vec![ip("192.0.2.99")]))
        );
        assert_eq!(steps[2].action, Action::Create);
        assert_eq!(steps[2].change().unwrap().expect, Some(Expected::Absent));
        // A TTL difference alone is a correction.
        let current = vec![Some(RecordSet::new(
            "server1.example.com",
            RecordKind::A,
            30,
            vec![ip("192.0.2.10")],
        ))];
        assert!(matches!(
            plan(&desired[..1], &current)[0].action,
            Action::Update { .. }
        ));
    }
}
