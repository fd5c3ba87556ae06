//! The upgrade plan: a pure function of the configuration and the first node.

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::config::{ClusterConfig, UpgradeCommand};
use crate::replication::Side;
use crate::shell;

/// A check the tool runs itself (on both nodes' PostgreSQL), before, between or after the
/// commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Both subscriptions exist, are enabled with `origin = none`, both slots exist and a fresh
    /// heartbeat crosses each way (`replication::status` says healthy).
    ReplicationHealthy,
    /// No subscription is stuck or conflicting: apply workers run, every table is ready, no
    /// apply/sync errors or conflicts counted, both slots active.
    NoStuckSubscription,
    /// The two schemas have the same fingerprint (tables, columns and types, keys, replica
    /// identity).
    SchemaMatches,
    /// The second node has applied everything the first committed (a heartbeat written on the
    /// first node after the migration arrived on the second).
    SecondCaughtUp,
    /// The subscription on the step's node includes every table its peer publishes.
    SubscriptionCovers,
    /// Every published table is in the peer's subscription in state `r`, the tables the
    /// migration added included.
    TablesReady,
    /// A fresh heartbeat crosses both ways.
    HeartbeatFlows,
}

impl Check {
    /// What must be true, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Check::ReplicationHealthy => "replication is healthy both ways",
            Check::NoStuckSubscription => "no subscription is stuck or conflicting",
            Check::SchemaMatches => "both nodes have the same schema (no drift)",
            Check::SecondCaughtUp => "the second node has applied everything the first committed",
            Check::SubscriptionCovers => {
                "the node's subscription includes every table its peer publishes"
            }
            Check::TablesReady => {
                "every published table, new ones included, is in the peer's subscription in state r"
            }
            Check::HeartbeatFlows => "a fresh heartbeat crosses both ways",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Which configured command a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    /// `upgrade.update_code`.
    UpdateCode,
    /// `upgrade.migrate`.
    Migrate,
    /// `upgrade.delete_last_batch`.
    DeleteLastBatch,
    /// `upgrade.refresh_subscriptions`.
    RefreshSubscriptions,
}

impl CommandKind {
    /// The configuration key of the command, e.g. `upgrade.migrate`.
    pub fn key(self) -> &'static str {
        match self {
            CommandKind::UpdateCode => "upgrade.update_code",
            CommandKind::Migrate => "upgrade.migrate",
            CommandKind::DeleteLastBatch => "upgrade.delete_last_batch",
            CommandKind::RefreshSubscriptions => "upgrade.refresh_subscriptions",
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UpgradeAction {
    /// A check run by the tool.
    Check {
        /// Which.
        check: Check,
    },
    /// A command run on the step's node over SSH.
    Command {
        /// Which configured command.
        command: CommandKind,
        /// The command as configured.
        run: String,
        /// Its working directory on the node.
        workdir: String,
        /// How long it may run, in seconds.
        timeout_s: f64,
        /// The exact shell text sent to the node: `cd WORKDIR`, the `FSPBX_HA_*` variables,
        /// then the command.
        sent: String,
    },
}

/// One step of the upgrade.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpgradeStep {
    /// Stable id, e.g. `migrate.a`, `precheck.schema`.
    pub id: String,
    /// The node it runs on (`None`: a check of both nodes).
    pub side: Option<Side>,
    /// That node's name, or `both`.
    pub node: String,
    /// What it does.
    pub action: UpgradeAction,
    /// What must hold after a command (checked right after it ran; the step fails when it does
    /// not). Without one, a command is done when it exits with status 0, and the state file
    /// records that.
    pub postcondition: Option<Check>,
    /// Why the step is there.
    pub why: String,
}

impl UpgradeStep {
    /// The command's exact text as sent, for command steps.
    pub fn sent(&self) -> Option<&str> {
        match &self.action {
            UpgradeAction::Command { sent, .. } => Some(sent),
            UpgradeAction::Check { .. } => None,
        }
    }

