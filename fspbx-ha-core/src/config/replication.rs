//! PostgreSQL logical replication settings (`[replication]`).
//!
//! Every field has a default, so a file without the section stays valid. The object names
//! default to the ones FS PBX's own script creates, so a pair it set up is recognized and
//! adopted rather than recreated.

use std::time::Duration;

use fspbx_ha_secret::SecretRef;
use serde::{Deserialize, Serialize};

use super::sequences::{ByteSize, SequencesSpec};

/// How the pair replicates (`[replication]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationSpec {
    /// Publication on node A (`FOR ALL TABLES`); FS PBX: `fspbx_publication_a`.
    #[serde(default = "default_publication_a")]
    pub publication_a: String,
    /// Publication on node B; FS PBX: `fspbx_publication_b`.
    #[serde(default = "default_publication_b")]
    pub publication_b: String,
    /// Subscription on node B to node A (`copy_data = true`); FS PBX:
    /// `fspbx_subscription_a_to_b`.
    #[serde(default = "default_subscription_a_to_b")]
    pub subscription_a_to_b: String,
    /// Subscription on node A to node B (`copy_data = false`); FS PBX:
    /// `fspbx_subscription_b_to_a`.
    #[serde(default = "default_subscription_b_to_a")]
    pub subscription_b_to_a: String,
    /// The role each subscription logs in as on its publisher. A dedicated role
    /// (`LOGIN REPLICATION`, member of `pg_read_all_data`) is created on both nodes. When it is
    /// the nodes' `postgres.user` (FS PBX's script uses `fusionpbx`), no role is created and each
    /// publisher's `postgres.password` is used.
    #[serde(default = "default_role")]
    pub role: String,
    /// Password of [`role`](Self::role) (`env:NAME` or `file:PATH`); required for a dedicated role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// Manage a marked `# BEGIN fspbx-ha` … `# END fspbx-ha` block in each node's
    /// `pg_hba.conf` (over SSH) admitting the peer's address only.
    #[serde(default = "default_true")]
    pub manage_hba: bool,
    /// Authentication method of that block (`scram-sha-256`; `md5` for old clients).
    #[serde(default = "default_hba_method")]
    pub hba_method: String,
    /// Schema of the heartbeat table each node writes and the other reads.
    #[serde(default = "default_heartbeat_schema")]
    pub heartbeat_schema: String,
    /// How long `status` waits for a fresh heartbeat to cross before calling the direction stuck.
    #[serde(default = "default_heartbeat_timeout", with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// How long `apply` waits for the initial copy (every table in state `r`).
    #[serde(default = "default_copy_timeout", with = "humantime_serde")]
    pub copy_timeout: Duration,
    /// Command run on a node over SSH to restart PostgreSQL (only with consent to restart).
    #[serde(default = "default_restart_command")]
    pub restart_command: String,
    /// Command (program and leading arguments) run on node A over SSH to dump the schema; the
    /// tool appends `--schema-only` options and the database name.
    #[serde(default = "default_pg_dump_command")]
    pub pg_dump_command: Vec<String>,
    /// Command (program and leading arguments) run on node B over SSH to load the schema from
    /// standard input; the tool appends `-v ON_ERROR_STOP=1` and the database name.
    #[serde(default = "default_psql_command")]
    pub psql_command: Vec<String>,
    /// WAL a publisher's slot may retain before `status` warns (`"1GB"`); PostgreSQL's own hard
    /// limit is the server setting `max_slot_wal_keep_size`.
    #[serde(default = "default_slot_max_retained")]
    pub slot_max_retained: ByteSize,
    /// How serial and identity columns are kept from colliding (`[replication.sequences]`).
    #[serde(default)]
    pub sequences: SequencesSpec,
    /// Shell command run on a subscriber node over SSH that prints the end of its PostgreSQL
    /// server log; `replication conflicts` reads the apply worker's error (key, table, LSN)
    /// from it. The default reads the newest log under `/var/log/postgresql/` (Debian).
    #[serde(default = "default_log_command")]
    pub log_command: String,
}

