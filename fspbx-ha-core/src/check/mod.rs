//! Preflight checks (`fspbx-ha check`): can this pair be made highly available as configured?
//!
//! Per node: SSH from here; SSH from the node to its peer (FS PBX's "both directions"
//! prerequisite); PostgreSQL reachable; server version (16 or newer: `origin = none`); the
//! settings bi-directional logical replication needs; tables that cannot replicate UPDATE/DELETE.
//! Each result is pass / warn / fail with the observed value, what is expected and the fix.
//! Then the HA guide's three names at the zone's authoritative servers ([`dns`]): each node's
//! own record and the floating record.
//!
//! The evaluation of what was observed ([`rules`]) is pure and tested without servers; [`run`]
//! does the I/O, both nodes at once.

pub mod dns;
mod report;
pub mod rules;
mod run;

pub use report::{CheckItem, CheckReport, CheckStatus};
pub use run::{CheckOptions, run};
