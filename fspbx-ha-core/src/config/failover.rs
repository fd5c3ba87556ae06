//! What the failover controller does besides deciding (`[failover]`): fencing, notifications,
//! the audit log, metrics, how strictly each precondition gates a failover, and what is counted
//! on the new active node after a flip (registrations, calls).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use fspbx_ha_secret::SecretRef;
use serde::{Deserialize, Serialize};

use crate::failover::Requirement;

/// The failover controller's actions and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverSpec {
    /// Commands run over SSH on the old active node when it is failed away from (fencing), in
    /// order; the node may be unreachable (then fencing is skipped and said so).
    #[serde(default = "default_fence_commands")]
    pub fence_commands: Vec<String>,
    /// Fence before flipping the record (safer, slower: a dead node's SSH timeout adds to the
    /// failover time); by default the flip goes first and fencing runs right after.
    #[serde(default)]
    pub fence_before_flip: bool,
    /// The longest fencing may take (connection and commands).
    #[serde(default = "default_fence_timeout", with = "humantime_serde")]
    pub fence_timeout: Duration,
    /// A local command told about every notification (`sh -c`, with `FSPBX_HA_LEVEL`,
    /// `FSPBX_HA_EVENT` and `FSPBX_HA_MESSAGE` in its environment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_command: Option<String>,
    /// The URL every notification is POSTed to as JSON (`{"level", "event", "message", "at"}`),
    /// as a secret reference (`env:NAME` or `file:PATH`): webhook URLs usually carry a token.
    /// It never appears in logs, errors or the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<SecretRef>,
    /// The audit log: one JSON object per line for every decision and action.
    #[serde(default = "default_audit_log")]
    pub audit_log: PathBuf,
    /// Where to serve `/metrics` (Prometheus text) and `/health`, e.g. `127.0.0.1:9187`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// How often the floating record is read again (it is the truth about who is active).
    #[serde(default = "default_record_refresh", with = "humantime_serde")]
    pub record_refresh: Duration,
    /// How long a flip (provider change and propagation to every authoritative server) may
    /// take before it counts as failed and may be retried.
    #[serde(default = "default_flip_timeout", with = "humantime_serde")]
    pub flip_timeout: Duration,
    /// How often replication lag and schema parity are measured (while both nodes are up; a
    /// failover uses the last measurement).
    #[serde(default = "default_preconditions_interval", with = "humantime_serde")]
    pub preconditions_interval: Duration,
    /// Gate on the target's replication lag: `hard` (no flip), `soft` (flip and say so), `off`.
    #[serde(default = "hard")]
    pub lag: Requirement,
    /// Gate on schema parity between the nodes.
    #[serde(default = "hard")]
    pub schema: Requirement,
    /// Gate on the target's Syncthing folders being complete.
    #[serde(default = "soft")]
    pub sync: Requirement,
    /// After a flip, the shell command run over SSH on the new active node that reports its
    /// phone registrations (FS PBX: `fs_cli -x 'show registrations'`, ending `N total.`).
    #[serde(default = "default_registrations_command")]
    pub registrations_command: String,
    /// A regular expression with one capture group: the count is the capture in the last
    /// matching line of the command's output. Without it, the number of a trailing
    /// `N total.` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registrations_pattern: Option<String>,
    /// How long after a flip registrations are sampled (`0s`: not at all).
    #[serde(default = "default_registrations_watch", with = "humantime_serde")]
    pub registrations_watch: Duration,
    /// Time between two registration samples (each bounded by `fence_timeout`).
    #[serde(default = "default_registrations_interval", with = "humantime_serde")]
    pub registrations_interval: Duration,
    /// After a flip, the shell command run over SSH on the new active node that reports the
    /// calls it serves (FS PBX: `fs_cli -x 'show calls count'`, ending `N total.`).
    #[serde(default = "default_calls_command")]
    pub calls_command: String,
    /// Like `registrations_pattern`, for the output of `calls_command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_pattern: Option<String>,
    /// How long after a flip calls are counted (`0s`: not at all).
    #[serde(default = "default_registrations_watch", with = "humantime_serde")]
    pub calls_watch: Duration,
    /// Time between two call counts (each bounded by `fence_timeout`).
    #[serde(default = "default_registrations_interval", with = "humantime_serde")]
    pub calls_interval: Duration,
}

impl Default for FailoverSpec {
    fn default() -> Self {
        FailoverSpec {
            fence_commands: default_fence_commands(),
            fence_before_flip: false,
            fence_timeout: default_fence_timeout(),
            notify_command: None,
            webhook: None,
            audit_log: default_audit_log(),
            metrics_listen: None,
            record_refresh: default_record_refresh(),
            flip_timeout: default_flip_timeout(),
            preconditions_interval: default_preconditions_interval(),
            lag: Requirement::Hard,
            schema: Requirement::Hard,
            sync: Requirement::Soft,
            registrations_command: default_registrations_command(),
            registrations_pattern: None,
            registrations_watch: default_registrations_watch(),
            registrations_interval: default_registrations_interval(),
            calls_command: default_calls_command(),
            calls_pattern: None,
            calls_watch: default_registrations_watch(),
            calls_interval: default_registrations_interval(),
        }
    }
}

fn default_fence_commands() -> Vec<String> {
    vec!["systemctl stop freeswitch".to_owned()]
}
fn default_fence_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_audit_log() -> PathBuf {
    PathBuf::from("/var/log/fspbx-ha/failover.jsonl")
}
fn default_record_refresh() -> Duration {
    Duration::from_secs(5)
}
fn default_flip_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_preconditions_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_registrations_command() -> String {
    "fs_cli -x 'show registrations'".to_owned()
}
fn default_calls_command() -> String {
    "fs_cli -x 'show calls count'".to_owned()
}
fn default_registrations_watch() -> Duration {
    Duration::from_secs(60)
}
fn default_registrations_interval() -> Duration {
    Duration::from_secs(5)
}
fn hard() -> Requirement {
    Requirement::Hard
}
fn soft() -> Requirement {
    Requirement::Soft
}

