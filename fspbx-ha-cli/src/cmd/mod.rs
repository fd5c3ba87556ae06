//! One module per subcommand.

mod args;
pub(crate) mod check;
pub(crate) mod config;
pub(crate) mod dns;
pub(crate) mod failover;
pub(crate) mod init;
pub(crate) mod replication;
pub(crate) mod replication_conflicts;
pub(crate) mod replication_schema;
pub(crate) mod status;
pub(crate) mod sync;
pub(crate) mod upgrade;

use std::path::Path;

use fspbx_ha_core::config::ClusterConfig;

/// Loads and validates the configuration.
pub(crate) fn load_config(path: &Path) -> anyhow::Result<ClusterConfig> {
    Ok(ClusterConfig::load(path)?)
}
