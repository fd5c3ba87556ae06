//! Where and how to reach one node over SSH.

use std::path::PathBuf;
use std::time::Duration;

use fspbx_ha_secret::SecretRef;

/// Everything needed to open an SSH connection to one node.
///
/// This is a plain struct so the executor does not depend on the configuration format; the
/// cluster configuration builds one per node.
#[derive(Debug, Clone, PartialEq)]
pub struct SshTarget {
    /// Node name, used in every error and log line.
    pub node: String,
    /// Host name or IP address of the node's sshd.
    pub host: String,
    /// TCP port of the node's sshd.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private key file (OpenSSH ed25519 or RSA).
    pub identity: PathBuf,
    /// Where the key's passphrase lives, if the key is encrypted. Resolved only while the key
    /// is decrypted, never logged.
    pub passphrase: Option<SecretRef>,
    /// known_hosts file used for strict host-key checking.
    pub known_hosts: PathBuf,
    /// Accept and record an unknown host key on first contact. A *changed* key is refused
    /// regardless.
    pub trust_on_first_use: bool,
    /// Limit for one connection attempt (TCP connect, handshake and authentication).
    pub connect_timeout: Duration,
    /// Limit for one remote command.
    pub command_timeout: Duration,
    /// Send an SSH keepalive after this much silence from the server (zero: never).
    pub keepalive_interval: Duration,
    /// How many times to try connecting when the TCP connection fails or times out
    /// (at least 1). Host-key and authentication failures are never retried.
    pub connect_attempts: u32,
}

impl SshTarget {
    /// Default limit for one connection attempt.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default limit for one remote command.
    pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
    /// Default keepalive interval.
    pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
    /// Default number of connection attempts.
    pub const DEFAULT_CONNECT_ATTEMPTS: u32 = 3;

    /// A target with strict host-key checking and the default timeouts, keepalive and retries.
    pub fn new(
        node: impl Into<String>,
        host: impl Into<String>,
        port: u16,
        user: impl Into<String>,
        identity: impl Into<PathBuf>,
        known_hosts: impl Into<PathBuf>,
    ) -> Self {
        SshTarget {
            node: node.into(),
            host: host.into(),
            port,
            user: user.into(),
            identity: identity.into(),
            passphrase: None,
            known_hosts: known_hosts.into(),
            trust_on_first_use: false,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            command_timeout: Self::DEFAULT_COMMAND_TIMEOUT,
            keepalive_interval: Self::DEFAULT_KEEPALIVE_INTERVAL,
            connect_attempts: Self::DEFAULT_CONNECT_ATTEMPTS,
        }
    }

    /// `user@host:port` for logs (no secret in it).
    pub fn display_addr(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}
