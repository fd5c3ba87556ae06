//! TCP through the SSH connection: single `direct-tcpip` streams and local port forwards.
//!
//! This is how a node's PostgreSQL (5432) or Syncthing API (8384) is reached without exposing
//! those ports: the connection goes to the node's sshd and sshd connects to `host:port` from the
//! node's side.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use russh::{ChannelStream, client};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::Error;
use crate::ssh::SshSession;
use crate::ssh::session::Inner;

/// A TCP connection made by the node's sshd, carried inside the SSH connection
/// (`direct-tcpip` channel). Reading and writing it is reading and writing that TCP connection;
/// dropping it closes the channel. It keeps the SSH connection alive while it exists.
pub struct SshStream {
    stream: ChannelStream<client::Msg>,
    session: Arc<Inner>,
}

impl std::fmt::Debug for SshStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshStream")
            .field("node", &self.session.target.node)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A local listener on `127.0.0.1` whose every accepted connection is forwarded through the
/// SSH connection to a fixed `host:port` on the node's side (like `ssh -L`).
///
/// Dropping it stops listening and ends the forwarded connections.
#[derive(Debug)]
pub struct LocalForward {
    local_addr: SocketAddr,
    target: String,
    task: JoinHandle<()>,
}

impl LocalForward {
    /// Where to connect locally, e.g. `127.0.0.1:41234`.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `host:port` as seen from the node.
    pub fn remote_target(&self) -> &str {
        &self.target
    }
}

impl Drop for LocalForward {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every forwarded connection.
        self.task.abort();
    }
}

impl SshSession {
    /// Opens a TCP connection from the node to `host:port` (`host` as the node resolves it,
    /// usually `127.0.0.1`). The stream works with anything that takes
    /// `AsyncRead + AsyncWrite`, e.g. `tokio_postgres::Config::connect_raw(stream, NoTls)`.
    pub async fn open_tcp(&self, host: &str, port: u16) -> Result<SshStream, Error> {
        self.open_tcp_from(host, port, "127.0.0.1", 0).await
    }

    async fn open_tcp_from(
        &self,
        host: &str,
        port: u16,
        origin_host: &str,
        origin_port: u16,
    ) -> Result<SshStream, Error> {
        if self.is_closed() {
            return Err(self.disconnected());
        }
        let channel = self
            .inner
            .handle
            .channel_open_direct_tcpip(host, u32::from(port), origin_host, u32::from(origin_port))
            .await
            .map_err(|e| self.channel_error(format!("direct-tcpip to {host}:{port}"), e))?;
        tracing::debug!(node = %self.target().node, %host, port, "direct-tcpip channel open");
        Ok(SshStream {
            stream: channel.into_stream(),
            session: self.inner.clone(),
        })
    }

    /// Listens on `127.0.0.1:0` and forwards every accepted connection to `host:port` on the
    /// node's side, each over its own channel. See [`LocalForward::local_addr`].
    pub async fn forward_local(&self, host: &str, port: u16) -> Result<LocalForward, Error> {
        let target = format!("{host}:{port}");
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|source| Error::SshForwardBind {
                node: self.target().node.clone(),
                target: target.clone(),
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| Error::SshForwardBind {
                node: self.target().node.clone(),
                target: target.clone(),
                source,
            })?;
        let session = self.clone();
        let host = host.to_string();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, peer)) => {
                            let session = session.clone();
                            let host = host.clone();
                            connections.spawn(async move {
                                forward_one(&session, socket, peer, &host, port).await;
                            });
                        }
                        Err(e) => {
                            tracing::warn!(node = %session.target().node, error = %e,
                                "local forward: accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    },
                    // Reap finished connections so the set does not grow.
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        tracing::debug!(node = %self.target().node, %local_addr, %target, "local forward listening");
        Ok(LocalForward {
            local_addr,
            target,
            task,
        })
    }
}

async fn forward_one(
    session: &SshSession,
    mut socket: tokio::net::TcpStream,
    peer: SocketAddr,
    host: &str,
    port: u16,
) {
    let _ = socket.set_nodelay(true);
    let node = &session.target().node;
    let mut remote = match session
        .open_tcp_from(host, port, &peer.ip().to_string(), peer.port())
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(node = %node, error = %e, "local forward: cannot open channel");
            return;
        }
    };
    match tokio::io::copy_bidirectional(&mut socket, &mut remote).await {
        Ok((up, down)) => {
            tracing::debug!(node = %node, %peer, up, down, "local forward: connection done")
        }
        Err(e) => {
            tracing::debug!(node = %node, %peer, error = %e, "local forward: connection ended")
        }
    }
}
