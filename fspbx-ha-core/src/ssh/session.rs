//! One authenticated SSH connection to a node, shared by many channels.

use std::borrow::Cow;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use russh::client;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};

use crate::Error;
use crate::ssh::known_hosts::{self, HostKeyVerdict, KnownHosts};
use crate::ssh::{SshTarget, identity, retry};

/// An authenticated SSH connection to one node.
///
/// Cheap to clone (an `Arc`): all clones share one TCP connection, and every
/// [`exec`](SshSession::exec), [`open_tcp`](SshSession::open_tcp) or forwarded connection opens
/// its own channel on it. The connection closes when the last clone (and the last stream or
/// forward opened from it) is dropped, or on [`close`](SshSession::close).
#[derive(Clone)]
pub struct SshSession {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) target: SshTarget,
    pub(crate) handle: client::Handle<HostKeyCheck>,
    host_key: Arc<OnceLock<String>>,
}

impl std::fmt::Debug for SshSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshSession")
            .field("node", &self.inner.target.node)
            .field("addr", &self.inner.target.display_addr())
            .field("closed", &self.inner.handle.is_closed())
            .finish()
    }
}

/// Why one connection attempt failed.
enum AttemptError {
    /// Worth another attempt (TCP refused/reset, timeout).
    Transient(std::io::Error),
    /// Never retried (host key, authentication, protocol).
    Fatal(Error),
}

impl SshSession {
    /// Connects to `target`, verifies its host key against `target.known_hosts` and logs in
    /// with `target.identity`.
    ///
    /// TCP failures and timeouts are retried up to `target.connect_attempts` times with
    /// exponential backoff; host-key and authentication failures are returned at once.
    pub async fn connect(target: &SshTarget) -> Result<SshSession, Error> {
        let started = Instant::now();
        let key = identity::load_identity(target).await?;
        let attempts = target.connect_attempts.max(1);
        let mut last_io: Option<std::io::Error> = None;
        for attempt in 1..=attempts {
            let host_key = Arc::new(OnceLock::new());
            let once = tokio::time::timeout(
                target.connect_timeout,
                connect_once(target, key.clone(), host_key.clone()),
            )
            .await;
            match once {
                Ok(Ok(handle)) => {
                    tracing::debug!(
                        node = %target.node,
                        addr = %target.display_addr(),
                        attempt,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "SSH connected"
                    );
                    return Ok(SshSession {
                        inner: Arc::new(Inner {
                            target: target.clone(),
                            handle,
                            host_key,
                        }),
                    });
                }
                Ok(Err(AttemptError::Fatal(e))) => return Err(e),
                Ok(Err(AttemptError::Transient(e))) => {
                    tracing::debug!(node = %target.node, attempt, error = %e, "SSH connect failed");
                    last_io = Some(e);
                }
                Err(_elapsed) => {
                    tracing::debug!(node = %target.node, attempt, "SSH connect timed out");
                    last_io = None;
                }
            }
            if attempt < attempts {
                tokio::time::sleep(retry::backoff_delay(attempt, rand::random::<f64>())).await;
            }
        }
        Err(match last_io {
            Some(source) => Error::SshConnect {
                node: target.node.clone(),
                host: target.host.clone(),
                port: target.port,
                attempts,
                source,
            },
            None => Error::SshConnectTimeout {
                node: target.node.clone(),
                host: target.host.clone(),
                port: target.port,
                after: target.connect_timeout,
                attempts,
            },
        })
    }

    /// The target this session was opened for.
    pub fn target(&self) -> &SshTarget {
        &self.inner.target
    }

    /// `SHA256:…` fingerprint of the host key that was verified for this connection.
    pub fn host_key_fingerprint(&self) -> Option<&str> {
        self.inner.host_key.get().map(String::as_str)
    }

    /// Whether the connection is gone (closed by either side, or keepalive gave up).
    pub fn is_closed(&self) -> bool {
        self.inner.handle.is_closed()
    }

    /// Closes the connection for every clone of this session. Open channels end.
    pub async fn close(&self) {
        if let Err(e) = self
            .inner
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await
        {
            tracing::debug!(node = %self.inner.target.node, error = %e, "SSH disconnect");
        }
    }

