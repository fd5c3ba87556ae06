//! `fspbx-ha upgrade`: FS PBX's multinode update procedure as a checked, resumable run.
//!
//! DDL is not replicated, so FS PBX updates a pair by hand: update the code on both nodes,
//! `php artisan migrate` on the first, `migrate:delete-last-batch` then `migrate` on the second
//! (the first node's batch record reached it by replication, its tables did not), then
//! `db:refresh-subscriptions` on both so new tables join the subscriptions. This module runs
//! that procedure over SSH with checks around it:
//!
//! - [`UpgradePlan`]: a pure function of the configuration (`[upgrade]` commands, working
//!   directory, timeouts) and the first node. Every step has an id, a node, the exact command
//!   sent (or the check run) and, where one can be checked, a postcondition.
//! - checks before (replication healthy both ways, no stuck or conflicting subscription, no
//!   schema drift), between (the second node caught up before it forgets the batch; schemas
//!   equal after its migration; each subscription covers its peer's publication after the
//!   refresh) and after (no drift, every table — the new ones named — in both subscriptions
//!   in state `r`, a heartbeat crossing both ways).
//! - [`UpgradeState`]: the state file records each step as it passes, with the plan's
//!   fingerprint (atomic writes). A re-run skips the steps recorded done and continues at the
//!   failed one; a state file of another plan is refused; `restart` starts over.
//! - [`upgrade`]: runs it (or, with `dry_run`, shows every command and node and runs nothing),
//!   reporting progress to an [`UpgradeObserver`].
//!
//! Each command runs as `cd WORKDIR && export FSPBX_HA_NODE=… FSPBX_HA_PEER=… FSPBX_HA_STEP=…
//! && { COMMAND }` under the node's `timeout`. No secret is involved: the commands are the
//! operator's own text.

mod checks;
mod plan;
mod run;
mod state;

pub use plan::{
    Check, CommandFailure, CommandKind, UpgradeAction, UpgradePlan, UpgradeStep, command_line,
};
pub use run::{
    NoUpgradeProgress, UpgradeObserver, UpgradeOptions, UpgradeReport, UpgradeStepOutcome,
    UpgradeStepResult, failure_details, upgrade,
};
pub use state::{DoneStep, FailedStep, STATE_VERSION, Start, UpgradeState, decide, state_file_for};