    /// The command as configured, for command steps.
    pub fn command(&self) -> Option<&str> {
        match &self.action {
            UpgradeAction::Command { run, .. } => Some(run),
            UpgradeAction::Check { .. } => None,
        }
    }
}

/// The whole procedure, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpgradePlan {
    /// The node migrated first.
    pub first: String,
    /// The node migrated second.
    pub second: String,
    /// Every step.
    pub steps: Vec<UpgradeStep>,
    /// Digest of what the steps do (ids, nodes, commands, timeouts). A state file of another
    /// fingerprint belongs to another plan and is never resumed.
    pub fingerprint: String,
}

/// The shell text sent for `cmd` on `node` in step `step`: the working directory, the
/// `FSPBX_HA_NODE`, `FSPBX_HA_PEER` and `FSPBX_HA_STEP` variables (so one command can serve
/// both nodes), then the command in a group (it may span lines).
pub fn command_line(workdir: &str, node: &str, peer: &str, step: &str, run: &str) -> String {
    format!(
        "cd {} && export FSPBX_HA_NODE={} FSPBX_HA_PEER={} FSPBX_HA_STEP={} && {{\n{}\n}}",
        shell::quote(workdir),
        shell::quote(node),
        shell::quote(peer),
        shell::quote(step),
        run.trim_end()
    )
}

impl UpgradePlan {
    /// The plan migrating node `first` first (pure).
    pub fn new(config: &ClusterConfig, first: Side) -> UpgradePlan {
        let u = &config.upgrade;
        let name = |s: Side| {
            config
                .nodes
                .get(s.index())
                .map_or_else(|| format!("{s:?}"), |n| n.name.clone())
        };
        let (f, s) = (first, first.peer());
        let (fname, sname) = (name(f), name(s));
        let mut steps = Vec::new();
        let check = |id: &str, c: Check, why: &str| UpgradeStep {
            id: id.to_string(),
            side: None,
            node: "both".into(),
            action: UpgradeAction::Check { check: c },
            postcondition: None,
            why: why.to_string(),
        };
        let command = |kind: CommandKind,
                       cmd: &UpgradeCommand,
                       side: Side,
                       post: Option<Check>,
                       why: &str| {
            let node = name(side);
            let verb = match kind {
                CommandKind::UpdateCode => "code",
                CommandKind::Migrate => "migrate",
                CommandKind::DeleteLastBatch => "delete-last-batch",
                CommandKind::RefreshSubscriptions => "refresh",
            };
            let id = format!("{verb}.{node}");
            let timeout: Duration = cmd.timeout.unwrap_or(u.command_timeout);
            UpgradeStep {
                action: UpgradeAction::Command {
                    command: kind,
                    run: cmd.run.clone(),
                    workdir: u.workdir.clone(),
                    timeout_s: timeout.as_secs_f64(),
                    sent: command_line(&u.workdir, &node, &name(side.peer()), &id, &cmd.run),
                },
                id,
                side: Some(side),
                node,
                postcondition: post,
                why: why.to_string(),
            }
        };
        steps.push(check(
            "precheck.conflicts",
            Check::NoStuckSubscription,
            "a stuck or conflicting subscription would hide what the migration breaks",
        ));
        steps.push(check(
            "precheck.replication",
            Check::ReplicationHealthy,
            "DDL is not replicated: the procedure assumes both directions flow before it starts",
        ));
        steps.push(check(
            "precheck.schema",
            Check::SchemaMatches,
            "the migration must start from the same schema on both nodes",
        ));
        for side in [f, s] {
            steps.push(command(
                CommandKind::UpdateCode,
                &u.update_code,
                side,
                None,
                "both nodes get the new code before any migration",
            ));
        }
        steps.push(command(
            CommandKind::Migrate,
            &u.migrate,
            f,
            None,
            "the first node runs the new migrations; their batch record replicates to the second",
        ));
        steps.push(check(
            &format!("caughtup.{sname}"),
            Check::SecondCaughtUp,
            "the second node must hold the first's batch record before forgetting it",
        ));
        steps.push(command(
            CommandKind::DeleteLastBatch,
            &u.delete_last_batch,
            s,
            None,
            "the batch record came by replication but its DDL did not: forget it so the second \
             node runs the migrations itself",
        ));
        steps.push(command(
            CommandKind::Migrate,
            &u.migrate,
            s,
            Some(Check::SchemaMatches),
            "the second node runs the same migrations; afterwards both schemas match",
        ));
        for side in [f, s] {
            steps.push(command(
                CommandKind::RefreshSubscriptions,
                &u.refresh_subscriptions,
                side,
                Some(Check::SubscriptionCovers),
                "new tables join the node's subscription (REFRESH PUBLICATION)",
            ));
        }
        steps.push(check(
            "postcheck.schema",
            Check::SchemaMatches,
            "no drift after the upgrade",
        ));
        steps.push(check(
            "postcheck.tables",
            Check::TablesReady,
            "the tables the migration added replicate both ways",
        ));
        steps.push(check(
            "postcheck.heartbeat",
            Check::HeartbeatFlows,
            "changes flow both ways after the upgrade",
        ));
        let fingerprint = fingerprint(&fname, &sname, &steps);
        UpgradePlan {
            first: fname,
            second: sname,
            steps,
            fingerprint,
        }
    }

