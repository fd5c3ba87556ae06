//! PostgreSQL logical replication both ways between the two nodes.
//!
//! - [`inventory`]: what a node has (version, settings, tables, sequences, publications,
//!   subscriptions, slots, schema fingerprint): pure, serializable data and the queries that
//!   read it.
//! - [`ReplicationPlan`]: a pure function of the two inventories, the configuration and the
//!   operator's [`Intent`], giving ordered [`Step`]s with their postconditions.
//! - [`apply`]: runs a plan; each step's postcondition is checked first, so a re-run resumes
//!   where a failed run stopped and a run on a healthy pair changes nothing.
//! - [`catchup`]: a planned switchover's replication steps (heartbeat catch-up, sequences
//!   moved with a margin).
//! - [`status`], [`verify`]: health of both directions, and a table-by-table comparison.
//! - [`sequences`]: serial/identity columns and the sequence strategy (interleave or sync).
//! - [`drift`]: schema drift between the nodes, tables a subscription lacks, and refresh.
//! - [`slots`]: slot safety (retained WAL, `max_slot_wal_keep_size`, `wal_status`).
//!
//! Object names default to FS PBX's (`fspbx_publication_a`, `fspbx_subscription_a_to_b`, …),
//! so a pair its script set up is adopted, not recreated. The replication password never
//! appears in plans, logs, errors or JSON: plans show `password=<redacted>`.

mod apply;
pub mod catchup;
pub mod conflicts;
pub mod drift;
pub mod hba;
pub mod inventory;
mod pair;
mod plan;
mod progress;
mod scram;
pub mod sequences;
pub mod slots;
pub mod sql;
mod status;
mod verify;

pub use apply::{ApplyReport, StepOutcome, StepResult, apply};
pub use catchup::{SequenceMove, move_sequences, sequence_moves, wait_caught_up};
pub use conflicts::{ConflictReport, ConflictSummary, conflict_summary, conflicts};
pub use drift::{
    DriftReport, RefreshReport, drift, refresh_subscriptions, refresh_subscriptions_with,
};
pub use inventory::Inventory;
pub use pair::Pair;
pub use plan::{
    Action, Intent, PlanKind, Postcondition, ReplicationPlan, SecretUse, Side, Step, Want,
    schema_diff, sequences_behind,
};
pub use progress::{ApplyObserver, CopyProgress, NoProgress};
pub use sequences::{
    InterleaveReport, OwnedSequence, SequenceCompliance, SequencesReport, check_sequences,
    interleave, sequences_report,
};
pub use slots::{SlotSafety, slot_safety};
pub use status::{
    DirectionStatus, ReplicationStatus, SlotStatus, TableState, Verdict, heartbeats, status,
};
pub use verify::{TableComparison, VerifyReport, verify};
