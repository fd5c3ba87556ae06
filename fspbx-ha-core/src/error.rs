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
        source: Box<russh::Error>,
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
        "node {node}: HOST KEY CHANGED for {host}:{port}: the server presents {fingerprint} \
         but {} line {line} records {recorded_fingerprint}; this may be an attack. \
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
        /// `SHA256:…` fingerprint of the presented key.
        fingerprint: String,
        /// `SHA256:…` fingerprint of the recorded key.
        recorded_fingerprint: String,
        /// The known_hosts file.
        known_hosts: PathBuf,
        /// Physical (1-based) line of the recorded key (same key type) in that file.
        line: u32,
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
        line: u32,
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
        source: Box<russh::Error>,
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
    #[error(
        "node {node}: cannot connect to PostgreSQL at {target}: {}",
        pg_reason(source)
    )]
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
    #[error("node {node}: {what} failed: {}", pg_reason(source))]
    PgQuery {
        /// Node name.
        node: String,
        /// What the query was for.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },

    // ---------------------------------------------------------------- replication
    /// A node's PostgreSQL is too old for bi-directional logical replication.
    #[error(
        "node {node}: step {step}: PostgreSQL {version} is too old: {feature} needs PostgreSQL \
         {needed} or newer; upgrade PostgreSQL on this node (FS PBX installs 17)"
    )]
    ReplicationServerTooOld {
        /// Node name.
        node: String,
        /// Step id.
        step: String,
        /// `server_version` of the node.
        version: String,
        /// What needs the newer version, e.g. `origin = none`.
        feature: String,
        /// The lowest major version that has it.
        needed: u32,
    },
    /// Server settings need a restart and no consent to restart was given.
    #[error(
        "node {node}: step {step}: {settings} needs a PostgreSQL restart; re-run with \
         --allow-restart to let fspbx-ha set it and restart the server, or set it in \
         postgresql.conf and restart PostgreSQL yourself"
    )]
    ReplicationRestartNeeded {
        /// Node name.
        node: String,
        /// Step id.
        step: String,
        /// The settings and their values, e.g. `wal_level = replica (needs logical)`.
        settings: String,
    },
    /// The node that receives the initial copy already holds rows.
    #[error(
        "node {node}: step {step}: {count} table(s) already hold rows ({tables}); the initial \
         copy from node {peer} would collide with them. Empty them, or re-run with \
         --destructive to truncate them"
    )]
    ReplicationTargetHasData {
        /// Node name.
        node: String,
        /// Step id.
        step: String,
        /// The peer the copy comes from.
        peer: String,
        /// How many tables hold rows.
        count: usize,
        /// The first few of them.
        tables: String,
    },
    /// The schemas of the two nodes differ and the receiving node is not empty.
    #[error(
        "node {node}: step {step}: its schema differs from node {peer}'s ({detail}); re-run \
         with --destructive to replace it with a copy of node {peer}'s schema, or align the \
         schemas first (FS PBX: the same code and `php artisan migrate` on both)"
    )]
    ReplicationSchemaDiffers {
        /// Node name.
        node: String,
        /// Step id.
        step: String,
        /// The node whose schema is the reference.
        peer: String,
        /// What differs, e.g. `3 tables only on a: public.jobs, …`.
        detail: String,
    },
    /// A publication or subscription with the configured name exists with other settings.
    #[error("node {node}: step {step}: {object} exists with other settings ({differences}); {fix}")]
    ReplicationObjectMismatch {
        /// Node name.
        node: String,
        /// Step id.
        step: String,
        /// e.g. `subscription "fspbx_subscription_a_to_b"`.
        object: String,
        /// What differs.
        differences: String,
        /// How to fix it.
        fix: String,
    },
    /// The configured database user is not a superuser.
    #[error(
        "node {node}: step {step}: connected as {user}, which is not a superuser; FOR ALL TABLES \
         publications and subscriptions need one: set {key} to a superuser (FS PBX: fusionpbx)"
    )]
    ReplicationNotSuperuser {
        /// Node name.
        node: String,
        /// Step id.
        step: String,
        /// The role connected as.
        user: String,
        /// Key path of the setting, e.g. `nodes[0].postgres.user`.
        key: String,
    },
    /// A dedicated replication role is configured without a password reference.
    #[error(
        "replication.password: the replication role {role:?} needs a password reference \
         (env:NAME or file:PATH); set replication.password, or set replication.role to the \
         nodes' postgres.user"
    )]
    ReplicationPasswordMissing {
        /// The role.
        role: String,
    },
    /// A step of a plan failed while it ran. The steps before it are done; `apply` again
    /// resumes here once the cause is fixed.
    #[error("node {node}: step {step} failed: {source}; {fix}")]
    ReplicationStep {
        /// Node name.
        node: String,
        /// Step id.
        step: String,
        /// How to fix it.
        fix: String,
        /// The underlying error (never carries a password).
        #[source]
        source: Box<Error>,
    },
    /// A step waited too long.
    #[error("node {node}: step {step}: {what} did not finish within {after:?}; {fix}")]
    ReplicationTimeout {
        /// Node name.
        node: String,
        /// Step id.
        step: String,
        /// What was awaited.
        what: String,
        /// The limit.
        after: Duration,
        /// What to do.
        fix: String,
    },
    /// A step ran without error but what it should have achieved is still not true.
    #[error("node {node}: step {step} ran but {postcondition} is still not true; {fix}")]
    ReplicationStepIncomplete {
        /// Node name.
        node: String,
        /// Step id.
        step: String,
        /// The postcondition, described.
        postcondition: String,
        /// What to do.
        fix: String,
    },
    /// `--subscription` names neither of the pair's subscriptions.
    #[error(
        "subscription {subscription:?} is not one of this pair's ({known}); pass \
         replication.subscription_a_to_b or replication.subscription_b_to_a"
    )]
    ConflictUnknownSubscription {
        /// The name given.
        subscription: String,
        /// The configured names.
        known: String,
    },
    /// A conflict remedy cannot be planned from what is known.
    #[error("node {node}: subscription {subscription}: cannot {remedy}: {reason}; {fix}")]
    ConflictRemedyUnavailable {
        /// The subscriber node.
        node: String,
        /// The subscription.
        subscription: String,
        /// The remedy, e.g. `skip the failing transaction`.
        remedy: String,
        /// What is missing.
        reason: String,
        /// What to do.
        fix: String,
    },

    /// A sequence operation needs another `replication.sequences.strategy`.
    #[error("{key} is {configured:?} but this needs {needed:?}; {fix}")]
    SequenceStrategy {
        /// `replication.sequences.strategy`.
        key: &'static str,
        /// The configured strategy.
        configured: &'static str,
        /// The strategy the operation needs.
        needed: &'static str,
        /// What to do.
        fix: String,
    },
    /// A sequence cannot be interleaved as it is (CYCLE, or no value of the node's class left).
    /// Nothing was changed on either node.
    #[error(
        "node {node}: sequence {sequence} cannot be interleaved: {reason}; nothing was changed"
    )]
    SequenceRefused {
        /// Node name.
        node: String,
        /// `"schema"."sequence"`.
        sequence: String,
        /// Why, with the fix.
        reason: String,
    },
    /// `ALTER SUBSCRIPTION … REFRESH PUBLICATION` would fail: the publisher publishes tables
    /// the subscriber does not have.
    #[error(
        "node {node}: subscription {subscription} cannot be refreshed: node {publisher} \
         publishes {tables} that node {node} does not have; create them on node {node} first \
         (FS PBX: run the same migrations on both nodes), then refresh"
    )]
    RefreshBlocked {
        /// The subscriber node.
        node: String,
        /// The subscription.
        subscription: String,
        /// The publisher node.
        publisher: String,
        /// The missing tables.
        tables: String,
    },

    // ---------------------------------------------------------------- Syncthing
    /// A Syncthing operation failed (the message names the node and, where it applies, the
    /// folder).
    #[error("{source}")]
    Sync {
        /// The node concerned, when the error concerns one.
        node: Option<String>,
        /// The Syncthing client's error (boxed: it is large).
        #[source]
        source: Box<fspbx_ha_sync::Error>,
    },
    /// A node has no `[nodes.syncthing]` section.
    #[error(
        "node {node}: {key} is not set; add url and api_key (and via_ssh) for the node's \
         Syncthing REST API"
    )]
    SyncNotConfigured {
        /// Node name.
        node: String,
        /// Key path, e.g. `nodes[1].syncthing`.
        key: String,
    },
    /// `syncthing.url` cannot be used for an SSH forward.
    #[error("node {node}: {key} = {url:?}: {reason}; expected e.g. http://127.0.0.1:8384")]
    SyncUrl {
        /// Node name.
        node: String,
        /// Key path, e.g. `nodes[0].syncthing.url`.
        key: String,
        /// The URL.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },

    // ---------------------------------------------------------------- DNS
    /// A DNS operation on the floating record or the node records failed (the message names
    /// the provider, the record and what to do).
    #[error(transparent)]
    Dns {
        /// The DNS library's error (boxed: it is large).
        source: Box<fspbx_ha_dns::Error>,
    },

    // ---------------------------------------------------------------- probes
    /// A probe's URL cannot be used.
    #[error(
        "node {node}: {key} = {url:?} is not a usable probe URL: {reason}; expected e.g. \
         https://pbx.example.com/"
    )]
    ProbeUrl {
        /// Node name.
        node: String,
        /// Key path, e.g. `nodes[0].probes.http.url`.
        key: String,
        /// The URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The HTTP client of a probe could not be built (TLS backend).
    #[error("node {node}: cannot build the HTTP client of a probe: {source}")]
    ProbeClient {
        /// Node name.
        node: String,
        /// The client builder's error (boxed: it is large).
        #[source]
        source: Box<reqwest::Error>,
    },
    /// A probe must go through SSH but no session to the node was given.
    #[error("node {node}: {key} is true but no SSH connection to the node is open for the probe")]
    ProbeNeedsSsh {
        /// Node name.
        node: String,
        /// Key path of the setting, e.g. `nodes[0].syncthing.via_ssh`.
        key: String,
    },

    // ---------------------------------------------------------------- failover
    /// The failover controller cannot use a local resource (its audit log, its metrics port).
    #[error("failover controller: cannot {action} {target}: {source}; check {key}")]
    FailoverIo {
        /// What it tried (`bind the metrics listener on`, `read the audit log`).
        action: &'static str,
        /// The address or path.
        target: String,
        /// The configuration key that names it, e.g. `failover.metrics_listen`.
        key: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The policy refused a switchover (the target is not healthy, a precondition is unmet, a
    /// flip is already in progress); nothing changed.
    #[error("switchover to node {to} refused: {reason}")]
    SwitchoverRefused {
        /// The requested target node.
        to: String,
        /// Why, as the policy said it.
        reason: String,
    },

    // ---------------------------------------------------------------- upgrade
    /// A command of `fspbx-ha upgrade` failed on a node. The steps before it are recorded done
    /// in the state file; running the upgrade again resumes at this step.
    #[error("{failure}")]
    UpgradeCommandFailed {
        /// Step, node, command, exit status, last lines of stderr, how to resume (boxed: it is
        /// large).
        failure: Box<crate::upgrade::CommandFailure>,
    },
    /// A check of `fspbx-ha upgrade` (before, between or after the commands) did not pass.
    #[error("upgrade step {step} ({node}): {}; {fix}", problems.join("; "))]
    UpgradeCheckFailed {
        /// Step id, e.g. `precheck.replication`.
        step: String,
        /// The node checked, or `both`.
        node: String,
        /// What is wrong, one entry per finding.
        problems: Vec<String>,
        /// What to do.
        fix: String,
    },
    /// The state file records an unfinished run of a different plan (other commands, other
    /// first node, other nodes).
    #[error(
        "{}: it records an unfinished upgrade of a different plan (first node {recorded_first}, \
         {done} step(s) done); finish it with the configuration it was started with, or pass \
         --restart to start over",
        path.display()
    )]
    UpgradeStateMismatch {
        /// The state file.
        path: PathBuf,
        /// The first node of the recorded run.
        recorded_first: String,
        /// Steps the recorded run finished.
        done: usize,
    },
    /// The state file cannot be read, parsed or written.
    #[error("upgrade state file {}: {reason}; {fix}", path.display())]
    UpgradeState {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
        /// What to do.
        fix: String,
    },
    /// A step of `fspbx-ha upgrade` could not run (SSH or PostgreSQL unreachable, a query
    /// failed). The state file records where it stopped; running again resumes there.
    #[error("upgrade step {step} on {node}: {source}; {fix}")]
    UpgradeStep {
        /// Step id.
        step: String,
        /// Node name, or `both`.
        node: String,
        /// How to resume.
        fix: String,
        /// The underlying error.
        #[source]
        source: Box<Error>,
    },
    /// The first node of the upgrade cannot be told.
    #[error("{key} = {value:?}: {reason}; {fix}")]
    UpgradeFirstNode {
        /// `upgrade.first` or `--first`.
        key: String,
        /// The value given.
        value: String,
        /// Why it cannot be used.
        reason: String,
        /// What to do.
        fix: String,
    },
}

