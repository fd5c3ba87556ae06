//! Deciding from two reads of a subscription whether its apply worker is failing (pure).

use std::collections::BTreeMap;

use serde::Serialize;

/// One read of a subscription's state on its subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionSample {
    /// `pg_subscription.oid` (its replication origin is `pg_<oid>`).
    pub oid: u32,
    /// `subenabled`.
    pub enabled: bool,
    /// The apply worker's pid (`pg_stat_subscription`), when one runs.
    pub worker_pid: Option<i32>,
    /// `pg_stat_subscription_stats.apply_error_count`.
    pub apply_error_count: i64,
    /// `pg_stat_subscription_stats.sync_error_count`.
    pub sync_error_count: i64,
    /// PostgreSQL 18 conflict counters (`confl_*`).
    pub conflicts: BTreeMap<String, i64>,
    /// The slot on the publisher (`subslotname`).
    pub slot_name: Option<String>,
    /// The subscription's origin progress: the last remote commit applied.
    pub origin_lsn: Option<String>,
}

/// Whether a direction's changes are being applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyState {
    /// The apply worker runs and its error count does not rise.
    Flowing,
    /// Enabled, but the worker keeps failing (error count rising, or no worker).
    Failing,
    /// Disabled (by an operator, or by `disable_on_error` after an error).
    Disabled,
    /// The subscription does not exist.
    Missing,
}

impl ApplyState {
    /// `flowing`, `failing`, `disabled` or `missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyState::Flowing => "flowing",
            ApplyState::Failing => "failing",
            ApplyState::Disabled => "disabled",
            ApplyState::Missing => "missing",
        }
    }

    /// Failing or disabled: changes from the publisher are not applied and its slot keeps WAL.
    pub fn stuck(self) -> bool {
        matches!(self, ApplyState::Failing | ApplyState::Disabled)
    }
}

/// The state from two reads `seconds` apart, with the reasons.
pub fn judge(
    first: &SubscriptionSample,
    second: &SubscriptionSample,
    seconds: f64,
) -> (ApplyState, Vec<String>) {
    judge_reads(&[first.clone(), second.clone()], seconds)
}

/// The state from several reads over `seconds` (oldest first), with the reasons. Failing: the
/// error count rose, no read saw an apply worker, or the worker was replaced between reads (a
/// healthy worker keeps its pid). One read without a worker next to reads with the same worker
/// is a restart, not a loop.
pub fn judge_reads(reads: &[SubscriptionSample], seconds: f64) -> (ApplyState, Vec<String>) {
    let (Some(first), Some(last)) = (reads.first(), reads.last()) else {
        return (ApplyState::Missing, Vec::new());
    };
    let mut why = Vec::new();
    if !last.enabled {
        why.push(if last.apply_error_count > 0 {
            format!(
                "disabled, with {} apply error(s) counted (disable_on_error stops a \
                 subscription at its first error)",
                last.apply_error_count
            )
        } else {
            "disabled".to_string()
        });
        return (ApplyState::Disabled, why);
    }
    if last.apply_error_count > first.apply_error_count {
        why.push(format!(
            "apply_error_count rose from {} to {} in {seconds:.1} s: the apply worker fails \
             and restarts",
            first.apply_error_count, last.apply_error_count
        ));
    }
    if reads.iter().all(|r| r.worker_pid.is_none()) {
        why.push(format!(
            "enabled but no apply worker in {} reads over {seconds:.1} s",
            reads.len()
        ));
    }
    let mut pids: Vec<i32> = reads.iter().filter_map(|r| r.worker_pid).collect();
    pids.dedup();
    if pids.len() > 1 {
        why.push(format!(
            "the apply worker was restarted between reads (pids {})",
            pids.iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if why.is_empty() {
        (ApplyState::Flowing, why)
    } else {
        (ApplyState::Failing, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(enabled: bool, pid: Option<i32>, errors: i64) -> SubscriptionSample {
        SubscriptionSample {
            oid: 1,
            enabled,
            worker_pid: pid,
            apply_error_count: errors,
            sync_error_count: 0,
            conflicts: BTreeMap::new(),
            slot_name: Some("s".into()),
            origin_lsn: None,
        }
    }

    #[test]
    fn states() {
        let ok = s(true, Some(10), 3);
        assert_eq!(judge(&ok, &ok, 1.0), (ApplyState::Flowing, vec![]));
        // Old errors alone (resolved earlier) do not make it failing.
        assert_eq!(
            judge(&ok, &s(true, Some(10), 3), 1.0).0,
            ApplyState::Flowing
        );
        // Worker restarted between the reads and failed again.
        let (st, why) = judge(&ok, &s(true, Some(12), 5), 1.0);
        assert_eq!(st, ApplyState::Failing);
        assert!(why[0].contains("rose from 3 to 5"), "{why:?}");
        // Between retries: no worker either time.
        let (st, why) = judge(&s(true, None, 3), &s(true, None, 3), 0.5);
        assert_eq!(st, ApplyState::Failing);
        assert!(why[0].contains("no apply worker"), "{why:?}");
        // One read without worker (a restart) is not enough.
        assert_eq!(judge(&s(true, None, 3), &ok, 1.0).0, ApplyState::Flowing);
        let (st, why) = judge(&ok, &s(false, None, 4), 1.0);
        assert_eq!(st, ApplyState::Disabled);
        assert!(why[0].contains("disable_on_error"), "{why:?}");
        assert!(st.stuck() && ApplyState::Failing.stuck());
        assert!(!ApplyState::Flowing.stuck() && !ApplyState::Missing.stuck());
        // Several reads: a replaced worker is a loop even when the count did not move yet.
        let reads = [s(true, Some(10), 3), s(true, None, 3), s(true, Some(14), 3)];
        let (st, why) = judge_reads(&reads, 0.4);
        assert_eq!(st, ApplyState::Failing);
        assert!(why[0].contains("pids 10, 14"), "{why:?}");
        let steady = [ok.clone(), ok.clone(), ok.clone()];
        assert_eq!(judge_reads(&steady, 0.4).0, ApplyState::Flowing);
        assert_eq!(judge_reads(&[], 0.0).0, ApplyState::Missing);
    }
}
