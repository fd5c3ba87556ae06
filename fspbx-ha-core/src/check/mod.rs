//! Preflight checks (`fspbx-ha check`): can this pair be made highly available as configured?
//!
//! Per node: SSH from here; SSH from the node to its peer (FS PBX's "both directions"
//! prerequisite); PostgreSQL reachable; server version (16 or newer: `origin = none`); the
//! settings bi-directional logical replication needs; tables that cannot replicate UPDATE/DELETE.
//! Each result is pass / warn / fail with the observed value, what is expected and the fix.
//!
//! The evaluation of what was observed ([`rules`]) is pure and tested without servers; [`run`]
//! does the I/O, both nodes at once.

mod report;
pub mod rules;
mod run;

pub use report::{CheckItem, CheckReport, CheckStatus};
pub use run::{CheckOptions, run};