impl From<fspbx_ha_sync::Error> for Error {
    fn from(source: fspbx_ha_sync::Error) -> Self {
        Error::Sync {
            node: source.node().map(str::to_owned),
            source: Box::new(source),
        }
    }
}

impl From<fspbx_ha_dns::Error> for Error {
    fn from(source: fspbx_ha_dns::Error) -> Self {
        Error::Dns {
            source: Box::new(source),
        }
    }
}

/// A driver error with its causes: tokio-postgres shows only `db error` for a server error;
/// the server's message (`ERROR: …`, DETAIL, HINT) is its source.
pub(crate) fn pg_reason(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string().replace('\n', "; "));
        cause = c.source();
    }
    text
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
    /// Replication planning or a replication step: refusals and failed steps.
    Replication,
    /// Syncthing: the REST API, pairing, folder problems, sync not complete in time.
    Sync,
    /// Health probes: a probe that cannot be set up.
    Probe,
    /// DNS: the floating record's provider or the authoritative servers.
    Dns,
    /// The failover controller: its local resources, or a refused switchover.
    Failover,
    /// `fspbx-ha upgrade`: a failed command or check, its state file, the first node.
    Upgrade,
}

/// How a frontend reports an error to its caller (the CLI's exit code: 1 refused, 2 usage,
/// 3 runtime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ErrorClass {
    /// The operation ran and was refused by its guard: a lost compare-and-swap (the record was
    /// not what was expected; nothing changed).
    Refused,
    /// Bad input, configuration or secret reference: fix the call or the file.
    Usage,
    /// Could not complete (network, server, provider).
    Runtime,
}

