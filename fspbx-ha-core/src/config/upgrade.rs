//! The multinode update procedure's commands (`[upgrade]`).
//!
//! Every field has a default, so a file without the section stays valid. The commands default
//! to FS PBX's own update procedure (code in `/var/www/fspbx`, `php artisan …`); the lab and
//! other setups configure their own. Each command is POSIX shell text run by `/bin/sh` on the
//! node over SSH, in [`UpgradeSpec::workdir`], with its own timeout:
//!
//! ```toml
//! [upgrade]
//! workdir = "/var/www/fspbx"
//! first = "active"                        # or a node name
//! migrate = "php artisan migrate --force" # plain text: the default timeout applies
//! update_code = { run = "git pull && composer install --no-dev", timeout = "30m" }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One command of the procedure: shell text and how long it may run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "CommandRepr")]
pub struct UpgradeCommand {
    /// Shell text run by `/bin/sh` on the node, in [`UpgradeSpec::workdir`].
    pub run: String,
    /// How long it may run; [`UpgradeSpec::command_timeout`] when not set.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

impl UpgradeCommand {
    /// A command with the section's default timeout.
    pub fn new(run: impl Into<String>) -> UpgradeCommand {
        UpgradeCommand {
            run: run.into(),
            timeout: None,
        }
    }
}

/// A command as written: plain text, or `{ run = "…", timeout = "10m" }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum CommandRepr {
    Plain(String),
    Full {
        run: String,
        #[serde(default, with = "humantime_serde")]
        timeout: Option<Duration>,
    },
}

impl From<CommandRepr> for UpgradeCommand {
    fn from(r: CommandRepr) -> Self {
        match r {
            CommandRepr::Plain(run) => UpgradeCommand { run, timeout: None },
            CommandRepr::Full { run, timeout } => UpgradeCommand { run, timeout },
        }
    }
}

/// The `fspbx-ha upgrade` procedure (`[upgrade]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeSpec {
    /// Directory every command runs in, on each node (FS PBX: `/var/www/fspbx`).
    #[serde(default = "default_workdir")]
    pub workdir: String,
    /// The node migrated first: `active` (the node the floating record points at) or a node
    /// name (`A`/`B` also work). `fspbx-ha upgrade --first NODE` overrides it.
    #[serde(default = "default_first")]
    pub first: String,
    /// Updates the code, run on both nodes (first node first).
    #[serde(default = "default_update_code")]
    pub update_code: UpgradeCommand,
    /// Runs the migrations: on the first node, then (after `delete_last_batch`) on the second.
    #[serde(default = "default_migrate")]
    pub migrate: UpgradeCommand,
    /// Forgets the migration batch the second node received from the first through
    /// replication, so its own `migrate` runs them.
    #[serde(default = "default_delete_last_batch")]
    pub delete_last_batch: UpgradeCommand,
    /// Refreshes every subscription of the node (`ALTER SUBSCRIPTION … REFRESH PUBLICATION`),
    /// run on both nodes.
    #[serde(default = "default_refresh_subscriptions")]
    pub refresh_subscriptions: UpgradeCommand,
    /// Laravel's migrations table (with a `batch` column), read on the first node before and
    /// after its migrate: when no new batch appeared, delete-last-batch and migrate on the
    /// second node are skipped (they would forget and re-run the previous, real batch there).
    /// An empty string turns the guard off.
    #[serde(default = "default_migrations_table")]
    pub migrations_table: String,
    /// Timeout of a command without its own.
    #[serde(default = "default_command_timeout", with = "humantime_serde")]
    pub command_timeout: Duration,
    /// How long the checks after a refresh wait for new tables to reach state `r` in both
    /// subscriptions (and for a heartbeat to cross).
    #[serde(default = "default_sync_timeout", with = "humantime_serde")]
    pub sync_timeout: Duration,
    /// Where the run records its progress (to resume after a failure). Relative paths are
    /// relative to the configuration file; default `upgrade-state.json` next to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
}