    /// The error for "this connection is gone".
    pub(crate) fn disconnected(&self) -> Error {
        let t = &self.inner.target;
        Error::SshDisconnected {
            node: t.node.clone(),
            host: t.host.clone(),
            port: t.port,
        }
    }

    /// Maps a channel-level russh error; a dead connection becomes [`Error::SshDisconnected`].
    pub(crate) fn channel_error(&self, what: impl Into<String>, source: russh::Error) -> Error {
        if self.is_closed() || matches!(source, russh::Error::SendError) {
            return self.disconnected();
        }
        Error::SshChannel {
            node: self.inner.target.node.clone(),
            what: what.into(),
            source: Box::new(source),
        }
    }
}

/// One attempt: known_hosts, TCP, handshake with host-key check, public-key login.
async fn connect_once(
    target: &SshTarget,
    key: Arc<PrivateKey>,
    host_key: Arc<OnceLock<String>>,
) -> Result<client::Handle<HostKeyCheck>, AttemptError> {
    let known = read_known_hosts(target).map_err(AttemptError::Fatal)?;

    let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| {
            if retry::is_transient(e.kind()) {
                AttemptError::Transient(e)
            } else {
                AttemptError::Fatal(Error::SshConnect {
                    node: target.node.clone(),
                    host: target.host.clone(),
                    port: target.port,
                    attempts: 1,
                    source: e,
                })
            }
        })?;
    let _ = stream.set_nodelay(true);

    let preferred = russh::Preferred {
        key: Cow::Owned(known.preferred_algorithms(
            &target.host,
            target.port,
            &russh::Preferred::DEFAULT.key,
        )),
        ..russh::Preferred::DEFAULT
    };
    let keepalive = (!target.keepalive_interval.is_zero()).then_some(target.keepalive_interval);
    let config = Arc::new(client::Config {
        preferred,
        keepalive_interval: keepalive,
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    });
    let handler = HostKeyCheck {
        node: target.node.clone(),
        host: target.host.clone(),
        port: target.port,
        path: target.known_hosts.clone(),
        known,
        trust_on_first_use: target.trust_on_first_use,
        verified: host_key,
    };
    let mut handle = client::connect_stream(config, stream, handler)
        .await
        .map_err(|e| match e {
            HandlerError::Refused(e) => AttemptError::Fatal(*e),
            HandlerError::Russh(e) => handshake_error(target, e),
        })?;

    // RSA keys sign with rsa-sha2-512/256, never SHA-1: take what the server advertises
    // (server-sig-algs), else rsa-sha2-256 which every OpenSSH since 7.2 accepts.
    let hash = if key.algorithm().is_rsa() {
        let best = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| handshake_error(target, e))?;
        best.flatten().or(Some(HashAlg::Sha256))
    } else {
        None
    };
    let result = handle
        .authenticate_publickey(&target.user, PrivateKeyWithHashAlg::new(key, hash))
        .await
        .map_err(|e| handshake_error(target, e))?;
    match result {
        client::AuthResult::Success => Ok(handle),
        client::AuthResult::Failure {
            remaining_methods, ..
        } => {
            let remaining: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
            Err(AttemptError::Fatal(Error::SshAuthRejected {
                node: target.node.clone(),
                host: target.host.clone(),
                port: target.port,
                user: target.user.clone(),
                key_path: target.identity.clone(),
                remaining: if remaining.is_empty() {
                    "none".to_string()
                } else {
                    remaining.join(",")
                },
            }))
        }
    }
}

fn handshake_error(target: &SshTarget, e: russh::Error) -> AttemptError {
    match e {
        russh::Error::IO(io) if retry::is_transient(io.kind()) => AttemptError::Transient(io),
        // The server closed the connection before or during the handshake (sshd restarting,
        // MaxStartups): like a refused connection.
        russh::Error::Disconnect | russh::Error::HUP => {
            AttemptError::Transient(std::io::Error::new(
                ErrorKind::ConnectionReset,
                "closed during the SSH handshake",
            ))
        }
        other => AttemptError::Fatal(Error::SshHandshake {
            node: target.node.clone(),
            host: target.host.clone(),
            port: target.port,
            source: Box::new(other),
        }),
    }
}