impl Error {
    /// The family of this error.
    pub fn family(&self) -> ErrorFamily {
        use Error::*;
        match self {
            ConfigRead { .. }
            | ConfigSyntax { .. }
            | ConfigInvalid { .. }
            | AlreadyExists { .. } => ErrorFamily::Config,
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
            ReplicationPasswordMissing { .. } | SequenceStrategy { .. } => ErrorFamily::Config,
            ReplicationServerTooOld { .. }
            | ReplicationRestartNeeded { .. }
            | ReplicationTargetHasData { .. }
            | ReplicationSchemaDiffers { .. }
            | ReplicationObjectMismatch { .. }
            | ReplicationNotSuperuser { .. }
            | ReplicationStep { .. }
            | ReplicationTimeout { .. }
            | ReplicationStepIncomplete { .. }
            | SequenceRefused { .. }
            | RefreshBlocked { .. }
            | ConflictRemedyUnavailable { .. } => ErrorFamily::Replication,
            ConflictUnknownSubscription { .. } => ErrorFamily::Config,
            SyncNotConfigured { .. } | SyncUrl { .. } => ErrorFamily::Config,
            Sync { .. } => ErrorFamily::Sync,
            ProbeUrl { .. } | ProbeNeedsSsh { .. } => ErrorFamily::Config,
            ProbeClient { .. } => ErrorFamily::Probe,
            Dns { .. } => ErrorFamily::Dns,
            FailoverIo { .. } => ErrorFamily::Io,
            SwitchoverRefused { .. } => ErrorFamily::Failover,
            UpgradeFirstNode { .. } => ErrorFamily::Config,
            UpgradeCommandFailed { .. }
            | UpgradeCheckFailed { .. }
            | UpgradeStateMismatch { .. }
            | UpgradeStep { .. }
            | UpgradeState { .. } => ErrorFamily::Upgrade,
        }
    }

