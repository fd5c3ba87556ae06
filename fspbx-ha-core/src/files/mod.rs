//! Files: the cluster's Syncthing pair, from the configuration to `fspbx-ha-sync`.
//!
//! [`Files::connect`] builds one [`SyncthingClient`] per node from `nodes[i].syncthing`,
//! through an SSH local forward when `via_ssh` is set (the API then stays on the node's
//! loopback, as FS PBX's documentation asks), resolves the API keys late (`env:`/`file:`) and
//! keeps the SSH sessions for the checks only SSH can do: that each folder path is a writable
//! directory before apply, and the count of `*.sync-conflict-*` files in [`Files::status`].
//!
//! ```no_run
//! # async fn demo() -> fspbx_ha_core::Result<()> {
//! use std::time::Duration;
//! use fspbx_ha_core::config::ClusterConfig;
//! use fspbx_ha_core::files::{Files, FilesOptions};
//! let config = ClusterConfig::load("cluster.toml")?;
//! let files = Files::connect(&config, FilesOptions::default()).await?;
//! files.apply().await?;
//! let status = files.wait(&fspbx_ha_sync::WaitOptions::new(Duration::from_secs(600)), |s| {
//!     println!("{}", s.summary())
//! }).await?;
//! assert!(status.is_complete());
//! # Ok(()) }
//! ```

mod conflicts;
mod url;

use serde::Serialize;

use fspbx_ha_sync::{
    ApplyEvent, ApplyReport, FolderIntent, NodeIntent, PairIntent, SyncPair, SyncPlan, SyncStatus,
    SyncthingClient, WaitOptions,
};

use crate::config::ClusterConfig;
use crate::ssh::{LocalForward, SshSession};
use crate::{Error, Result};

pub use fspbx_ha_sync as sync;

/// How [`Files::connect`] connects.
#[derive(Debug, Clone)]
pub struct FilesOptions {
    /// Open SSH to every node even when its API is reached directly (needed for the path check
    /// before apply and the conflict count). On by default.
    pub ssh: bool,
    /// Turn off discovery, relays and NAT on both daemons (a private link). On by default.
    pub hardening: bool,
    /// Per node, a directory prepended to every folder path on that node (a tree mounted
    /// elsewhere; the lab's two nodes on one machine). Normally `[None, None]`; when `None`,
    /// the node's `syncthing.folder_root` from the configuration applies.
    pub path_prefix: [Option<String>; 2],
}

impl Default for FilesOptions {
    fn default() -> Self {
        FilesOptions {
            ssh: true,
            hardening: true,
            path_prefix: [None, None],
        }
    }
}

/// The cluster's Syncthing pair and the SSH sessions behind it.
#[derive(Debug)]
pub struct Files {
    pair: SyncPair,
    ssh: [Option<SshSession>; 2],
    /// Kept alive as long as the clients use them.
    _forwards: Vec<LocalForward>,
}

/// Conflict copies found on one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeConflicts {
    /// Node name.
    pub node: String,
    /// How many `*.sync-conflict-*` files its folders hold (None when it could not be counted).
    pub count: Option<u64>,
    /// Why it could not be counted.
    pub error: Option<String>,
}

/// [`SyncStatus`] plus the conflict counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilesStatus {
    /// Per folder and direction.
    pub sync: SyncStatus,
    /// Per node.
    pub conflicts: Vec<NodeConflicts>,
}

impl Files {
    /// Connects to both nodes as the configuration says (SSH sessions opened here).
    pub async fn connect(config: &ClusterConfig, options: FilesOptions) -> Result<Files> {
        Self::connect_with(config, options, [None, None]).await
    }

    /// Like [`Files::connect`], reusing already open SSH sessions where given.
    pub async fn connect_with(
        config: &ClusterConfig,
        options: FilesOptions,
        sessions: [Option<SshSession>; 2],
    ) -> Result<Files> {
        if config.nodes.len() != 2 {
            return Err(Error::SyncNotConfigured {
                node: "?".into(),
                key: "nodes (exactly two)".into(),
            });
        }
        let mut forwards = Vec::new();
        let mut ssh: [Option<SshSession>; 2] = sessions;
        let mut clients = Vec::new();
        let mut intents = Vec::new();
        for (i, node) in config.nodes.iter().enumerate() {
            let key = format!("nodes[{i}].syncthing");
            let spec = node
                .syncthing
                .as_ref()
                .ok_or_else(|| Error::SyncNotConfigured {
                    node: node.name.clone(),
                    key: key.clone(),
                })?;
            let api_key = spec.api_key.resolve().map_err(|source| Error::Secret {
                key: format!("{key}.api_key"),
                source,
            })?;
            if (spec.via_ssh || options.ssh) && ssh[i].is_none() {
                ssh[i] = Some(SshSession::connect(&node.ssh.target(&node.name)).await?);
            }
            let url = if spec.via_ssh {
                let api = url::ApiUrl::parse(&spec.url).map_err(|reason| Error::SyncUrl {
                    node: node.name.clone(),
                    key: format!("{key}.url"),
                    url: spec.url.clone(),
                    reason,
                })?;
                let session = ssh[i].as_ref().expect("connected above");
                let fwd = session.forward_local(&api.host, api.port).await?;
                let local = api.at_local(fwd.local_addr());
                forwards.push(fwd);
                local
            } else {
                spec.url.clone()
            };
            clients.push(SyncthingClient::new(node.name.clone(), &url, api_key)?);
            intents.push(NodeIntent {
                path_prefix: options.path_prefix[i]
                    .clone()
                    .or_else(|| spec.folder_root.as_ref().map(|r| r.display().to_string())),
                ..NodeIntent::new(
                    node.name.clone(),
                    node.hostname.clone(),
                    node.peer_address(),
                )
            });
        }
        let folders = config
            .folders
            .iter()
            .map(|f| FolderIntent {
                path: f.path.display().to_string(),
                id: f.id.clone(),
                rescan_interval_s: f.rescan_interval_s,
            })
            .collect();
        let [ia, ib]: [NodeIntent; 2] = intents.try_into().expect("two nodes");
        let [ca, cb]: [SyncthingClient; 2] = clients.try_into().expect("two nodes");
        let pair = SyncPair::new(
            [ca, cb],
            PairIntent {
                nodes: [ia, ib],
                folders,
                hardening: options.hardening,
            },
        );
        Ok(Files {
            pair,
            ssh,
            _forwards: forwards,
        })
    }

