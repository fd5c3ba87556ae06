//! Stuck and conflicting subscriptions: detection and remedies.
//!
//! A conflict (a remote INSERT whose key already exists on the subscriber, an UPDATE that would
//! duplicate a key, …) stops the subscription's apply worker; it restarts and fails again on
//! the same remote transaction forever while the publisher keeps WAL for its slot.
//!
//! - [`conflicts`] reads each subscription twice a short interval apart (apply error count
//!   rising, no worker while enabled, disabled by `disable_on_error`), then the subscriber's
//!   server log over SSH (`replication.log_command`) for the error, table, key, remote
//!   transaction and finish LSN, and reads both versions of the conflicting row so neither is
//!   ever lost silently. [`conflict_summary`] is the cheap one-read count for `status`.
//! - [`plan_resolution`] gives a [`RemedyPlan`] (exact SQL per node and its consequence) for a
//!   [`Remedy`]: skip the transaction, re-sync one table from the publisher, or replace the
//!   subscriber's conflicting row. [`resolve`] runs it and re-checks the direction.
//!
//! The remedies' own changes on the subscriber run in a session set up with the replication
//! origin [`REMEDY_ORIGIN`]: the peer subscribes with `origin = none`, so they are not
//! replicated back.
//!
//! Pure parts: [`log`] (the log parser), [`judge`] (the state from two reads) and the plan
//! builder [`plan_remedy`].

mod detect;
mod execute;
pub mod judge;
pub mod log;
mod plan;

pub use detect::{
    ConflictOptions, ConflictReport, ConflictSummary, DirectionConflicts, DirectionSummary,
    RowVersions, conflict_summary, conflicts,
};
pub use execute::{RemedyOutcome, ResolveOptions, plan_resolution, resolve, subscriber_of};
pub use judge::{ApplyState, SubscriptionSample};
pub use log::{ConflictKey, ConflictKind, LogConflict, parse_log};
pub use plan::{
    LOST_SHOWN, REMEDY_ORIGIN, Remedy, RemedyAction, RemedyPlan, RemedyStep, ResyncFacts,
    plan_remedy,
};
