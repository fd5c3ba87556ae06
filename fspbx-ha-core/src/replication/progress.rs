//! Progress of a long apply, reported to whoever renders it (CLI bars, Python callbacks).

use serde::Serialize;

use super::apply::StepOutcome;
use super::plan::Step;

/// Where the initial copy stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyProgress {
    /// The node receiving the copy.
    pub node: String,
    /// The subscription.
    pub subscription: String,
    /// Tables in state `r` (ready).
    pub tables_done: u64,
    /// Tables of the subscription.
    pub tables_total: u64,
    /// Rows copied so far (tables done by the publisher's estimate, plus rows of the copies
    /// running now).
    pub rows_copied: u64,
    /// Rows to copy, by the publisher's estimate.
    pub rows_total: u64,
    /// Bytes of the tables done plus bytes of running copies.
    pub bytes_copied: u64,
    /// Size of the published tables on the publisher.
    pub bytes_total: u64,
    /// Seconds since the wait started.
    pub elapsed_s: f64,
    /// Rows per second so far.
    pub rows_per_s: f64,
    /// Seconds left at that rate, when it can be told.
    pub eta_s: Option<f64>,
}

/// Receives events while a plan runs. Every method has an empty default.
pub trait ApplyObserver: Send + Sync {
    /// Step `index` (0-based) of `total` begins: its postcondition is checked first.
    fn step_started(&self, step: &Step, index: usize, total: usize) {
        let _ = (step, index, total);
    }
    /// A step ended (skipped because already true, or executed).
    fn step_finished(&self, step: &Step, outcome: &StepOutcome) {
        let _ = (step, outcome);
    }
    /// The initial copy moved on (about four times a second).
    fn copy_progress(&self, progress: &CopyProgress) {
        let _ = progress;
    }
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ApplyObserver for NoProgress {}
