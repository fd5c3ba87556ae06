//! The compare-and-swap decision, without I/O.
//!
//! Providers whose server enforces the guard (RFC 2136 prerequisites, a Route53 batch) still use
//! this to explain a refusal; Cloudflare, which has no server-side guard, uses it to decide.

use crate::record::{Change, Expected, RecordSet};

/// What to do with a change given the record set that is there now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The guard holds (or there is none) and the record differs: write.
    Write,
    /// The guard holds and the record already is what the change asks for: nothing to write.
    AlreadyApplied,
    /// The guard fails: refuse, reporting what is there.
    Mismatch,
}

/// Whether `expected` describes `current`. TTLs and value order are ignored, as RFC 2136
/// prerequisites ignore them.
pub fn matches(expected: &Expected, current: Option<&RecordSet>) -> bool {
    match (expected, current) {
        (Expected::Absent, None) => true,
        (Expected::Absent, Some(rs)) => rs.values.is_empty(),
        (Expected::Values(v), None) => v.is_empty(),
        (Expected::Values(v), Some(rs)) => {
            let mut want = v.clone();
            want.sort();
            want.dedup();
            want == rs.values
        }
    }
}

/// Decides a (validated) change against the current record set.
pub fn decide(change: &Change, current: Option<&RecordSet>) -> Decision {
    if let Some(expected) = &change.expect
        && !matches(expected, current)
    {
        return Decision::Mismatch;
    }
    let same = match current {
        None => change.values.is_empty(),
        Some(rs) => rs.values == change.values && rs.ttl == change.ttl,
    };
    if same {
        Decision::AlreadyApplied
    } else {
        Decision::Write
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordKind;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rs(values: &[&str]) -> RecordSet {
        RecordSet::new(
            "pbx.example.test",
            RecordKind::A,
            60,
            values.iter().map(|v| ip(v)).collect(),
        )
    }

    fn change(to: &[&str], expect: Option<Expected>) -> Change {
        let mut c = Change::set(
            "pbx.example.test.",
            RecordKind::A,
            60,
            to.iter().map(|v| ip(v)).collect(),
        );
        c.expect = expect;
        c.validated("example.test").unwrap()
    }

    #[test]
    fn guard_ignores_order() {
        let cur = rs(&["10.0.0.2", "10.0.0.1"]);
        assert!(matches(
            &Expected::Values(vec![ip("10.0.0.1"), ip("10.0.0.2")]),
            Some(&cur)
        ));
        assert!(!matches(
            &Expected::Values(vec![ip("10.0.0.1")]),
            Some(&cur)
        ));
        assert!(!matches(&Expected::Absent, Some(&cur)));
        assert!(matches(&Expected::Absent, None));
        assert!(!matches(&Expected::Values(vec![ip("10.0.0.1")]), None));
    }

    #[test]
    fn decide_covers_all_outcomes() {
        let cur = rs(&["10.0.0.2"]);
        let old = Expected::Values(vec![ip("10.0.0.2")]);
        assert_eq!(
            decide(&change(&["10.0.0.3"], Some(old.clone())), Some(&cur)),
            Decision::Write
        );
        assert_eq!(
            decide(&change(&["10.0.0.3"], Some(Expected::Absent)), Some(&cur)),
            Decision::Mismatch
        );
        assert_eq!(
            decide(&change(&["10.0.0.2"], Some(old)), Some(&cur)),
            Decision::AlreadyApplied
        );
        assert_eq!(decide(&change(&["10.0.0.2"], None), None), Decision::Write);
        assert_eq!(decide(&change(&[], None), None), Decision::AlreadyApplied);
    }

    #[test]
    fn ttl_change_alone_is_a_write() {
        let mut cur = rs(&["10.0.0.2"]);
        cur.ttl = 300;
        assert_eq!(
            decide(&change(&["10.0.0.2"], None), Some(&cur)),
            Decision::Write
        );
    }
}
