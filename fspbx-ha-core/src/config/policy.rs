//! Failover policy settings (`[policy]`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the failover controller decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Probe interval.
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Consecutive good rounds before a node counts as healthy.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive bad rounds before a node counts as down.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Minimum time between two flips.
    #[serde(default = "default_hold_down", with = "humantime_serde")]
    pub hold_down: Duration,
    /// Flip back to the preferred node automatically when it recovers.
    #[serde(default)]
    pub auto_failback: bool,
    /// Largest replication lag (seconds of heartbeat age) that still allows a failover.
    #[serde(default = "default_max_lag", with = "humantime_serde")]
    pub max_replication_lag: Duration,
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec {
            interval: default_interval(),
            rise: default_rise(),
            fall: default_fall(),
            hold_down: default_hold_down(),
            auto_failback: false,
            max_replication_lag: default_max_lag(),
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}
fn default_hold_down() -> Duration {
    Duration::from_secs(300)
}
fn default_max_lag() -> Duration {
    Duration::from_secs(10)
}
