//! The failover preconditions the controller measures: replication lag into each node (the
//! end-to-end heartbeat, [`heartbeats`]), schema parity (the two inventories' schema
//! fingerprints) and Syncthing completion of each node (every shared folder complete in the
//! direction into that node, as `fspbx-ha-sync` computes it from both daemons).
//!
//! A measurement that cannot be taken (a node down, a daemon unreadable) feeds nothing: the
//! policy keeps the last values ("at the last check"), and the reason is reported as a
//! problem. [`sync_inputs`] is the pure rule from a [`SyncStatus`] to the policy's inputs.

use std::time::Duration;

use fspbx_ha_sync::SyncStatus;

use super::{Input, NodeId, Requirement};
use crate::config::ClusterConfig;
use crate::files::{Files, FilesOptions};
use crate::replication::{Pair, heartbeats};

/// Whether any gate is measured at all under `config`.
pub fn measured(config: &ClusterConfig) -> bool {
    config.failover.lag != Requirement::Off
        || config.failover.schema != Requirement::Off
        || config.failover.sync != Requirement::Off
}

/// What one measurement found.
#[derive(Debug, Default)]
pub struct Measurement {
    /// The inputs to feed the policy.
    pub inputs: Vec<Input>,
    /// Why a part could not be measured (its last values stay in force).
    pub problems: Vec<String>,
}

/// Measures the gates, keeping the Syncthing connection (and its SSH forwards) between
/// measurements.
#[derive(Debug, Default)]
pub struct Preconditions {
    files: Option<Files>,
}

impl Preconditions {
    /// No connection yet.
    pub fn new() -> Preconditions {
        Preconditions::default()
    }

    /// Measures every gate that is not `off`: PostgreSQL (lag, schema) and Syncthing
    /// concurrently.
    pub async fn measure(&mut self, config: &ClusterConfig) -> Measurement {
        let (pg, sync) = tokio::join!(measure_pg(config), self.measure_sync(config));
        let mut m = Measurement::default();
        for part in [pg, sync] {
            match part {
                Ok(inputs) => m.inputs.extend(inputs),
                Err(p) => m.problems.push(p),
            }
        }
        m
    }

    async fn measure_sync(&mut self, config: &ClusterConfig) -> Result<Vec<Input>, String> {
        if config.failover.sync == Requirement::Off {
            return Ok(vec![]);
        }
        if let Some((i, n)) = config
            .nodes
            .iter()
            .enumerate()
            .find(|(_, n)| n.syncthing.is_none())
        {
            let gate = format!("{:?}", config.failover.sync).to_lowercase();
            return Err(format!(
                "Syncthing completion: failover.sync is \"{gate}\" but node {} has no \
                 [nodes.syncthing] (nodes[{i}].syncthing); set it, or failover.sync = \"off\"",
                n.name
            ));
        }
        if self.files.is_none() {
            let options = FilesOptions {
                ssh: false,
                ..FilesOptions::default()
            };
            let files = Files::connect(config, options)
                .await
                .map_err(|e| format!("Syncthing completion: {e}"))?;
            self.files = Some(files);
        }
        let files = self.files.as_ref().expect("connected above");
        let st = match files.pair().status().await {
            Ok(st) => st,
            Err(e) => {
                self.files = None;
                return Err(format!("Syncthing completion: {e}"));
            }
        };
        if let Some(n) = st.nodes.iter().find(|n| n.error.is_some()) {
            // A daemon gone (its node down, a forward broken): reconnect next time.
            self.files = None;
            return Err(format!(
                "Syncthing completion: node {} cannot be read: {}",
                n.node,
                n.error.as_deref().unwrap_or_default()
            ));
        }
        Ok(sync_inputs(config, &st))
    }
}

/// One [`Input::SyncComplete`] per node of `config`: complete when every folder is complete
/// in the direction into that node. Only meaningful for a status in which both daemons
/// answered.
pub fn sync_inputs(config: &ClusterConfig, st: &SyncStatus) -> Vec<Input> {
    [NodeId::A, NodeId::B]
        .into_iter()
        .filter_map(|node| {
            let name = &config.nodes.get(node.index())?.name;
            let complete = st
                .folders
                .iter()
                .flat_map(|f| f.directions.iter())
                .filter(|d| &d.to == name)
                .all(|d| d.complete);
            Some(Input::SyncComplete { node, complete })
        })
        .collect()
}