    /// How a frontend reports this error: a lost compare-and-swap, a refused switchover and a
    /// failed upgrade check are [`ErrorClass::Refused`]; configuration, secrets, bad DNS input
    /// and an upgrade state file of another plan are [`ErrorClass::Usage`]; the rest
    /// [`ErrorClass::Runtime`].
    pub fn class(&self) -> ErrorClass {
        use fspbx_ha_dns::Error as D;
        match self {
            Error::Dns { source } => match source.as_ref() {
                D::CasMismatch { .. } => ErrorClass::Refused,
                D::InvalidInput { .. }
                | D::NameNotInZone { .. }
                | D::ValueKindMismatch { .. }
                | D::Secret { .. } => ErrorClass::Usage,
                _ => ErrorClass::Runtime,
            },
            Error::SwitchoverRefused { .. } | Error::UpgradeCheckFailed { .. } => {
                ErrorClass::Refused
            }
            Error::UpgradeStateMismatch { .. } => ErrorClass::Usage,
            // Refused by their guard before anything changed.
            Error::SequenceRefused { .. } | Error::RefreshBlocked { .. } => ErrorClass::Refused,
            e => match e.family() {
                ErrorFamily::Config | ErrorFamily::Secret => ErrorClass::Usage,
                _ => ErrorClass::Runtime,
            },
        }
    }
}
