//! One node of the pair: where it is and how each of its services is reached.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use fspbx_ha_secret::SecretRef;
use serde::{Deserialize, Serialize};

/// One node of the pair (`[[nodes]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Short name used in messages and on the command line (`a`, `server1`, …).
    pub name: String,
    /// The node's own public host name (`server1.example.com`); its A/AAAA records point here.
    pub hostname: String,
    /// The node's public addresses (A and AAAA records, the floating record's value when active).
    pub addresses: Vec<IpAddr>,
    /// The address the *other* node uses to reach this one (replication connection, pg_hba,
    /// node-to-node SSH). Defaults to the first of `addresses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_address: Option<IpAddr>,
    /// How the operator's machine reaches the node over SSH.
    pub ssh: SshSpec,
    /// The node's PostgreSQL.
    pub postgres: PostgresSpec,
    /// The node's Syncthing REST API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syncthing: Option<SyncthingSpec>,
    /// Health probe targets.
    #[serde(default)]
    pub probes: ProbesSpec,
}

impl NodeSpec {
    /// The address the peer uses to reach this node.
    pub fn peer_address(&self) -> Option<IpAddr> {
        self.peer_address
            .or_else(|| self.addresses.first().copied())
    }
}

/// SSH access to a node (`nodes[i].ssh`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    /// Host name or address the operator's machine connects to.
    pub host: String,
    /// TCP port.
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    /// Remote user.
    #[serde(default = "default_ssh_user")]
    pub user: String,
    /// Private key file (ed25519 or RSA).
    pub identity: PathBuf,
    /// Passphrase of the private key, if it is encrypted (`env:NAME` or `file:PATH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<SecretRef>,
    /// known_hosts file the node's host key is checked against.
    #[serde(default = "default_known_hosts")]
    pub known_hosts: PathBuf,
    /// Accept and record an unknown host key (never a changed one). Off by default.
    #[serde(default)]
    pub trust_on_first_use: bool,
    /// Time allowed for TCP connect plus SSH handshake and authentication.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time allowed for one remote command.
    #[serde(default = "default_command_timeout", with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Keepalive interval on the SSH connection.
    #[serde(default = "default_keepalive", with = "humantime_serde")]
    pub keepalive_interval: Duration,
    /// Connection attempts before giving up (with backoff between them).
    #[serde(default = "default_connect_attempts")]
    pub connect_attempts: u32,
    /// Extra `ssh` options this node uses when it connects to its peer (the node-to-node check
    /// and node-to-node operations), e.g. `["-i", "/root/.ssh/id_peer"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_ssh_options: Vec<String>,
}

impl SshSpec {
    /// The SSH executor's target for node `node`.
    pub fn target(&self, node: &str) -> crate::ssh::SshTarget {
        crate::ssh::SshTarget {
            node: node.to_string(),
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            identity: self.identity.clone(),
            passphrase: self.passphrase.clone(),
            known_hosts: self.known_hosts.clone(),
            trust_on_first_use: self.trust_on_first_use,
            connect_timeout: self.connect_timeout,
            command_timeout: self.command_timeout,
            keepalive_interval: self.keepalive_interval,
            connect_attempts: self.connect_attempts,
        }
    }
}

/// A node's PostgreSQL (`nodes[i].postgres`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    /// Host to connect to. With `via_ssh`, this is resolved on the node (usually `127.0.0.1`).
    #[serde(default = "default_pg_host")]
    pub host: String,
    /// TCP port.
    #[serde(default = "default_pg_port")]
    pub port: u16,
    /// Database (FS PBX: `fusionpbx`).
    #[serde(default = "default_pg_db")]
    pub dbname: String,
    /// Role (FS PBX: `fusionpbx`, a superuser).
    #[serde(default = "default_pg_user")]
    pub user: String,
    /// Password of the role (`env:NAME` or `file:PATH`).
    pub password: SecretRef,
    /// Reach PostgreSQL through an SSH port forward to the node, so 5432 need not be exposed.
    #[serde(default)]
    pub via_ssh: bool,
    /// Time allowed to connect.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl PostgresSpec {
    /// `user@host:port/dbname`, for messages (never the password).
    pub fn describe(&self) -> String {
        format!(
            "{}@{}:{}/{}{}",
            self.user,
            self.host,
            self.port,
            self.dbname,
            if self.via_ssh { " (via SSH)" } else { "" }
        )
    }
}

