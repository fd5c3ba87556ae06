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
//!
//! Object names default to FS PBX's (`fspbx_publication_a`, `fspbx_subscription_a_to_b`, …),
//! so a pair its script set up is adopted, not recreated. The replication password never
//! appears in plans, logs, errors or JSON: plans show `password=<redacted>`.

mod apply;
pub mod catchup;
pub mod hba;
pub mod inventory;
mod pair;
mod plan;
mod progress;
mod scram;
pub mod sql;
mod status;
mod verify;

pub use apply::{ApplyReport, StepOutcome, StepResult, apply};
pub use catchup::{SequenceMove, move_sequences, sequence_moves, wait_caught_up};
pub use inventory::Inventory;
pub use pair::Pair;
pub use plan::{
    Action, Intent, PlanKind, Postcondition, ReplicationPlan, SecretUse, Side, Step, Want,
    schema_diff, sequences_behind,
};
pub use progress::{ApplyObserver, CopyProgress, NoProgress};
pub use status::{DirectionStatus, ReplicationStatus, SlotStatus, TableState, Verdict, status};
pub use verify::{TableComparison, VerifyReport, verify};