    /// The step with `id`.
    pub fn step(&self, id: &str) -> Option<&UpgradeStep> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// A human listing: every step, its node and its exact command or check. Steps in `done`
    /// are marked as recorded done (they will be skipped).
    pub fn render(&self, done: &[String]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "upgrade plan: {} first, then {} ({} steps)",
            self.first,
            self.second,
            self.steps.len()
        );
        let _ = writeln!(
            out,
            "(each command runs over SSH as `cd WORKDIR && export FSPBX_HA_NODE=<node> \
             FSPBX_HA_PEER=<peer> FSPBX_HA_STEP=<step> && {{ COMMAND }}`; --json shows the text)"
        );
        for (i, s) in self.steps.iter().enumerate() {
            let mark = if done.contains(&s.id) {
                "  [done, skipped]"
            } else {
                ""
            };
            let _ = writeln!(out, "{:>3}. {} on {}{mark}", i + 1, s.id, s.node);
            match &s.action {
                UpgradeAction::Check { check } => {
                    let _ = writeln!(out, "     check: {check}");
                }
                UpgradeAction::Command {
                    run,
                    workdir,
                    timeout_s,
                    ..
                } => {
                    let _ = writeln!(out, "     run:   {}", one_line(run));
                    let _ = writeln!(out, "     in:    {workdir} (timeout {timeout_s:.0} s)");
                    if let Some(p) = s.postcondition {
                        let _ = writeln!(out, "     then:  {p}");
                    }
                }
            }
        }
        out
    }
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ⏎ ")
}

fn fingerprint(first: &str, second: &str, steps: &[UpgradeStep]) -> String {
    let mut h = Sha256::new();
    h.update(format!("fspbx-ha upgrade v1\0{first}\0{second}\0"));
    for s in steps {
        h.update(format!("{}\0{}\0", s.id, s.node));
        if let UpgradeAction::Command {
            sent, timeout_s, ..
        } = &s.action
        {
            h.update(format!("{sent}\0{timeout_s}\0"));
        }
    }
    crate::replication::inventory::hex(&h.finalize())
}

/// A failed command of the upgrade: what [`Error::UpgradeCommandFailed`](crate::Error) carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandFailure {
    /// Step id, e.g. `migrate.b`.
    pub step: String,
    /// Node name.
    pub node: String,
    /// The command as configured (shell text).
    pub command: String,
    /// `exit status 1`, `signal KILL`, or the timeout.
    pub status: String,
    /// The last lines of its stderr (or stdout when stderr was empty).
    pub stderr_tail: String,
    /// The state file recording the run.
    pub state_file: std::path::PathBuf,
    /// How to resume.
    pub fix: String,
}

impl fmt::Display for CommandFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "upgrade step {} failed on node {}: `{}` ended with {}",
            self.step,
            self.node,
            one_line(&self.command),
            self.status
        )?;
        if !self.stderr_tail.is_empty() {
            write!(f, "; last lines of its output:\n{}\n", self.stderr_tail)?;
        }
        write!(f, "; {}", self.fix)
    }
}