#[cfg(test)]
mod tests {
    use crate::config::ClusterConfig;
    use crate::failover::Requirement;

    fn with_failover(section: &str) -> String {
        format!("{}\n[failover]\n{section}\n", ClusterConfig::template())
    }

    #[test]
    fn defaults_fence_freeswitch_and_gate_lag_and_schema_hard() {
        let c = ClusterConfig::from_toml_str(&ClusterConfig::template()).unwrap();
        let f = &c.failover;
        assert_eq!(f.fence_commands, ["systemctl stop freeswitch"]);
        assert!(!f.fence_before_flip);
        assert_eq!(
            (f.lag, f.schema, f.sync),
            (Requirement::Hard, Requirement::Hard, Requirement::Soft)
        );
        assert_eq!(f.metrics_listen, None);
        assert_eq!(f.registrations_command, "fs_cli -x 'show registrations'");
        assert_eq!(f.registrations_pattern, None);
        assert_eq!(f.registrations_watch, std::time::Duration::from_secs(60));
        assert_eq!(f.calls_command, "fs_cli -x 'show calls count'");
        assert_eq!(f.calls_pattern, None);
        assert_eq!(
            (f.calls_watch, f.calls_interval),
            (f.registrations_watch, f.registrations_interval)
        );
    }

    #[test]
    fn call_count_settings_parse_and_bad_ones_name_their_keys() {
        let c = ClusterConfig::from_toml_str(&with_failover(
            "calls_command = \"kamcmd dlg.stats_active\"\n\
             calls_pattern = 'ongoing: (\\d+)'\ncalls_watch = \"20s\"\ncalls_interval = \"2s\"",
        ))
        .unwrap();
        assert_eq!(c.failover.calls_command, "kamcmd dlg.stats_active");
        assert_eq!(c.failover.calls_pattern.as_deref(), Some(r"ongoing: (\d+)"));
        assert_eq!(
            (c.failover.calls_watch, c.failover.calls_interval),
            (
                std::time::Duration::from_secs(20),
                std::time::Duration::from_secs(2)
            )
        );
        let err = ClusterConfig::from_toml_str(&with_failover(
            "calls_command = \" \"\ncalls_pattern = '(a)(b)'\ncalls_interval = \"0s\"",
        ))
        .unwrap_err()
        .to_string();
        for key in [
            "failover.calls_command",
            "failover.calls_pattern",
            "failover.calls_interval",
        ] {
            assert!(err.contains(key), "{key} missing in: {err}");
        }
        assert!(err.contains("2 capture groups"), "{err}");
    }

    #[test]
    fn registration_settings_parse_and_bad_ones_name_their_keys() {
        let c = ClusterConfig::from_toml_str(&with_failover(
            "registrations_command = \"kamcmd ul.dump\"\n\
             registrations_pattern = 'Records: (\\d+)'\nregistrations_watch = \"10s\"\n\
             registrations_interval = \"1s\"",
        ))
        .unwrap();
        assert_eq!(
            c.failover.registrations_pattern.as_deref(),
            Some(r"Records: (\d+)")
        );
        assert_eq!(
            c.failover.registrations_interval,
            std::time::Duration::from_secs(1)
        );
        let err = ClusterConfig::from_toml_str(&with_failover(
            "registrations_command = \"\"\nregistrations_pattern = '(unclosed'\n\
             registrations_interval = \"0s\"",
        ))
        .unwrap_err()
        .to_string();
        for key in [
            "failover.registrations_command",
            "failover.registrations_pattern",
            "failover.registrations_interval",
        ] {
            assert!(err.contains(key), "{key} missing in: {err}");
        }
        let err = ClusterConfig::from_toml_str(&with_failover("registrations_pattern = 'total'"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("one capture group"), "{err}");
    }

    #[test]
    fn a_failover_section_parses_and_bad_values_name_their_keys() {
        let c = ClusterConfig::from_toml_str(&with_failover(
            "fence_commands = [\"fs_cli -x 'fsctl shutdown'\"]\nfence_before_flip = true\n\
             metrics_listen = \"127.0.0.1:9187\"\nlag = \"soft\"\nschema = \"off\"\n\
             webhook = \"env:FSPBX_HA_TEST_WEBHOOK\"\naudit_log = \"/tmp/a.jsonl\"",
        ))
        .unwrap();
        assert!(c.failover.fence_before_flip);
        assert_eq!(c.failover.lag, Requirement::Soft);
        assert_eq!(c.failover.schema, Requirement::Off);
        assert_eq!(
            c.failover.metrics_listen,
            Some("127.0.0.1:9187".parse().unwrap())
        );

        let err = ClusterConfig::from_toml_str(&with_failover(
            "fence_commands = [\"\"]\nfence_timeout = \"0s\"",
        ))
        .unwrap_err()
        .to_string();
        for key in ["failover.fence_commands[0]", "failover.fence_timeout"] {
            assert!(err.contains(key), "{key} missing in: {err}");
        }
        // A webhook URL written inline is refused without echoing it (it carries a token).
        let err = ClusterConfig::from_toml_str(&with_failover(
            "webhook = \"https://hooks.example.com/T0KEN\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("failover.webhook"), "{err}");
        assert!(!err.contains("T0KEN"), "{err}");
        let err = ClusterConfig::from_toml_str(&with_failover("lag = \"maybe\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("failover.lag"), "{err}");
        assert!(err.contains("hard"), "{err}");
    }
}
