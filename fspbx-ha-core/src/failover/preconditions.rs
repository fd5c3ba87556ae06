//! The failover preconditions the controller can measure: replication lag into each node (the
//! end-to-end heartbeat of `replication status`) and schema parity (the two inventories'
//! schema fingerprints). Syncthing completion is not measured here: it stays unknown, so
//! `failover.sync` should be `soft` or `off` unless the caller feeds
//! [`Input::SyncComplete`] itself.

use std::time::Duration;

use super::{Input, NodeId, Requirement};
use crate::Result;
use crate::config::ClusterConfig;
use crate::replication::{Pair, status};

/// Whether any gate is measured at all under `config`.
pub fn measured(config: &ClusterConfig) -> bool {
    config.failover.lag != Requirement::Off || config.failover.schema != Requirement::Off
}

/// Connects to both nodes' PostgreSQL and measures what the gates need: one
/// [`Input::ReplicationLag`] per direction (`None` when the heartbeat did not arrive) and one
/// [`Input::SchemaDrift`]. Needs both nodes up; the policy keeps the last values otherwise.
pub async fn measure(config: &ClusterConfig) -> Result<Vec<Input>> {
    let pair = Pair::connect(config).await?;
    let mut inputs = vec![];
    if config.failover.lag != Requirement::Off {
        let st = status(&pair).await?;
        for d in &st.directions {
            let node = if config.nodes.first().is_some_and(|n| n.name == d.to) {
                NodeId::A
            } else {
                NodeId::B
            };
            inputs.push(Input::ReplicationLag {
                node,
                lag: d
                    .heartbeat_lag_s
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64),
            });
        }
    }
    if config.failover.schema != Requirement::Off {
        let (a, b) = pair.inventories().await?;
        inputs.push(Input::SchemaDrift {
            drift: a.fingerprint != b.fingerprint,
        });
    }
    Ok(inputs)
}