impl Default for UpgradeSpec {
    fn default() -> Self {
        UpgradeSpec {
            workdir: default_workdir(),
            first: default_first(),
            update_code: default_update_code(),
            migrate: default_migrate(),
            delete_last_batch: default_delete_last_batch(),
            refresh_subscriptions: default_refresh_subscriptions(),
            migrations_table: default_migrations_table(),
            command_timeout: default_command_timeout(),
            sync_timeout: default_sync_timeout(),
            state_file: None,
        }
    }
}

/// The value of [`UpgradeSpec::first`] that means "the node the floating record points at".
pub const FIRST_ACTIVE: &str = "active";

/// File name of the state file when `upgrade.state_file` is not set.
pub const DEFAULT_STATE_FILE: &str = "upgrade-state.json";

fn default_workdir() -> String {
    "/var/www/fspbx".into()
}
fn default_first() -> String {
    FIRST_ACTIVE.into()
}
fn default_update_code() -> UpgradeCommand {
    UpgradeCommand::new("git pull && composer install --no-dev --optimize-autoloader")
}
fn default_migrate() -> UpgradeCommand {
    UpgradeCommand::new("php artisan migrate --force")
}
fn default_delete_last_batch() -> UpgradeCommand {
    UpgradeCommand::new("php artisan migrate:delete-last-batch")
}
fn default_refresh_subscriptions() -> UpgradeCommand {
    UpgradeCommand::new("php artisan db:refresh-subscriptions")
}
fn default_migrations_table() -> String {
    "migrations".into()
}
fn default_command_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_sync_timeout() -> Duration {
    Duration::from_secs(120)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::ClusterConfig;
    use crate::config::tests::{keys, problems_with};

    #[test]
    fn files_without_the_section_get_fspbx_commands() {
        let c = ClusterConfig::from_toml_str(&ClusterConfig::template()).unwrap();
        let u = &c.upgrade;
        assert_eq!(u.workdir, "/var/www/fspbx");
        assert_eq!(u.first, "active");
        assert_eq!(u.migrate.run, "php artisan migrate --force");
        assert_eq!(
            u.delete_last_batch.run,
            "php artisan migrate:delete-last-batch"
        );
        assert_eq!(
            u.refresh_subscriptions.run,
            "php artisan db:refresh-subscriptions"
        );
        assert!(u.update_code.run.contains("composer install --no-dev"));
    }

    #[test]
    fn commands_are_text_or_tables_and_round_trip() {
        let text = format!(
            "{}\n[upgrade]\nworkdir = \"/srv/pbx\"\nfirst = \"b\"\nmigrate = \"./migrate\"\n\
             update_code = {{ run = \"./pull\", timeout = \"10m\" }}\n",
            ClusterConfig::template()
        );
        let c = ClusterConfig::from_toml_str(&text).unwrap();
        assert_eq!(c.upgrade.migrate.run, "./migrate");
        assert_eq!(c.upgrade.migrate.timeout, None);
        assert_eq!(
            c.upgrade.update_code.timeout,
            Some(Duration::from_secs(600))
        );
        let again = ClusterConfig::from_toml_str(&c.to_toml()).unwrap();
        assert_eq!(again.upgrade, c.upgrade);
    }

    #[test]
    fn bad_values_name_their_key() {
        let problems = problems_with(
            "[upgrade]\nworkdir = \"relative\"\nfirst = \"c\"\nmigrate = \" \"\n\
             refresh_subscriptions = { run = \"x\", timeout = \"0s\" }\nsync_timeout = \"0s\"\n",
        );
        assert_eq!(
            keys(&problems),
            [
                "upgrade.workdir",
                "upgrade.first",
                "upgrade.migrate.run",
                "upgrade.refresh_subscriptions.timeout",
                "upgrade.sync_timeout"
            ],
            "{problems:?}"
        );
    }
}