    /// The underlying pair (clients and intent).
    pub fn pair(&self) -> &SyncPair {
        &self.pair
    }

    /// The pairing plan as the daemons are now.
    pub async fn plan(&self) -> Result<SyncPlan> {
        Ok(self.pair.plan().await?)
    }

    /// Checks every folder path over SSH (`test -d` and `-w`), then applies the plan.
    pub async fn apply(&self) -> Result<ApplyReport> {
        self.apply_with(|_| {}).await
    }

    /// [`Files::apply`] with progress events.
    pub async fn apply_with(&self, progress: impl FnMut(ApplyEvent<'_>)) -> Result<ApplyReport> {
        self.check_paths().await?;
        Ok(self.pair.apply_with(progress).await?)
    }

    /// Fails with a [`fspbx_ha_sync::Error::FolderUnusable`] naming node and folder when a
    /// folder path is not a writable directory on a node with an SSH session.
    pub async fn check_paths(&self) -> Result<()> {
        let plan_folders = self.pair.plan().await?.folders;
        for (i, session) in self.ssh.iter().enumerate() {
            let Some(session) = session else { continue };
            let intent = &self.pair.intent().nodes[i];
            for f in &plan_folders {
                let path = intent.local_path(&f.path);
                let q = crate::shell::quote(&path);
                let cmd = format!(
                    "if [ ! -d {q} ]; then echo missing; elif [ ! -w {q} ]; then echo readonly; else echo ok; fi"
                );
                let out = session.exec_checked(&cmd).await?;
                let message = match out.stdout_str().trim() {
                    "ok" => continue,
                    "missing" => {
                        "the directory does not exist on the node (checked over SSH)".to_owned()
                    }
                    "readonly" => format!(
                        "the directory is not writable by {} (checked over SSH)",
                        session.target().user
                    ),
                    other => format!("unexpected answer of the path check: {other:?}"),
                };
                return Err(fspbx_ha_sync::Error::FolderUnusable {
                    node: intent.node.clone(),
                    folder: f.id.clone(),
                    path,
                    message,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Sync status of every folder both ways, and the conflict copies on each node.
    pub async fn status(&self) -> Result<FilesStatus> {
        let sync = self.pair.status().await?;
        let conflicts = self.conflicts().await;
        Ok(FilesStatus { sync, conflicts })
    }

    /// Counts `*.sync-conflict-*` files in the folders of each node (over SSH).
    pub async fn conflicts(&self) -> Vec<NodeConflicts> {
        let mut out = Vec::new();
        for (i, session) in self.ssh.iter().enumerate() {
            let intent = &self.pair.intent().nodes[i];
            let paths: Vec<String> = self
                .pair
                .intent()
                .folders
                .iter()
                .map(|f| intent.local_path(&f.path))
                .collect();
            let (count, error) = match session {
                None => (None, Some("no SSH session to the node".to_owned())),
                Some(s) => match s.exec_checked(&conflicts::count_command(&paths)).await {
                    Ok(o) => match conflicts::parse_count(&o.stdout_str()) {
                        Some(n) => (Some(n), None),
                        None => (
                            None,
                            Some(format!("unexpected output {:?}", o.stdout_str().trim())),
                        ),
                    },
                    Err(e) => (None, Some(e.to_string())),
                },
            };
            out.push(NodeConflicts {
                node: intent.node.clone(),
                count,
                error,
            });
        }
        out
    }

    /// Waits until every folder is complete both ways (see [`SyncPair::wait`]); the failover
    /// controller's sync precondition is this call.
    pub async fn wait(
        &self,
        options: &WaitOptions,
        progress: impl FnMut(&SyncStatus),
    ) -> Result<SyncStatus> {
        Ok(self.pair.wait(options, progress).await?)
    }
}
