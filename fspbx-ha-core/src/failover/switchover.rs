//! The replication half of a planned switchover, around the flip the controller does:
//!
//! 1. **replication healthy both ways** (`replication status`: both subscriptions flowing, a
//!    fresh heartbeat arriving each way);
//! 2. **caught up**: a heartbeat written on the active node after the switchover began is
//!    visible on the target, so the target holds every transaction committed before it;
//! 3. **sequences moved** on the target to at least the active node's last values plus
//!    [`SEQUENCE_MARGIN`], so inserts on the target right after the flip do not collide;
//!
//! then (the controller) the flip with its propagation check, and after it a **drain**: a
//! second heartbeat from the old node (writes that reached it before clients followed the
//! record) and a second sequence move. A dry run measures 1, says what 2 and 3 would do
//! (the moves it would make, read from both nodes) and changes nothing.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::ClusterConfig;
use crate::replication::{self, Pair, SequenceMove, Side, Verdict};

/// How far past the active node's last value the target's sequences are set by default
/// (`replication.sequences.margin`): room for rows the old node still accepts between the
/// sequence move and clients following the record. With `strategy = "interleave"` only
/// sequences not interleaved yet are moved.
pub const SEQUENCE_MARGIN: i64 = 1000;

/// How a switchover step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Carried out (or measured) and it held.
    Done,
    /// Dry run: what would be done.
    WouldDo,
    /// Not done, and why is in the detail (a gate is `off`, or `soft` and it failed).
    Skipped,
    /// Failed: the switchover stopped here (or, after the flip, says so loudly).
    Failed,
}

impl StepStatus {
    /// `done`, `would_do`, `skipped` or `failed` (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Done => "done",
            StepStatus::WouldDo => "would_do",
            StepStatus::Skipped => "skipped",
            StepStatus::Failed => "failed",
        }
    }
}

/// One step of a switchover, in the order run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwitchoverStep {
    /// `health`, `replication`, `catch_up`, `sequences`, `flip`, `drain`, `fence`.
    pub step: &'static str,
    /// How it ended.
    pub status: StepStatus,
    /// What was seen or done, for an operator.
    pub detail: String,
    /// Time it took.
    #[serde(with = "humantime_serde")]
    pub elapsed: Duration,
    /// Sequences moved (or to move), for `sequences` and `drain`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sequences: Vec<SequenceMove>,
}

impl SwitchoverStep {
    pub(crate) fn new(
        step: &'static str,
        status: StepStatus,
        detail: impl Into<String>,
        started: Instant,
    ) -> SwitchoverStep {
        SwitchoverStep {
            step,
            status,
            detail: detail.into(),
            elapsed: started.elapsed(),
            sequences: vec![],
        }
    }
}

fn side(i: usize) -> Side {
    if i == 0 { Side::A } else { Side::B }
}

