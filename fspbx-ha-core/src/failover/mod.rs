//! Failover: the sans-I/O [`policy`] that decides, fed observations and the time, and the
//! [`Controller`] that runs probes, feeds the policy and carries out its actions.
//!
//! The policy owns no socket and no clock: the caller (the controller, a test, a Python script)
//! feeds it probe rounds, what the floating record says, replication lag, schema drift and sync
//! completion, together with the current instant, and executes the [`Action`]s it returns. The
//! same inputs always give the same actions, so it is tested exhaustively with a virtual clock.
//!
//! - [`controller`]: the I/O loop (probes, DNS flip with compare-and-swap, fencing,
//!   notifications), [`audit`] its JSON-lines log, [`metrics`] its `/metrics` and `/health`.
//! - [`fence`], [`notify`], [`preconditions`]: the actions and measurements it uses.
//! - [`switchover`]: a planned move's replication steps (catch-up, sequences, drain).
//! - [`counts`]: after a flip, phone registrations and calls sampled on the new active node.
//! - [`report`]: `failover status` (audit tail, active node, controller health).
//!
//! ```no_run
//! # async fn demo() -> fspbx_ha_core::Result<()> {
//! use fspbx_ha_core::config::ClusterConfig;
//! use fspbx_ha_core::failover::Controller;
//! let config = ClusterConfig::load("cluster.toml")?;
//! let controller = Controller::new(config).await?;
//! let status = controller
//!     .run(async { tokio::signal::ctrl_c().await.ok(); })
//!     .await?;
//! println!("{} rounds, {} flips", status.rounds, status.flips_ok);
//! # Ok(()) }
//! ```

pub mod audit;
pub mod controller;
pub mod counts;
pub mod fence;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod preconditions;
pub mod report;
pub mod switchover;

pub use audit::{AuditLog, AuditRecord, read_tail};
pub use controller::{Controller, FlipOutcome, SwitchoverReport};
pub use counts::{CountKind, CountSample, RegistrationSample, count_total};
pub use metrics::{ControllerStatus, MetricsServer, NodeStatus, render_prometheus};
pub use policy::{
    Action, FailoverPolicy, Health, Input, NodeId, PolicySettings, Precondition, Requirement,
};
pub use report::{ControllerHealth, FailoverStatusReport, ask_health, status_report};
pub use switchover::{SEQUENCE_MARGIN, StepStatus, SwitchoverStep};

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
