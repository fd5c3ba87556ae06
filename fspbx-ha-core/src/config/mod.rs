//! The cluster configuration: one TOML file describing the pair.
//!
//! ```toml
//! [[nodes]]          # node A (primary), then node B (standby)
//! name = "a"
//! hostname = "server1.example.com"
//! addresses = ["192.0.2.10"]
//! ssh = { host = "192.0.2.10", identity = "/root/.ssh/id_ed25519" }
//! postgres = { password = "env:FSPBX_DB_PASSWORD" }
//! ...
//! [floating]
//! zone = "example.com"
//! name = "pbx.example.com"
//! provider = { kind = "rfc2136", ... }
//! ```
//!
//! Secrets are references (`env:NAME`, `file:PATH`) resolved when used. Parsing errors and
//! validation problems name the key path (`nodes[1].ssh.port: expected 1..65535, got 0`).
//! [`ClusterConfig::template`] gives the commented template `fspbx-ha init` writes.

mod failover;
mod floating;
mod folders;
mod node;
mod policy;
mod problem;
mod replication;
mod sequences;
mod upgrade;
mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use failover::FailoverSpec;
pub use floating::FloatingSpec;
pub use folders::{FolderSpec, fspbx_default_folders};
pub use node::{
    HttpProbeSpec, NodeSpec, PgProbeMode, PostgresSpec, ProbesSpec, SipProbeSpec, SipTransport,
    SshSpec, SyncthingSpec,
};
pub use policy::PolicySpec;
pub use problem::ConfigProblem;
pub use replication::{HBA_METHODS, ReplicationSpec};
pub use sequences::{ByteSize, SequenceStrategy, SequencesSpec, human_bytes};
pub use upgrade::{DEFAULT_STATE_FILE, FIRST_ACTIVE, UpgradeCommand, UpgradeSpec};

use crate::{Error, Result};

/// The whole configuration of a pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The two nodes: the preferred primary first, the standby second.
    pub nodes: Vec<NodeSpec>,
    /// The floating record and its DNS provider.
    pub floating: FloatingSpec,
    /// Folders mirrored by Syncthing; FS PBX's set when absent.
    #[serde(default = "fspbx_default_folders")]
    pub folders: Vec<FolderSpec>,
    /// Failover policy.
    #[serde(default)]
    pub policy: PolicySpec,
    /// PostgreSQL logical replication between the nodes; FS PBX's names by default.
    #[serde(default)]
    pub replication: ReplicationSpec,
    /// What the failover controller does: fencing, notifications, audit log, metrics, gates.
    #[serde(default)]
    pub failover: FailoverSpec,
    /// The multinode update procedure (`fspbx-ha upgrade`); FS PBX's commands by default.
    #[serde(default)]
    pub upgrade: UpgradeSpec,
}

const TEMPLATE: &str = include_str!("template.toml");

impl ClusterConfig {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<ClusterConfig> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_and_validate(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str) -> Result<ClusterConfig> {
        Self::parse_and_validate(text, "<string>")
    }

    fn parse_and_validate(text: &str, origin: &str) -> Result<ClusterConfig> {
        let config = parse(text, origin)?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(Error::ConfigInvalid {
                origin: origin.to_string(),
                problems,
            })
        }
    }

    /// Every validation problem of this configuration (empty when it is valid).
    pub fn problems(&self) -> Vec<ConfigProblem> {
        validate::validate(self)
    }

    /// The commented template `fspbx-ha init` writes. It parses and validates as it is.
    pub fn template() -> String {
        TEMPLATE.to_string()
    }

    /// Writes the template to `path`; refuses to overwrite an existing file unless `force`.
    pub fn write_template(path: impl AsRef<Path>, force: bool) -> Result<PathBuf> {
        let path = path.as_ref();
        if path.exists() && !force {
            return Err(Error::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
        std::fs::write(path, TEMPLATE).map_err(|source| Error::WriteFile {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(path.to_path_buf())
    }

    /// The node called `name` (case-insensitive), or by position: `A`/`B`, `1`/`2`.
    pub fn node(&self, name: &str) -> Option<&NodeSpec> {
        let pos = match name.to_ascii_lowercase().as_str() {
            "a" | "1" | "primary" => Some(0),
            "b" | "2" | "standby" => Some(1),
            _ => None,
        };
        self.nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
            .or_else(|| pos.and_then(|i| self.nodes.get(i)))
    }

    /// The other node of the pair.
    pub fn peer_of(&self, node: &NodeSpec) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.name != node.name)
    }

    /// The configuration as TOML (secret references as written; no secret values exist here).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

fn parse(text: &str, origin: &str) -> Result<ClusterConfig> {
    let de = toml::Deserializer::parse(text).map_err(|e| syntax(origin, text, None, &e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        syntax(origin, text, Some(path), e.inner())
    })
}

fn syntax(origin: &str, text: &str, path: Option<String>, e: &toml::de::Error) -> Error {
    let position = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("line {line}, column {column}")
    });
    let key = match (path.filter(|p| p != "." && !p.is_empty()), position) {
        (Some(p), Some(pos)) => format!("{p} (at {pos})"),
        (Some(p), None) => p,
        (None, Some(pos)) => pos,
        (None, None) => "(top level)".to_string(),
    };
    Error::ConfigSyntax {
        origin: origin.to_string(),
        key,
        message: e.message().trim().to_string(),
    }
}

#[cfg(test)]
mod tests;