fn describe(moves: &[SequenceMove]) -> String {
    let first: Vec<String> = moves
        .iter()
        .take(5)
        .map(|m| format!("{} {} -> {}", m.sequence, m.before.unwrap_or(0), m.after))
        .collect();
    let more = moves.len().saturating_sub(first.len());
    format!(
        "{} sequence(s){}{}",
        moves.len(),
        if first.is_empty() {
            String::new()
        } else {
            format!(": {}", first.join(", "))
        },
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

/// Steps 1–3 for a switchover from node index `from` to `to`. On success returns the open
/// pair (for the drain after the flip); on a failed step returns why (the step is recorded
/// as failed in `steps`), and nothing was flipped.
pub(crate) async fn before_flip(
    config: &ClusterConfig,
    from: usize,
    to: usize,
    dry_run: bool,
    steps: &mut Vec<SwitchoverStep>,
) -> std::result::Result<Pair, String> {
    let (from_side, to_side) = (side(from), side(to));
    let (from_name, to_name) = (&config.nodes[from].name, &config.nodes[to].name);
    let timeout = config.replication.heartbeat_timeout;

    let started = Instant::now();
    let fail = |steps: &mut Vec<SwitchoverStep>, step, detail: String| {
        steps.push(SwitchoverStep::new(
            step,
            StepStatus::Failed,
            detail.clone(),
            started,
        ));
        detail
    };
    let pair = match Pair::connect(config).await {
        Ok(p) => p,
        Err(e) => {
            return Err(fail(
                steps,
                "replication",
                format!("cannot connect to both databases: {e}"),
            ));
        }
    };
    match replication::status(&pair).await {
        Err(e) => {
            return Err(fail(
                steps,
                "replication",
                format!("cannot read replication status: {e}"),
            ));
        }
        Ok(st) if st.verdict == Verdict::Broken => {
            return Err(fail(
                steps,
                "replication",
                format!("replication is broken: {}", st.reasons.join("; ")),
            ));
        }
        Ok(st) => {
            let beats: Vec<String> = st
                .directions
                .iter()
                .map(|d| {
                    format!(
                        "{} -> {} heartbeat {}",
                        d.from,
                        d.to,
                        d.heartbeat_lag_s
                            .map_or("not seen".into(), |s| format!("{:.0} ms", s * 1000.0))
                    )
                })
                .collect();
            steps.push(SwitchoverStep::new(
                "replication",
                StepStatus::Done,
                format!("{}: {}", st.verdict.as_str(), beats.join(", ")),
                started,
            ));
        }
    }

    let started = Instant::now();
    if dry_run {
        steps.push(SwitchoverStep::new(
            "catch_up",
            StepStatus::WouldDo,
            format!(
                "would write a heartbeat on node {from_name} and wait up to {timeout:?} for \
                 node {to_name} to hold it"
            ),
            started,
        ));
    } else {
        match replication::wait_caught_up(&pair, from_side, timeout).await {
            Ok(Some(took)) => steps.push(SwitchoverStep::new(
                "catch_up",
                StepStatus::Done,
                format!(
                    "a heartbeat written on node {from_name} reached node {to_name} in {:.0} ms",
                    took.as_secs_f64() * 1000.0
                ),
                started,
            )),
            Ok(None) => {
                return Err(fail(
                    steps,
                    "catch_up",
                    format!(
                        "a heartbeat written on node {from_name} did not reach node {to_name} \
                         within replication.heartbeat_timeout ({timeout:?}): node {to_name} is \
                         behind; nothing was flipped"
                    ),
                ));
            }
            Err(e) => return Err(fail(steps, "catch_up", format!("heartbeat: {e}"))),
        }
    }

    let started = Instant::now();
    let margin = config.replication.sequences.margin;
    let interleave =
        config.replication.sequences.strategy == crate::config::SequenceStrategy::Interleave;
    match replication::move_sequences(&pair, to_side, from_side, margin, dry_run).await {
        Ok(moves) => {
            let mut s = SwitchoverStep::new(
                "sequences",
                if dry_run {
                    StepStatus::WouldDo
                } else {
                    StepStatus::Done
                },
                format!(
                    "{}{} on node {to_name} to node {from_name}'s last values + {margin}: {}",
                    if interleave {
                        "interleave: sequences already interleaved stay; others "
                    } else {
                        ""
                    },
                    if dry_run { "would move" } else { "moved" },
                    describe(&moves)
                ),
                started,
            );
            s.sequences = moves;
            steps.push(s);
        }
        Err(e) => {
            return Err(fail(
                steps,
                "sequences",
                format!("moving the sequences on node {to_name}: {e}"),
            ));
        }
    }
    Ok(pair)
}

/// The drain after the flip: a heartbeat from the old node `from` reaching `to` (writes the
/// old node accepted until clients followed the record) and the sequences moved again.
/// Failures are reported in the step, never undone: the record already moved.
pub(crate) async fn after_flip(
    pair: &Pair,
    from: usize,
    to: usize,
    steps: &mut Vec<SwitchoverStep>,
) {
    let (from_side, to_side) = (side(from), side(to));
    let config = pair.config();
    let (from_name, to_name) = (&config.nodes[from].name, &config.nodes[to].name);
    let timeout = config.replication.heartbeat_timeout;
    let started = Instant::now();
    let caught = replication::wait_caught_up(pair, from_side, timeout).await;
    let margin = config.replication.sequences.margin;
    let moves = replication::move_sequences(pair, to_side, from_side, margin, false).await;
    let (status, detail, moved) = match (caught, moves) {
        (Ok(Some(took)), Ok(m)) => (
            StepStatus::Done,
            format!(
                "node {to_name} holds what node {from_name} committed until after the flip \
                 (heartbeat in {:.0} ms); sequences: {}",
                took.as_secs_f64() * 1000.0,
                describe(&m)
            ),
            m,
        ),
        (Ok(None), m) => (
            StepStatus::Failed,
            format!(
                "a heartbeat from node {from_name} did not reach node {to_name} within \
                 {timeout:?} after the flip: writes made on {from_name} late may be missing"
            ),
            m.unwrap_or_default(),
        ),
        (Err(e), m) => (
            StepStatus::Failed,
            format!("drain heartbeat: {e}"),
            m.unwrap_or_default(),
        ),
        (Ok(Some(_)), Err(e)) => (
            StepStatus::Failed,
            format!("moving the sequences on node {to_name} after the flip: {e}"),
            vec![],
        ),
    };
    let mut s = SwitchoverStep::new("drain", status, detail, started);
    s.sequences = moved;
    steps.push(s);
}
