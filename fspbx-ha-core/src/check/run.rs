//! Running the checks against the real nodes.

use std::time::Instant;

use super::rules::{evaluate_server, evaluate_tables};
use super::{CheckItem, CheckReport, CheckStatus};
use crate::config::{ClusterConfig, NodeSpec};
use crate::pg;
use crate::shell;
use crate::ssh::SshSession;

/// What to check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckOptions {
    /// Check SSH from each node to its peer (FS PBX's "both directions" prerequisite).
    pub peer_ssh: bool,
    /// Seconds the node-to-node `ssh` may take to connect.
    pub peer_connect_timeout_s: u32,
    /// Check the node records and the floating record at the authoritative servers.
    pub dns: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            peer_ssh: true,
            peer_connect_timeout_s: 5,
            dns: true,
        }
    }
}

/// Runs every check on both nodes and the DNS check (concurrently) and returns the report, node
/// A's items first, the DNS items last. Failures to reach a node are results, not errors: the
/// report says what failed and why.
pub async fn run(config: &ClusterConfig, options: &CheckOptions) -> CheckReport {
    let nodes = futures_util::future::join_all(
        (0..config.nodes.len()).map(|i| check_node(config, i, options)),
    );
    let dns = async {
        if options.dns {
            super::dns::check_dns(config).await
        } else {
            Vec::new()
        }
    };
    let (per_node, dns) = futures_util::future::join(nodes, dns).await;
    CheckReport {
        items: per_node.into_iter().flatten().chain(dns).collect(),
    }
}

async fn check_node(
    config: &ClusterConfig,
    index: usize,
    options: &CheckOptions,
) -> Vec<CheckItem> {
    let node = &config.nodes[index];
    let key = format!("nodes[{index}]");
    let name = node.name.as_str();
    let mut items = Vec::new();

    // SSH from here.
    let started = Instant::now();
    let ssh = match SshSession::connect(&node.ssh.target(name)).await {
        Ok(s) => {
            items.push(CheckItem::new(
                name,
                "ssh",
                CheckStatus::Pass,
                format!(
                    "{}@{}:{} (host key verified, {} ms)",
                    node.ssh.user,
                    node.ssh.host,
                    node.ssh.port,
                    started.elapsed().as_millis()
                ),
                "key authentication with a known host key",
                None,
            ));
            Some(s)
        }
        Err(e) => {
            items.push(CheckItem::new(
                name,
                "ssh",
                CheckStatus::Fail,
                e.to_string(),
                "key authentication with a known host key",
                Some(format!(
                    "check {key}.ssh (host, port, user, identity, known_hosts) and that sshd runs \
                     on the node"
                )),
            ));
            None
        }
    };

    // SSH from this node to its peer.
    if options.peer_ssh
        && let Some(peer) = config.peer_of(node)
    {
        items.push(match &ssh {
            Some(s) => check_peer_ssh(s, node, peer, options).await,
            None => skipped(name, "ssh.to_peer", "needs SSH to this node"),
        });
    }

    // PostgreSQL.
    if node.postgres.via_ssh && ssh.is_none() {
        for check in ["postgres.connect", "postgres.version", "postgres.wal_level"] {
            items.push(skipped(
                name,
                check,
                "postgres.via_ssh needs SSH to this node",
            ));
        }
    } else {
        let started = Instant::now();
        match pg::connect(&key, node, ssh.as_ref()).await {
            Err(e) => {
                items.push(CheckItem::new(
                    name,
                    "postgres.connect",
                    CheckStatus::Fail,
                    e.to_string(),
                    format!("a connection as {}", node.postgres.describe()),
                    Some(format!(
                        "check {key}.postgres (host, port, user, password reference) and \
                         pg_hba.conf on the node"
                    )),
                ));
                for check in ["postgres.version", "postgres.wal_level"] {
                    items.push(skipped(name, check, "needs a PostgreSQL connection"));
                }
            }
            Ok(conn) => {
                items.push(CheckItem::new(
                    name,
                    "postgres.connect",
                    CheckStatus::Pass,
                    format!(
                        "{} ({} ms)",
                        node.postgres.describe(),
                        started.elapsed().as_millis()
                    ),
                    format!("a connection as {}", node.postgres.describe()),
                    None,
                ));
                match pg::server_facts(&conn).await {
                    Ok(f) => items.extend(evaluate_server(name, &f)),
                    Err(e) => items.push(query_failed(name, "postgres.settings", &e)),
                }
                match pg::tables_without_identity(&conn).await {
                    Ok(t) => items.push(evaluate_tables(name, &t)),
                    Err(e) => items.push(query_failed(name, "postgres.replica_identity", &e)),
                }
            }
        }
    }
    if let Some(s) = ssh {
        s.close().await;
    }
    items
}

async fn check_peer_ssh(
    ssh: &SshSession,
    node: &NodeSpec,
    peer: &NodeSpec,
    options: &CheckOptions,
) -> CheckItem {
    let name = node.name.as_str();
    let Some(peer_addr) = peer.peer_address() else {
        return skipped(name, "ssh.to_peer", "the peer has no address");
    };
    let mut args: Vec<String> = vec![
        "ssh".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        format!("ConnectTimeout={}", options.peer_connect_timeout_s),
        "-p".into(),
        peer.ssh.port.to_string(),
    ];
    args.extend(node.ssh.peer_ssh_options.iter().cloned());
    args.push(format!("{}@{}", peer.ssh.user, peer_addr));
    args.push("true".into());
    let command = shell::join(&args);
    let expected = format!("`{command}` on {name} exits 0");
    match ssh.exec(&command).await {
        Ok(out) if out.exit_status == Some(0) => CheckItem::new(
            name,
            "ssh.to_peer",
            CheckStatus::Pass,
            format!(
                "{name} → {} ({}@{peer_addr}:{})",
                peer.name, peer.ssh.user, peer.ssh.port
            ),
            expected,
            None,
        ),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            CheckItem::new(
                name,
                "ssh.to_peer",
                CheckStatus::Fail,
                format!(
                    "{name} → {}: exit {} {}",
                    peer.name,
                    out.exit_status.map_or("?".to_string(), |c| c.to_string()),
                    last.trim()
                ),
                expected,
                Some(format!(
                    "on {name}: add its public key to {peer}'s authorized_keys and {peer}'s host \
                     key to its known_hosts (e.g. ssh-copy-id -p {port} {user}@{peer_addr}), or \
                     set peer_ssh_options",
                    peer = peer.name,
                    port = peer.ssh.port,
                    user = peer.ssh.user
                )),
            )
        }
        Err(e) => CheckItem::new(
            name,
            "ssh.to_peer",
            CheckStatus::Fail,
            e.to_string(),
            expected,
            Some("check that the ssh client is installed on the node".into()),
        ),
    }
}

fn skipped(node: &str, check: &str, why: &str) -> CheckItem {
    CheckItem::new(
        node,
        check,
        CheckStatus::Skip,
        format!("not run: {why}"),
        "-",
        None,
    )
}

fn query_failed(node: &str, check: &str, e: &crate::Error) -> CheckItem {
    CheckItem::new(
        node,
        check,
        CheckStatus::Fail,
        e.to_string(),
        "a readable catalog",
        Some("connect as a role that can read pg_settings and pg_class".into()),
    )
}
