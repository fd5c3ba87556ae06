//! Failover: the sans-I/O [`policy`] that decides, fed observations and the time.
//!
//! The policy owns no socket and no clock: the caller (the controller, a test, a Python script)
//! feeds it probe rounds, what the floating record says, replication lag, schema drift and sync
//! completion, together with the current instant, and executes the [`Action`]s it returns. The
//! same inputs always give the same actions, so it is tested exhaustively with a virtual clock.

pub mod policy;

pub use policy::{
    Action, FailoverPolicy, Health, Input, NodeId, PolicySettings, Precondition, Requirement,
};

impl PolicySettings {
    /// The policy settings of a configuration's `[policy]` section (node A preferred; lag gate
    /// hard, schema gate hard, Syncthing gate soft).
    pub fn from_spec(spec: &crate::config::PolicySpec) -> PolicySettings {
        PolicySettings {
            rise: spec.rise,
            fall: spec.fall,
            hold_down: spec.hold_down,
            auto_failback: spec.auto_failback,
            max_replication_lag: spec.max_replication_lag,
            ..PolicySettings::default()
        }
    }
}
