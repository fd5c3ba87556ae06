//! Opening a connection to a node's PostgreSQL.

use tokio_postgres::NoTls;

use crate::config::NodeSpec;
use crate::ssh::SshSession;
use crate::{Error, Result};

/// An open connection to one node's PostgreSQL. The driver's connection task runs until the
/// value is dropped.
pub struct PgConn {
    node: String,
    client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl PgConn {
    /// The node this connection belongs to.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The driver's client, for queries.
    pub fn client(&self) -> &tokio_postgres::Client {
        &self.client
    }

    /// Maps a driver error of a query to this crate's error, naming node and purpose.
    pub fn query_error(&self, what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
        let node = self.node.clone();
        move |source| Error::PgQuery { node, what, source }
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects to `node`'s PostgreSQL. `key` is the node's key path in the configuration
/// (`nodes[0]`), used in error messages about its password reference. With `postgres.via_ssh`,
/// `ssh` must be the node's open SSH session.
pub async fn connect(key: &str, node: &NodeSpec, ssh: Option<&SshSession>) -> Result<PgConn> {
    let spec = &node.postgres;
    let password = spec.password.resolve().map_err(|source| Error::Secret {
        key: format!("{key}.postgres.password"),
        source,
    })?;
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&spec.host)
        .port(spec.port)
        .dbname(&spec.dbname)
        .user(&spec.user)
        .password(password.expose())
        .application_name("fspbx-ha")
        .connect_timeout(spec.connect_timeout);
    let target = spec.describe();
    let timeout_err = || Error::PgTimeout {
        node: node.name.clone(),
        target: target.clone(),
        after: spec.connect_timeout,
    };
    let connect_err = |source| Error::PgConnect {
        node: node.name.clone(),
        target: target.clone(),
        source,
    };

    let (client, task) = if spec.via_ssh {
        let ssh = ssh.ok_or_else(|| Error::PgNeedsSsh {
            node: node.name.clone(),
            key: format!("{key}.postgres.via_ssh"),
        })?;
        let stream = ssh.open_tcp(&spec.host, spec.port).await?;
        let (client, connection) =
            tokio::time::timeout(spec.connect_timeout, cfg.connect_raw(stream, NoTls))
                .await
                .map_err(|_| timeout_err())?
                .map_err(connect_err)?;
        (client, spawn_connection(node.name.clone(), connection))
    } else {
        let (client, connection) = tokio::time::timeout(spec.connect_timeout, cfg.connect(NoTls))
            .await
            .map_err(|_| timeout_err())?
            .map_err(connect_err)?;
        (client, spawn_connection(node.name.clone(), connection))
    };
    Ok(PgConn {
        node: node.name.clone(),
        client,
        task,
    })
}

fn spawn_connection<S, T>(
    node: String,
    connection: tokio_postgres::Connection<S, T>,
) -> tokio::task::JoinHandle<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(node = %node, error = %e, "PostgreSQL connection ended");
        }
    })
}
