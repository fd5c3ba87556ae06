//! Fencing: stop the old active node's services over SSH (e.g. `systemctl stop freeswitch`)
//! so it cannot keep serving calls after the floating record moved away. The node may be dead
//! or hanging: everything is bounded by one timeout and failure is reported, never fatal.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::NodeSpec;
use crate::ssh::SshSession;

/// One fencing command's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FenceCommand {
    /// The command.
    pub command: String,
    /// It exited with status 0.
    pub ok: bool,
    /// Exit status or why it did not run to the end.
    pub status: String,
}

/// What fencing a node did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FenceReport {
    /// The node.
    pub node: String,
    /// An SSH session to it was opened.
    pub reachable: bool,
    /// Each command run, in order.
    pub commands: Vec<FenceCommand>,
    /// Why fencing stopped early (unreachable, timed out), if it did.
    pub error: Option<String>,
    /// Time taken.
    #[serde(with = "humantime_serde")]
    pub elapsed: Duration,
}

impl FenceReport {
    /// Every command ran and succeeded.
    pub fn ok(&self) -> bool {
        self.reachable && self.error.is_none() && self.commands.iter().all(|c| c.ok)
    }
}

/// Runs `commands` on `node` over SSH, one connection attempt, all within `timeout`.
pub async fn fence(node: &NodeSpec, commands: &[String], timeout: Duration) -> FenceReport {
    let started = Instant::now();
    let mut report = FenceReport {
        node: node.name.clone(),
        reachable: false,
        commands: vec![],
        error: None,
        elapsed: Duration::ZERO,
    };
    let run = async {
        let mut target = node.ssh.target(&node.name);
        target.connect_attempts = 1;
        target.connect_timeout = target.connect_timeout.min(timeout);
        let session = match SshSession::connect(&target).await {
            Ok(s) => s,
            Err(e) => {
                report.error = Some(format!("unreachable: {e}"));
                return;
            }
        };
        report.reachable = true;
        for cmd in commands {
            let left = timeout.saturating_sub(started.elapsed());
            match session.exec_with_timeout(cmd, left).await {
                Ok(out) => report.commands.push(FenceCommand {
                    command: cmd.clone(),
                    ok: out.success(),
                    status: out.status_text(),
                }),
                Err(e) => {
                    report.commands.push(FenceCommand {
                        command: cmd.clone(),
                        ok: false,
                        status: e.to_string(),
                    });
                }
            }
        }
        session.close().await;
    };
    if tokio::time::timeout(timeout, run).await.is_err() {
        report.error = Some(format!("fencing did not finish within {timeout:?}"));
    }
    report.elapsed = started.elapsed();
    report
}