/// A node's Syncthing REST API (`nodes[i].syncthing`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncthingSpec {
    /// Base URL of the GUI/REST listener, as seen from the node when `via_ssh` is set.
    #[serde(default = "default_syncthing_url")]
    pub url: String,
    /// API key (`env:NAME` or `file:PATH`).
    pub api_key: SecretRef,
    /// Reach the API through an SSH port forward (what FS PBX's docs ask for).
    #[serde(default = "default_true")]
    pub via_ssh: bool,
    /// A directory prepended to every folder path on this node, for a node whose FS PBX tree
    /// is mounted elsewhere (or two test nodes sharing one machine). Normally absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_root: Option<PathBuf>,
}

/// Health probe targets of a node (`nodes[i].probes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbesSpec {
    /// SIP OPTIONS probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip: Option<SipProbeSpec>,
    /// HTTP(S) probe of the web UI / API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpProbeSpec>,
    /// Time each probe of this node may take unless the probe sets its own (default 1 s).
    #[serde(default = "default_probe_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// What the PostgreSQL probe requires: `writable` (connects, `SELECT 1`, accepts writes;
    /// the default), `connect` (connects and `SELECT 1`) or `off`.
    #[serde(default, skip_serializing_if = "PgProbeMode::is_default")]
    pub postgres: PgProbeMode,
    /// Probe Syncthing's `/rest/noauth/health` when `[nodes.syncthing]` is set (default true).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub syncthing: bool,
}

impl Default for ProbesSpec {
    fn default() -> Self {
        ProbesSpec {
            sip: None,
            http: None,
            timeout: default_probe_timeout(),
            postgres: PgProbeMode::default(),
            syncthing: true,
        }
    }
}

/// What the PostgreSQL probe of a node requires (`nodes[i].probes.postgres`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PgProbeMode {
    /// No PostgreSQL probe.
    Off,
    /// Connects and runs `SELECT 1`.
    Connect,
    /// Connects, runs `SELECT 1`, and the server accepts writes (not in recovery, and
    /// `default_transaction_read_only` is off).
    #[default]
    Writable,
}

impl PgProbeMode {
    fn is_default(&self) -> bool {
        *self == PgProbeMode::default()
    }
}

/// Transport of a SIP probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

/// SIP OPTIONS probe target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipProbeSpec {
    /// Host or address.
    pub host: String,
    /// Port.
    #[serde(default = "default_sip_port")]
    pub port: u16,
    /// Transport.
    #[serde(default = "default_sip_transport")]
    pub transport: SipTransport,
    /// Only a 2xx answer counts as healthy (default: any final answer, which proves the SIP
    /// stack is alive).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_2xx: bool,
    /// Time this probe may take (default: `probes.timeout`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub timeout: Option<Duration>,
}

/// HTTP(S) probe target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbeSpec {
    /// URL to GET.
    pub url: String,
    /// Lowest acceptable status.
    #[serde(default = "default_status_min")]
    pub status_min: u16,
    /// Highest acceptable status.
    #[serde(default = "default_status_max")]
    pub status_max: u16,
    /// Text the response body must contain (none: the status alone decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Accept invalid TLS certificates (self-signed lab servers). Off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub accept_invalid_certs: bool,
    /// Time this probe may take (default: `probes.timeout`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde"
    )]
    pub timeout: Option<Duration>,
}

fn default_ssh_port() -> u16 {
    22
}
fn default_ssh_user() -> String {
    "root".into()
}
fn default_known_hosts() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
        .join(".ssh/known_hosts")
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_command_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_keepalive() -> Duration {
    Duration::from_secs(15)
}
fn default_connect_attempts() -> u32 {
    3
}
fn default_pg_host() -> String {
    "127.0.0.1".into()
}
fn default_pg_port() -> u16 {
    5432
}
fn default_pg_db() -> String {
    "fusionpbx".into()
}
fn default_pg_user() -> String {
    "fusionpbx".into()
}
fn default_syncthing_url() -> String {
    "http://127.0.0.1:8384".into()
}
fn default_true() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}
fn default_probe_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_sip_port() -> u16 {
    5060
}
fn default_sip_transport() -> SipTransport {
    SipTransport::Udp
}
fn default_status_min() -> u16 {
    200
}
fn default_status_max() -> u16 {
    399
}