/// Reads the known_hosts file; a missing file is an empty one.
fn read_known_hosts(target: &SshTarget) -> Result<KnownHosts, Error> {
    match std::fs::read_to_string(&target.known_hosts) {
        Ok(text) => {
            let kh = KnownHosts::parse(&text);
            if !kh.skipped_lines().is_empty() {
                tracing::debug!(
                    node = %target.node,
                    file = %target.known_hosts.display(),
                    lines = ?kh.skipped_lines(),
                    "known_hosts lines not understood, ignored"
                );
            }
            Ok(kh)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(KnownHosts::default()),
        Err(source) => Err(Error::SshKnownHostsIo {
            node: target.node.clone(),
            action: "read",
            path: target.known_hosts.clone(),
            source,
        }),
    }
}

/// Appends one line to a known_hosts file, adding a newline first if the file lacks one.
fn append_known_host(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)?;
    let mut needs_newline = false;
    if f.seek(SeekFrom::End(-1)).is_ok() {
        let mut last = [0u8; 1];
        f.read_exact(&mut last)?;
        needs_newline = last[0] != b'\n';
    }
    let mut text = String::with_capacity(line.len() + 2);
    if needs_newline {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Error type of the russh handler: a refusal we decided, or a protocol error.
#[derive(Debug)]
pub(crate) enum HandlerError {
    Refused(Box<Error>),
    Russh(russh::Error),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Russh(e)
    }
}

/// The russh client handler: strict known_hosts verification (with optional TOFU).
pub(crate) struct HostKeyCheck {
    node: String,
    host: String,
    port: u16,
    path: PathBuf,
    known: KnownHosts,
    trust_on_first_use: bool,
    verified: Arc<OnceLock<String>>,
}

impl HostKeyCheck {
    fn decide(&self, presented: &russh::keys::PublicKey) -> Result<(), Error> {
        let fingerprint = known_hosts::fingerprint(presented);
        let algorithm = presented.algorithm().as_str().to_string();
        match self.known.check(&self.host, self.port, presented) {
            HostKeyVerdict::Trusted { line } => {
                tracing::debug!(node = %self.node, %fingerprint, file = %self.path.display(), line,
                    "host key verified");
                Ok(())
            }
            HostKeyVerdict::Changed {
                line,
                recorded_fingerprint,
            } => Err(Error::SshHostKeyChanged {
                node: self.node.clone(),
                host: self.host.clone(),
                port: self.port,
                fingerprint,
                recorded_fingerprint,
                known_hosts: self.path.clone(),
                line: line_u32(line),
            }),
            HostKeyVerdict::Revoked { line } => Err(Error::SshHostKeyRevoked {
                node: self.node.clone(),
                host: self.host.clone(),
                port: self.port,
                fingerprint,
                known_hosts: self.path.clone(),
                line: line_u32(line),
            }),
            HostKeyVerdict::Unknown if self.trust_on_first_use => {
                let line = known_hosts::known_hosts_line(&self.host, self.port, presented);
                append_known_host(&self.path, &line).map_err(|source| Error::SshKnownHostsIo {
                    node: self.node.clone(),
                    action: "append to",
                    path: self.path.clone(),
                    source,
                })?;
                tracing::info!(node = %self.node, %fingerprint, file = %self.path.display(),
                    "trust on first use: recorded the host key");
                Ok(())
            }
            HostKeyVerdict::Unknown => Err(Error::SshHostKeyUnknown {
                node: self.node.clone(),
                host: self.host.clone(),
                port: self.port,
                algorithm,
                fingerprint,
                known_hosts: self.path.clone(),
            }),
        }
    }
}

fn line_u32(line: usize) -> u32 {
    u32::try_from(line).unwrap_or(u32::MAX)
}

impl client::Handler for HostKeyCheck {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = server_public_key.public_key();
        self.decide(&presented)
            .map_err(|e| HandlerError::Refused(Box::new(e)))?;
        let _ = self.verified.set(known_hosts::fingerprint(&presented));
        Ok(true)
    }
}

/// How long [`SshSession::connect`] waits in total at most, for a target: every attempt's
/// timeout plus the backoff between attempts (without jitter).
pub fn worst_case_connect_time(target: &SshTarget) -> Duration {
    let attempts = target.connect_attempts.max(1);
    let waits: Duration = (1..attempts).map(|a| retry::backoff_delay(a, 1.0)).sum();
    target.connect_timeout * attempts + waits
}