impl Default for ReplicationSpec {
    fn default() -> Self {
        ReplicationSpec {
            publication_a: default_publication_a(),
            publication_b: default_publication_b(),
            subscription_a_to_b: default_subscription_a_to_b(),
            subscription_b_to_a: default_subscription_b_to_a(),
            role: default_role(),
            password: None,
            manage_hba: true,
            hba_method: default_hba_method(),
            heartbeat_schema: default_heartbeat_schema(),
            heartbeat_timeout: default_heartbeat_timeout(),
            copy_timeout: default_copy_timeout(),
            restart_command: default_restart_command(),
            pg_dump_command: default_pg_dump_command(),
            psql_command: default_psql_command(),
            slot_max_retained: default_slot_max_retained(),
            sequences: SequencesSpec::default(),
            log_command: default_log_command(),
        }
    }
}

/// `pg_hba.conf` methods the block may use.
pub const HBA_METHODS: &[&str] = &["scram-sha-256", "md5", "password", "cert"];

fn default_publication_a() -> String {
    "fspbx_publication_a".into()
}
fn default_publication_b() -> String {
    "fspbx_publication_b".into()
}
fn default_subscription_a_to_b() -> String {
    "fspbx_subscription_a_to_b".into()
}
fn default_subscription_b_to_a() -> String {
    "fspbx_subscription_b_to_a".into()
}
fn default_role() -> String {
    "fspbx_replicator".into()
}
fn default_true() -> bool {
    true
}
fn default_hba_method() -> String {
    "scram-sha-256".into()
}
fn default_heartbeat_schema() -> String {
    "fspbx_ha".into()
}
fn default_heartbeat_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_copy_timeout() -> Duration {
    Duration::from_secs(3600)
}
fn default_restart_command() -> String {
    "systemctl restart postgresql".into()
}
fn default_pg_dump_command() -> Vec<String> {
    ["sudo", "-u", "postgres", "pg_dump"]
        .map(String::from)
        .to_vec()
}
fn default_slot_max_retained() -> ByteSize {
    ByteSize(1 << 30)
}
fn default_log_command() -> String {
    "tail -n 5000 \"$(ls -t /var/log/postgresql/postgresql-*.log | head -n 1)\"".into()
}
fn default_psql_command() -> Vec<String> {
    ["sudo", "-u", "postgres", "psql"]
        .map(String::from)
        .to_vec()
}

#[cfg(test)]
mod tests {
    use crate::config::ClusterConfig;
    use crate::config::tests::{keys, problems_with};

    #[test]
    fn files_without_the_section_get_fspbx_names() {
        let c = ClusterConfig::from_toml_str(&ClusterConfig::template()).unwrap();
        let r = &c.replication;
        assert_eq!(r.publication_a, "fspbx_publication_a");
        assert_eq!(r.publication_b, "fspbx_publication_b");
        assert_eq!(r.subscription_a_to_b, "fspbx_subscription_a_to_b");
        assert_eq!(r.subscription_b_to_a, "fspbx_subscription_b_to_a");
        assert_eq!(r.hba_method, "scram-sha-256");
        assert!(r.manage_hba && r.password.is_none());
    }

    #[test]
    fn bad_values_name_their_key() {
        let problems = problems_with(
            "[replication]\nhba_method = \"trust\"\nsubscription_a_to_b = \"My Sub\"\n\
             password = \"env:REPL_PW\"\nheartbeat_timeout = \"0s\"\n",
        );
        assert_eq!(
            keys(&problems),
            [
                "replication.subscription_a_to_b",
                "replication.hba_method",
                "replication.heartbeat_timeout"
            ],
            "{problems:?}"
        );
        assert!(problems[0].expected.contains("replication slot"));
    }
}
