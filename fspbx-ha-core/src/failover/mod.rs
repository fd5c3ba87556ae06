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

    /// The policy settings of a whole configuration: `[policy]`, plus the gates and the flip
    /// timeout of `[failover]`.
    pub fn from_config(config: &crate::config::ClusterConfig) -> PolicySettings {
        let f = &config.failover;
        PolicySettings {
            lag_requirement: f.lag,
            schema_requirement: f.schema,
            sync_requirement: f.sync,
            flip_timeout: f.flip_timeout,
            ..PolicySettings::from_spec(&config.policy)
        }
    }
}
