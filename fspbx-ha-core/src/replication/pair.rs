//! The two nodes' PostgreSQL connections (and SSH sessions when needed), opened once and used by
//! plan, apply, status, verify and teardown.

use std::time::{Duration, Instant};

use fspbx_ha_secret::Secret;

use super::inventory::{self, Inventory, InventoryRequest};
use super::plan::{Intent, ReplicationPlan, Side};
use crate::config::{ClusterConfig, NodeSpec};
use crate::pg::{self, PgConn};
use crate::ssh::SshSession;
use crate::{Error, Result};

pub(super) struct NodeConn {
    key: String,
    pub(super) spec: NodeSpec,
    pub(super) pg: PgConn,
    ssh: Option<SshSession>,
}

/// Open connections to both nodes of a pair.
pub struct Pair {
    config: ClusterConfig,
    nodes: [NodeConn; 2],
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("a", &self.nodes[0].spec.name)
            .field("b", &self.nodes[1].spec.name)
            .finish_non_exhaustive()
    }
}

/// Opens one node's PostgreSQL connection (through its SSH session when configured so).
pub(super) async fn open(key: String, spec: &NodeSpec) -> Result<NodeConn> {
    let ssh = if spec.postgres.via_ssh {
        Some(SshSession::connect(&spec.ssh.target(&spec.name)).await?)
    } else {
        None
    };
    let pg = pg::connect(&key, spec, ssh.as_ref()).await?;
    Ok(NodeConn {
        key,
        spec: spec.clone(),
        pg,
        ssh,
    })
}

async fn open_ssh(n: &mut NodeConn, wanted: bool) {
    if wanted
        && n.ssh.as_ref().is_none_or(SshSession::is_closed)
        && let Ok(s) = SshSession::connect(&n.spec.ssh.target(&n.spec.name)).await
    {
        n.ssh = Some(s);
    }
}

impl Pair {
    /// Connects to both nodes' PostgreSQL (through SSH where `postgres.via_ssh` says so). SSH
    /// sessions for steps that need one (pg_hba, schema copy, restart) open on first use.
    pub async fn connect(config: &ClusterConfig) -> Result<Pair> {
        let (Some(a), Some(b)) = (config.nodes.first(), config.nodes.get(1)) else {
            return Err(Error::ConfigInvalid {
                origin: "<config>".into(),
                problems: vec![crate::config::ConfigProblem::new(
                    "nodes",
                    "exactly 2 [[nodes]] entries",
                    format!("{} entries", config.nodes.len()),
                )],
            });
        };
        let (a, b) =
            futures_util::future::join(open("nodes[0]".into(), a), open("nodes[1]".into(), b))
                .await;
        Ok(Pair {
            config: config.clone(),
            nodes: [a?, b?],
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Node `side`'s name.
    pub fn node_name(&self, side: Side) -> &str {
        &self.nodes[side.index()].spec.name
    }

    /// Node `side`'s PostgreSQL connection.
    pub fn pg(&self, side: Side) -> &PgConn {
        &self.nodes[side.index()].pg
    }

    /// Node `side`'s SSH session, opened on first use.
    pub(crate) async fn ssh(&mut self, side: Side) -> Result<&SshSession> {
        let n = &mut self.nodes[side.index()];
        if n.ssh.as_ref().is_none_or(SshSession::is_closed) {
            n.ssh = Some(SshSession::connect(&n.spec.ssh.target(&n.spec.name)).await?);
        }
        Ok(n.ssh.as_ref().expect("just opened"))
    }

    /// Opens the SSH sessions of the nodes flagged in `which` concurrently. Failures are left
    /// for the step that needs the session to report.
    pub(crate) async fn prepare_ssh(&mut self, which: [bool; 2]) {
        let [a, b] = &mut self.nodes;
        futures_util::future::join(open_ssh(a, which[0]), open_ssh(b, which[1])).await;
    }

    /// Reconnects node `side`'s PostgreSQL (after a restart), retrying until `within`.
    pub(crate) async fn reconnect(&mut self, side: Side, within: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let n = &self.nodes[side.index()];
            match pg::connect(&n.key, &n.spec, n.ssh.as_ref()).await {
                Ok(pg) => {
                    self.nodes[side.index()].pg = pg;
                    return Ok(());
                }
                Err(e) if started.elapsed() >= within => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// The password node `publisher`'s subscriber logs in with: `replication.password`, or the
    /// publisher's own `postgres.password` when the role is the nodes' database user.
    pub(crate) fn replication_password(&self, publisher: Side) -> Result<Secret> {
        let r = &self.config.replication;
        let n = &self.nodes[publisher.index()];
        if let Some(p) = &r.password {
            return p.resolve().map_err(|source| Error::Secret {
                key: "replication.password".into(),
                source,
            });
        }
        if n.spec.postgres.user == r.role {
            return n
                .spec
                .postgres
                .password
                .resolve()
                .map_err(|source| Error::Secret {
                    key: format!("{}.postgres.password", n.key),
                    source,
                });
        }
        Err(Error::ReplicationPasswordMissing {
            role: r.role.clone(),
        })
    }

    /// Reads node `side`'s inventory.
    pub async fn inventory(&self, side: Side) -> Result<Inventory> {
        let r = &self.config.replication;
        let password =
            if r.password.is_some() || self.nodes[side.index()].spec.postgres.user == r.role {
                Some(self.replication_password(side)?)
            } else {
                None
            };
        let peer = self.nodes[side.peer().index()].spec.peer_address();
        let n = &self.nodes[side.index()];
        inventory::collect(
            &n.pg,
            &InventoryRequest {
                node: &n.spec.name,
                role: &r.role,
                role_password: password.as_ref().map(Secret::expose),
                heartbeat_schema: &r.heartbeat_schema,
                peer,
                hba_method: &r.hba_method,
            },
        )
        .await
    }

    /// Both inventories, read concurrently.
    pub async fn inventories(&self) -> Result<(Inventory, Inventory)> {
        let (a, b) =
            futures_util::future::join(self.inventory(Side::A), self.inventory(Side::B)).await;
        Ok((a?, b?))
    }

    /// Reads both inventories and makes the setup plan.
    pub async fn plan(&self, intent: &Intent) -> Result<ReplicationPlan> {
        let (a, b) = self.inventories().await?;
        ReplicationPlan::new(&a, &b, &self.config, intent)
    }

    /// Reads both inventories and makes the teardown plan.
    pub async fn teardown_plan(&self) -> Result<ReplicationPlan> {
        let (a, b) = self.inventories().await?;
        Ok(ReplicationPlan::teardown(&a, &b, &self.config))
    }
}