/// Connects to both nodes' PostgreSQL and measures what the lag and schema gates need: one
/// [`Input::ReplicationLag`] per direction (`None` when the heartbeat did not arrive) and one
/// [`Input::SchemaDrift`]. Needs both nodes up.
async fn measure_pg(config: &ClusterConfig) -> Result<Vec<Input>, String> {
    if config.failover.lag == Requirement::Off && config.failover.schema == Requirement::Off {
        return Ok(vec![]);
    }
    let problem = |e: crate::Error| format!("replication lag / schema parity: {e}");
    let pair = Pair::connect(config).await.map_err(problem)?;
    let mut inputs = vec![];
    if config.failover.lag != Requirement::Off {
        for d in &heartbeats(&pair).await.map_err(problem)? {
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
        let (a, b) = pair.inventories().await.map_err(problem)?;
        inputs.push(Input::SchemaDrift {
            drift: a.fingerprint != b.fingerprint,
        });
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use fspbx_ha_sync::{DirectionStatus, FolderSyncStatus, NodeSyncStatus};

    use super::*;

    fn direction(from: &str, to: &str, complete: bool) -> DirectionStatus {
        DirectionStatus {
            from: from.into(),
            to: to.into(),
            shared: true,
            connected: true,
            completion: if complete { 100.0 } else { 40.0 },
            need_bytes: if complete { 0 } else { 1024 },
            need_items: u64::from(!complete),
            need_deletes: 0,
            sender_state: "idle".into(),
            receiver_state: if complete { "idle" } else { "syncing" }.into(),
            receiver_error: None,
            global_agrees: complete,
            failed_items: vec![],
            failed_count: 0,
            complete,
        }
    }

    fn status(folders: &[[bool; 2]]) -> SyncStatus {
        let node = |n: &str| NodeSyncStatus {
            node: n.into(),
            device_id: None,
            version: None,
            error: None,
            peer_connected: true,
            peer_address: None,
        };
        SyncStatus {
            nodes: [node("a"), node("b")],
            folders: folders
                .iter()
                .enumerate()
                .map(|(i, [ab, ba])| FolderSyncStatus {
                    id: format!("f{i}"),
                    path: format!("/f{i}"),
                    directions: [direction("a", "b", *ab), direction("b", "a", *ba)],
                })
                .collect(),
        }
    }

    fn config() -> ClusterConfig {
        let c = ClusterConfig::from_toml_str(&ClusterConfig::template()).unwrap();
        assert_eq!(c.nodes[0].name, "a", "the template's first node");
        c
    }

    #[test]
    fn a_node_is_complete_when_every_folder_into_it_is() {
        let c = config();
        // Folder 0 complete both ways; folder 1 still copying from A to B.
        let inputs = sync_inputs(&c, &status(&[[true, true], [false, true]]));
        assert_eq!(
            inputs,
            [
                Input::SyncComplete {
                    node: NodeId::A,
                    complete: true
                },
                Input::SyncComplete {
                    node: NodeId::B,
                    complete: false
                },
            ]
        );
        let inputs = sync_inputs(&c, &status(&[[true, true], [true, true]]));
        assert!(
            inputs
                .iter()
                .all(|i| matches!(i, Input::SyncComplete { complete: true, .. }))
        );
    }

    #[test]
    fn only_configured_gates_are_measured() {
        let mut c = config();
        c.failover.lag = Requirement::Off;
        c.failover.schema = Requirement::Off;
        c.failover.sync = Requirement::Off;
        assert!(!measured(&c));
        c.failover.sync = Requirement::Soft;
        assert!(measured(&c), "the Syncthing gate alone is measured");
    }

    #[tokio::test]
    async fn a_sync_gate_without_syncthing_says_which_node_and_key() {
        let mut c = config();
        c.failover.lag = Requirement::Off;
        c.failover.schema = Requirement::Off;
        c.failover.sync = Requirement::Hard;
        for n in &mut c.nodes {
            n.syncthing = None;
        }
        let m = Preconditions::new().measure(&c).await;
        assert!(m.inputs.is_empty());
        assert_eq!(m.problems.len(), 1, "{:?}", m.problems);
        assert!(
            m.problems[0].contains("nodes[0].syncthing")
                && m.problems[0].contains("failover.sync is \"hard\""),
            "{:?}",
            m.problems
        );
    }
}
