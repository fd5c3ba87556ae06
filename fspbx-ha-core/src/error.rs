//! The one error type of `fspbx-ha-core`.
//!
//! Every variant carries the node, key path or step it concerns, so a message tells the operator
//! where the problem is and what to do. No variant carries a secret value.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::ConfigProblem;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of `fspbx-ha-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---------------------------------------------------------------- configuration
    /// The configuration file could not be read.
    #[error("cannot read configuration {}: {source}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is not valid TOML or does not have the expected shape.
    #[error("{origin}: {key}: {message}")]
    ConfigSyntax {
        /// The file, or `<string>`.
        origin: String,
        /// The key path (e.g. `nodes[1].ssh.port`), or the line and column when no key is known.
        key: String,
        /// What the parser said.
        message: String,
    },
    /// The configuration parsed but some values are wrong; every problem is listed.
    #[error("{origin}: {} invalid value(s):\n{}", problems.len(), ConfigProblem::list(problems))]
    ConfigInvalid {
        /// The file, or `<string>`.
        origin: String,
        /// All problems found, each with its key path.
        problems: Vec<ConfigProblem>,
    },
    /// A secret reference in the configuration could not be resolved.
    #[error("{key}: {source}")]
    Secret {
        /// The key path of the reference, e.g. `nodes[0].postgres.password`.
        key: String,
        /// Why.
        #[source]
        source: fspbx_ha_secret::SecretError,
    },
    /// A file the tool writes could not be written.
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file that must not be overwritten already exists.
    #[error("{} already exists; pass --force to overwrite it", path.display())]
    AlreadyExists {
        /// The file.
        path: PathBuf,
    },

    // ---------------------------------------------------------------- SSH
    // (variants added by the ssh module)
    /// The SSH private key file could not be read.
    #[error("node {node}: cannot read SSH key {}: {source}; check ssh.identity", path.display())]
    SshKeyRead {
        /// Node name.
        node: String,
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The SSH private key file is not a key this tool can use.
    #[error(
        "node {node}: {} is not a usable SSH private key ({reason}); use an OpenSSH ed25519 or \
         RSA key (ssh-keygen -t ed25519)",
        path.display()
    )]
    SshKeyInvalid {
        /// Node name.
        node: String,
        /// The key file.
        path: PathBuf,
        /// What the key parser said.
        reason: String,
    },
    /// The SSH private key is encrypted and no passphrase reference is configured.
    #[error(
        "node {node}: SSH key {} is encrypted; set ssh.passphrase = \"env:NAME\" (or \
         \"file:/path\") to a reference holding its passphrase",
        path.display()
    )]
    SshKeyEncrypted {
        /// Node name.
        node: String,
        /// The key file.
        path: PathBuf,
    },
    /// The passphrase did not decrypt the key.
    #[error(
        "node {node}: the passphrase from {reference} does not decrypt SSH key {} (wrong \
         passphrase or damaged key)",
        path.display()
    )]
    SshKeyPassphrase {
        /// Node name.
        node: String,
        /// The key file.
        path: PathBuf,
        /// The passphrase reference (`env:NAME`), never its value.
        reference: String,
    },
    /// The passphrase reference could not be resolved.
    #[error("node {node}: ssh.passphrase: {source}")]
    SshPassphraseSecret {
        /// Node name.
        node: String,
        /// Why.
        #[source]
        source: fspbx_ha_secret::SecretError,
    },
    /// The TCP connection to sshd failed after all attempts.
    #[error(
        "node {node}: cannot connect to SSH at {host}:{port} after {attempts} attempt(s): \
         {source}; check that sshd runs there and that ssh.host/ssh.port are right"
    )]
    SshConnect {
        /// Node name.
        node: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// How many attempts were made.
        attempts: u32,
        /// The last I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Connecting (TCP, handshake and authentication) did not finish in time, on every attempt.
    #[error(
        "node {node}: SSH at {host}:{port} did not answer within {after:?} ({attempts} \
         attempt(s)); check the address and any firewall, or raise ssh.connect_timeout"
    )]
    SshConnectTimeout {
        /// Node name.
        node: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The per-attempt timeout.
        after: Duration,
        /// How many attempts were made.
        attempts: u32,
    },
    /// The SSH protocol handshake failed (not a host-key or authentication problem).
    #[error("node {node}: SSH handshake with {host}:{port} failed: {source}")]
    SshHandshake {
        /// Node name.
        node: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The protocol error.
        #[source]
        source: russh::Error,
    },
    /// The server's host key is not in known_hosts and trust-on-first-use is off.
    #[error(
        "node {node}: host key of {host}:{port} is unknown ({algorithm} {fingerprint}) and not \
         in {}; verify the fingerprint on the server (ssh-keygen -lf \
         /etc/ssh/ssh_host_*_key.pub), then add it with `ssh-keyscan -p {port} {host} >> {}` \
         or set ssh.trust_on_first_use = true for the first connection",
        known_hosts.display(),
        known_hosts.display()
    )]
    SshHostKeyUnknown {
        /// Node name.
        node: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Key type, e.g. `ssh-ed25519`.
        algorithm: String,
        /// `SHA256:…` fingerprint of the presented key.
        fingerprint: String,
        /// The known_hosts file consulted.
        known_hosts: PathBuf,
    },
    /// The server presented a different key than the one recorded: possible man-in-the-middle.
    #[error(
        "node {node}: HOST KEY CHANGED for {host}:{port}: the server presents {algorithm} \
         {fingerprint} but {} line {line} records {recorded_fingerprint}; this may be an attack. \
         If the server was reinstalled on purpose, remove that line (ssh-keygen -R '{}' -f {}) \
         and connect again",
        known_hosts.display(),
        crate::ssh::known_hosts::host_key_name(host, *port),
        known_hosts.display()
    )]
    SshHostKeyChanged {
        /// Node name.
        node: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Key type presented.
        algorithm: String,
        /// `SHA256:…` fingerprint of the presented key.
        fingerprint: String,
        /// `SHA256:…` fingerprint of the recorded key.
        recorded_fingerprint: String,
        /// The known_hosts file.
        known_hosts: PathBuf,
        /// Physical (1-based) line of the recorded key in that file.
        line: usize,
    },
    /// The server presented a key marked `@revoked`.
    #[error(
        "node {node}: host key {fingerprint} of {host}:{port} is marked @revoked in {} line \
         {line}; refusing to connect",
        known_hosts.display()
    )]
    SshHostKeyRevoked {
        /// Node name.
        node: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// `SHA256:…` fingerprint.
        fingerprint: String,
        /// The known_hosts file.
        known_hosts: PathBuf,
        /// Physical (1-based) line of the `@revoked` entry.
        line: usize,
    },
    /// The known_hosts file could not be read or appended to.
    #[error("node {node}: cannot {action} known_hosts file {}: {source}", path.display())]
    SshKnownHostsIo {
        /// Node name.
        node: String,
        /// `read` or `append to`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The server refused the key.
    #[error(
        "node {node}: SSH server {host}:{port} refused public-key login as {user} with key {} \
         (server still allows: {remaining}); add the matching .pub line to ~{user}/.ssh/authorized_keys \
         on the node, or fix ssh.user/ssh.identity",
        key_path.display()
    )]
    SshAuthRejected {
        /// Node name.
        node: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// The login user.
        user: String,
        /// The private key file used.
        key_path: PathBuf,
        /// Methods the server would still accept, e.g. `publickey`, or `none`.
        remaining: String,
    },
    /// The connection to the node is gone (closed, or the keepalive gave up).
    #[error("node {node}: the SSH connection to {host}:{port} is closed; connect again")]
    SshDisconnected {
        /// Node name.
        node: String,
        /// Host.
        host: String,
        /// Port.
        port: u16,
    },
    /// Opening a channel or sending a request on it failed.
    #[error("node {node}: SSH {what} failed: {source}")]
    SshChannel {
        /// Node name.
        node: String,
        /// What was attempted, e.g. `exec`, `direct-tcpip to 127.0.0.1:5432`.
        what: String,
        /// The protocol error.
        #[source]
        source: russh::Error,
    },
    /// A remote command did not finish in time (it was sent SIGTERM and its channel closed).
    #[error(
        "node {node}: command `{command}` did not finish within {after:?}; raise \
         ssh.command_timeout if it is expected to be slow"
    )]
    SshCommandTimeout {
        /// Node name.
        node: String,
        /// The command (shortened); commands never carry secrets, those go to stdin.
        command: String,
        /// The timeout.
        after: Duration,
    },
    /// A remote command failed (non-zero exit or killed by a signal).
    #[error("node {node}: command `{command}` failed ({status}): {stderr}")]
    SshCommandFailed {
        /// Node name.
        node: String,
        /// The command (shortened).
        command: String,
        /// `exit status 3`, `signal KILL`, or `no exit status`.
        status: String,
        /// The last part of its stderr.
        stderr: String,
    },
    /// A local port forward could not listen.
    #[error("node {node}: cannot listen for a local SSH forward to {target}: {source}")]
    SshForwardBind {
        /// Node name.
        node: String,
        /// `host:port` on the node's side.
        target: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    // ---------------------------------------------------------------- PostgreSQL
    /// Connecting to a node's PostgreSQL failed.
    #[error("node {node}: cannot connect to PostgreSQL at {target}: {source}")]
    PgConnect {
        /// Node name.
        node: String,
        /// `host:port/dbname as user` (never a password).
        target: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Connecting timed out.
    #[error("node {node}: PostgreSQL at {target} did not answer within {after:?}")]
    PgTimeout {
        /// Node name.
        node: String,
        /// `host:port/dbname as user`.
        target: String,
        /// The timeout.
        after: Duration,
    },
    /// `postgres.via_ssh` is set but no SSH session was given.
    #[error("node {node}: {key} is true but no SSH connection to the node is open")]
    PgNeedsSsh {
        /// Node name.
        node: String,
        /// Key path of the setting.
        key: String,
    },
    /// A query failed.
    #[error("node {node}: {what} failed: {source}")]
    PgQuery {
        /// Node name.
        node: String,
        /// What the query was for.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
}

/// The family of an error: what part of the setup it concerns. Frontends map families to their
/// own vocabulary (Python exception classes, CLI exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ErrorFamily {
    /// The configuration file: unreadable, malformed or invalid.
    Config,
    /// A secret reference could not be resolved.
    Secret,
    /// SSH: keys, host keys, connection, authentication, commands, forwards.
    Ssh,
    /// PostgreSQL: connection or query.
    Postgres,
    /// Local files the tool writes.
    Io,
}

impl Error {
    /// The family of this error.
    pub fn family(&self) -> ErrorFamily {
        use Error::*;
        match self {
            ConfigRead { .. } | ConfigSyntax { .. } | ConfigInvalid { .. } | AlreadyExists { .. } => {
                ErrorFamily::Config
            }
            Secret { .. } => ErrorFamily::Secret,
            WriteFile { .. } => ErrorFamily::Io,
            SshKeyRead { .. }
            | SshKeyInvalid { .. }
            | SshKeyEncrypted { .. }
            | SshKeyPassphrase { .. }
            | SshPassphraseSecret { .. }
            | SshConnect { .. }
            | SshConnectTimeout { .. }
            | SshHandshake { .. }
            | SshHostKeyUnknown { .. }
            | SshHostKeyChanged { .. }
            | SshHostKeyRevoked { .. }
            | SshKnownHostsIo { .. }
            | SshAuthRejected { .. }
            | SshDisconnected { .. }
            | SshChannel { .. }
            | SshCommandTimeout { .. }
            | SshCommandFailed { .. }
            | SshForwardBind { .. } => ErrorFamily::Ssh,
            PgConnect { .. } | PgTimeout { .. } | PgNeedsSsh { .. } | PgQuery { .. } => {
                ErrorFamily::Postgres
            }
        }
    }
}
