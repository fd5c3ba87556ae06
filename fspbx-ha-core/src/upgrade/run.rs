//! Running the plan: skip what the state file records done, run the rest in order, record each
//! step as it passes, stop at the first failure saying where and how to resume.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::checks::{self, Finding};
use super::plan::{CommandFailure, CommandKind, UpgradeAction, UpgradePlan, UpgradeStep};
use super::state::{DoneStep, FailedStep, Start, UpgradeState, decide, now};
use crate::config::{ClusterConfig, FIRST_ACTIVE};
use crate::replication::{Pair, Side};
use crate::{Error, Result};

/// How to run the upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeOptions {
    /// Show the plan and which steps are recorded done; connect to nothing but DNS (when the
    /// first node is the active one), run nothing, write nothing.
    pub dry_run: bool,
    /// The node to migrate first (a node name, `A`/`B`), overriding `upgrade.first`.
    pub first: Option<String>,
    /// Start over, ignoring (and replacing) what the state file records.
    pub restart: bool,
    /// The state file (see [`state_file_for`](super::state_file_for)).
    pub state_file: PathBuf,
}

impl UpgradeOptions {
    /// Run for real with the given state file, first node from the configuration.
    pub fn new(state_file: impl Into<PathBuf>) -> UpgradeOptions {
        UpgradeOptions {
            dry_run: false,
            first: None,
            restart: false,
            state_file: state_file.into(),
        }
    }
}

/// What happened to one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpgradeStepResult {
    /// The state file records it done (an earlier run): not run again.
    AlreadyDone,
    /// It ran and passed.
    Executed,
    /// Dry run: it would run.
    WouldRun,
    /// Not needed: the first node's migrate started no new batch, so the second node has no
    /// batch to forget and nothing to migrate (its schema is checked instead).
    NotNeeded,
}

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpgradeStepOutcome {
    /// Step id.
    pub id: String,
    /// Node name, or `both`.
    pub node: String,
    /// Skipped, executed, or (dry run) would run.
    pub result: UpgradeStepResult,
    /// Seconds spent.
    pub elapsed_s: f64,
    /// What a check found worth telling (caught-up time, new tables, heartbeat lag).
    pub note: Option<String>,
}

/// The outcome of a run (or dry run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpgradeReport {
    /// Nothing ran.
    pub dry_run: bool,
    /// The plan.
    pub plan: UpgradePlan,
    /// The state file.
    pub state_file: PathBuf,
    /// The run continued one an earlier run recorded.
    pub resumed: bool,
    /// Every step, in order.
    pub steps: Vec<UpgradeStepOutcome>,
    /// Tables the migration added (found by the post-check).
    pub new_tables: Vec<String>,
    /// Every step passed.
    pub finished: bool,
    /// Seconds for the whole run.
    pub elapsed_s: f64,
}

impl UpgradeReport {
    /// Steps run by this run.
    pub fn executed(&self) -> Vec<&str> {
        self.ids(UpgradeStepResult::Executed)
    }

    /// Steps skipped because an earlier run did them.
    pub fn skipped(&self) -> Vec<&str> {
        self.ids(UpgradeStepResult::AlreadyDone)
    }

    fn ids(&self, r: UpgradeStepResult) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| s.result == r)
            .map(|s| s.id.as_str())
            .collect()
    }

    /// A human summary (the plan itself for a dry run).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.dry_run {
            let done: Vec<String> = self.skipped().iter().map(|s| s.to_string()).collect();
            out.push_str(&self.plan.render(&done));
            let _ = writeln!(
                out,
                "\ndry run: nothing ran; {} step(s) would run{}; state file {}",
                self.ids(UpgradeStepResult::WouldRun).len(),
                if done.is_empty() {
                    String::new()
                } else {
                    format!(", {} recorded done would be skipped", done.len())
                },
                self.state_file.display()
            );
            return out;
        }
        let _ = writeln!(
            out,
            "upgrade {}: {} first, then {}; {} step(s) run, {} already done, {:.1} s",
            if self.finished { "finished" } else { "stopped" },
            self.plan.first,
            self.plan.second,
            self.executed().len(),
            self.skipped().len(),
            self.elapsed_s
        );
        for s in &self.steps {
            if let Some(n) = &s.note {
                let _ = writeln!(out, "  {}: {n}", s.id);
            }
        }
        out
    }
}

/// Receives events while the upgrade runs (the CLI draws them on stderr, Python forwards them
/// to a callback). Every method has an empty default.
pub trait UpgradeObserver: Send + Sync {
    /// The plan is made; `done` lists the steps recorded done (they are skipped).
    fn plan_ready(&self, plan: &UpgradePlan, done: &[String]) {
        let _ = (plan, done);
    }
    /// Step `index` (0-based) of `total` starts.
    fn step_started(&self, step: &UpgradeStep, index: usize, total: usize) {
        let _ = (step, index, total);
    }
    /// A long step is still running (about every two seconds): a command, or a check waiting
    /// for tables to sync.
    fn step_running(&self, step: &UpgradeStep, elapsed: Duration) {
        let _ = (step, elapsed);
    }
    /// A step ended (passed, or skipped as recorded done).
    fn step_finished(&self, step: &UpgradeStep, outcome: &UpgradeStepOutcome) {
        let _ = (step, outcome);
    }
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUpgradeProgress;

impl UpgradeObserver for NoUpgradeProgress {}

/// Where an upgrade stopped, as JSON (the CLI's `--json` error, Python's
/// `UpgradeError.failure`): the failed command's details, or the step, node, problems and fix
/// of a failed check or step. `None` for an error that names no step.
pub fn failure_details(e: &Error) -> Option<serde_json::Value> {
    match e {
        Error::UpgradeCommandFailed { failure } => serde_json::to_value(failure).ok(),
        Error::UpgradeCheckFailed {
            step,
            node,
            problems,
            fix,
        } => Some(serde_json::json!({
            "step": step, "node": node, "problems": problems, "fix": fix
        })),
        Error::UpgradeStep {
            step, node, fix, ..
        } => Some(serde_json::json!({ "step": step, "node": node, "fix": fix })),
        _ => None,
    }
}

fn side_of(config: &ClusterConfig, name: &str) -> Option<Side> {
    let n = config.node(name)?;
    let i = config.nodes.iter().position(|m| m.name == n.name)?;
    Some(if i == 0 { Side::A } else { Side::B })
}

/// The node migrated first: `--first`, else `upgrade.first` unless `active`, else the first
/// node of the unfinished run being resumed, else the node the floating record points at.
async fn resolve_first(
    config: &ClusterConfig,
    opts: &UpgradeOptions,
    state: Option<&UpgradeState>,
) -> Result<Side> {
    let explicit = match &opts.first {
        Some(f) => Some(("--first", f.as_str())),
        None if !config.upgrade.first.eq_ignore_ascii_case(FIRST_ACTIVE) => {
            Some(("upgrade.first", config.upgrade.first.as_str()))
        }
        None => None,
    };
    let names: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
    if let Some((key, value)) = explicit {
        return side_of(config, value).ok_or_else(|| Error::UpgradeFirstNode {
            key: key.into(),
            value: value.into(),
            reason: "no such node".into(),
            fix: format!("use one of {}", names.join(", ")),
        });
    }
    if let Some(s) = state.filter(|s| !opts.restart && !s.finished && !s.done.is_empty())
        && let Some(side) = side_of(config, &s.first)
    {
        return Ok(side);
    }
    let unknown = |reason: String| Error::UpgradeFirstNode {
        key: "upgrade.first".into(),
        value: FIRST_ACTIVE.into(),
        reason,
        fix: format!(
            "pass --first NODE or set upgrade.first to a node name ({})",
            names.join(", ")
        ),
    };
    let floating = crate::floating::Floating::new(config)
        .map_err(|e| unknown(format!("the floating record cannot be read: {e}")))?;
    let report = floating
        .show()
        .await
        .map_err(|e| unknown(format!("the floating record cannot be read: {e}")))?;
    let active = report.active_node.ok_or_else(|| {
        unknown(format!(
            "{} points at neither node (or is absent)",
            report.name
        ))
    })?;
    side_of(config, &active).ok_or_else(|| unknown(format!("active node {active} is unknown")))
}

/// The last lines of a command's output for an error: stderr, or stdout when stderr is empty.
fn tail_lines(stderr: &str, stdout: &str) -> String {
    const LINES: usize = 20;
    const CHARS: usize = 2000;
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(LINES);
    let mut out = lines[start..].join("\n");
    if out.chars().count() > CHARS {
        let skip = out.chars().count() - CHARS;
        out = format!("…{}", out.chars().skip(skip).collect::<String>());
    }
    out
}

fn resume_fix(plan: &UpgradePlan, step: &UpgradeStep, state: &UpgradeState, path: &Path) -> String {
    let before = plan
        .steps
        .iter()
        .take_while(|s| s.id != step.id)
        .filter(|s| state.is_done(&s.id))
        .count();
    format!(
        "fix the cause{}, then run the upgrade again: it resumes at {}; the {before} step(s) \
         before it are recorded done in {} and are not run again (--restart starts over)",
        step.side
            .map(|_| format!(" on node {}", step.node))
            .unwrap_or_default(),
        step.id,
        path.display()
    )
}

fn context(first: Side, state: &UpgradeState) -> checks::Context<'_> {
    checks::Context {
        first,
        tables_before: state.tables_before.as_deref(),
        batch_before: state.batch_before,
    }
}

/// delete-last-batch or migrate on the second node.
fn second_node_batch_step(step: &UpgradeStep, first: Side) -> bool {
    matches!(
        &step.action,
        UpgradeAction::Command {
            command: CommandKind::DeleteLastBatch | CommandKind::Migrate,
            ..
        }
    ) && step.side == Some(first.peer())
}

/// A second-node batch step that is not needed: its command does not run (forgetting the last
/// batch would undo a real one); its postcondition is still checked.
async fn skip_not_needed(
    pair: &Pair,
    step: &UpgradeStep,
    first: Side,
    state: &UpgradeState,
    observer: &dyn UpgradeObserver,
) -> Result<Finding> {
    let tick = |elapsed: Duration| observer.step_running(step, elapsed);
    let mut f = match step.postcondition {
        Some(check) => {
            let f = checks::run(pair, check, step.side, context(first, state), &tick).await?;
            if !f.problems.is_empty() {
                return Err(checks::failed(&step.id, &step.node, check, f.problems));
            }
            f
        }
        None => Finding::default(),
    };
    f.note = Some(format!(
        "not run: the first node's migrate started no new batch (upgrade.migrations_table = {:?})",
        pair.config().upgrade.migrations_table
    ));
    Ok(f)
}

/// Runs one step; `Ok` carries what a check found worth reporting.
async fn run_step(
    pair: &mut Pair,
    plan: &UpgradePlan,
    step: &UpgradeStep,
    first: Side,
    state: &UpgradeState,
    opts: &UpgradeOptions,
    observer: &dyn UpgradeObserver,
) -> Result<Finding> {
    let tick = |elapsed: Duration| observer.step_running(step, elapsed);
    let check_fails = |f: Finding, check| -> Result<Finding> {
        if f.problems.is_empty() {
            Ok(f)
        } else {
            Err(checks::failed(&step.id, &step.node, check, f.problems))
        }
    };
    match &step.action {
        UpgradeAction::Check { check } => {
            let f = checks::run(pair, *check, step.side, context(first, state), &tick).await?;
            check_fails(f, *check)
        }
        UpgradeAction::Command {
            run,
            timeout_s,
            sent,
            ..
        } => {
            let side = step.side.unwrap_or(first);
            let timeout = Duration::from_secs_f64(*timeout_s);
            let ssh = pair.ssh(side).await?.clone();
            let started = Instant::now();
            let exec = ssh.exec_with_timeout(sent, timeout);
            let mut exec = std::pin::pin!(exec);
            let mut ticker = tokio::time::interval(Duration::from_secs(2));
            ticker.tick().await;
            let result = loop {
                tokio::select! {
                    r = &mut exec => break r,
                    _ = ticker.tick() => tick(started.elapsed()),
                }
            };
            let (status, tail) = match result {
                Ok(out) if out.success() => (None, String::new()),
                Ok(out) => (
                    Some(out.status_text()),
                    tail_lines(&out.stderr_str(), &out.stdout_str()),
                ),
                Err(Error::SshCommandTimeout { after, .. }) => (
                    Some(format!(
                        "a timeout after {} s (the node stops it; raise the command's timeout in \
                         [upgrade] if it needs longer)",
                        after.as_secs()
                    )),
                    String::new(),
                ),
                Err(e) => return Err(e),
            };
            if let Some(status) = status {
                return Err(Error::UpgradeCommandFailed {
                    failure: Box::new(CommandFailure {
                        step: step.id.clone(),
                        node: step.node.clone(),
                        command: run.clone(),
                        status,
                        stderr_tail: tail,
                        state_file: opts.state_file.clone(),
                        fix: resume_fix(plan, step, state, &opts.state_file),
                    }),
                });
            }
            match step.postcondition {
                None => Ok(Finding::default()),
                Some(check) => {
                    let f =
                        checks::run(pair, check, step.side, context(first, state), &tick).await?;
                    check_fails(f, check)
                }
            }
        }
    }
}

/// Runs (or, with `dry_run`, shows) the multinode update procedure of `config`: pre-checks,
/// code on both nodes, migrate the first, delete-last-batch and migrate the second, refresh
/// subscriptions on both, post-checks. Steps recorded done in the state file by an earlier run
/// of the same plan are skipped, so after a failure a re-run resumes at the failed step.
///
/// Stops at the first failure with an error naming the step, the node, the command, its exit
/// status and the last lines of its stderr, and how to resume; the state file records it.
pub async fn upgrade(
    config: &ClusterConfig,
    opts: &UpgradeOptions,
    observer: &dyn UpgradeObserver,
) -> Result<UpgradeReport> {
    let started = Instant::now();
    let recorded = UpgradeState::load(&opts.state_file)?;
    let first = resolve_first(config, opts, recorded.as_ref()).await?;
    let plan = UpgradePlan::new(config, first);
    let start = decide(
        recorded.as_ref(),
        &plan.fingerprint,
        opts.restart,
        &opts.state_file,
    )?;
    let resumed = start == Start::Resume;
    let mut state = match (start, recorded) {
        (Start::Resume, Some(s)) => s,
        _ => UpgradeState::new(&plan.fingerprint, &plan.first),
    };
    let mut outcomes = Vec::with_capacity(plan.steps.len());
    if opts.dry_run {
        for s in &plan.steps {
            outcomes.push(UpgradeStepOutcome {
                id: s.id.clone(),
                node: s.node.clone(),
                result: if state.is_done(&s.id) {
                    UpgradeStepResult::AlreadyDone
                } else {
                    UpgradeStepResult::WouldRun
                },
                elapsed_s: 0.0,
                note: None,
            });
        }
        return Ok(UpgradeReport {
            dry_run: true,
            plan,
            state_file: opts.state_file.clone(),
            resumed,
            steps: outcomes,
            new_tables: Vec::new(),
            finished: false,
            elapsed_s: started.elapsed().as_secs_f64(),
        });
    }
    observer.plan_ready(&plan, &state.done_ids());
    let mut pair = Pair::connect(config).await?;
    state.save(&opts.state_file)?;
    let mut new_tables = Vec::new();
    let total = plan.steps.len();
    for (i, step) in plan.steps.iter().enumerate() {
        if state.is_done(&step.id) {
            let outcome = UpgradeStepOutcome {
                id: step.id.clone(),
                node: step.node.clone(),
                result: UpgradeStepResult::AlreadyDone,
                elapsed_s: 0.0,
                note: None,
            };
            observer.step_finished(step, &outcome);
            outcomes.push(outcome);
            continue;
        }
        observer.step_started(step, i, total);
        tracing::info!(step = %step.id, node = %step.node, "upgrade step");
        let t = Instant::now();
        let not_needed = state.no_new_batch && second_node_batch_step(step, first);
        let ran = if not_needed {
            skip_not_needed(&pair, step, first, &state, observer).await
        } else {
            run_step(&mut pair, &plan, step, first, &state, opts, observer).await
        };
        match ran {
            Ok(found) => {
                if let (Some(tables), None) = (&found.tables_first, &state.tables_before) {
                    state.tables_before = Some(tables.clone());
                    state.batch_before = found.batch_first;
                }
                if found.no_new_batch {
                    state.no_new_batch = true;
                }
                if !found.new_tables.is_empty() {
                    new_tables = found.new_tables.clone();
                }
                state.done.push(DoneStep {
                    id: step.id.clone(),
                    node: step.node.clone(),
                    finished_at: now(),
                    elapsed_s: t.elapsed().as_secs_f64(),
                });
                state.failed = None;
                state.save(&opts.state_file)?;
                let outcome = UpgradeStepOutcome {
                    id: step.id.clone(),
                    node: step.node.clone(),
                    result: if not_needed {
                        UpgradeStepResult::NotNeeded
                    } else {
                        UpgradeStepResult::Executed
                    },
                    elapsed_s: t.elapsed().as_secs_f64(),
                    note: found.note,
                };
                observer.step_finished(step, &outcome);
                outcomes.push(outcome);
            }
            Err(e) => {
                let e = match e {
                    e @ (Error::UpgradeCommandFailed { .. } | Error::UpgradeCheckFailed { .. }) => {
                        e
                    }
                    e => Error::UpgradeStep {
                        step: step.id.clone(),
                        node: step.node.clone(),
                        fix: resume_fix(&plan, step, &state, &opts.state_file),
                        source: Box::new(e),
                    },
                };
                let (status, stderr_tail) = match &e {
                    Error::UpgradeCommandFailed { failure } => {
                        (failure.status.clone(), failure.stderr_tail.clone())
                    }
                    Error::UpgradeCheckFailed { problems, .. } => {
                        (problems.join("; "), String::new())
                    }
                    Error::UpgradeStep { source, .. } => (source.to_string(), String::new()),
                    other => (other.to_string(), String::new()),
                };
                state.failed = Some(FailedStep {
                    id: step.id.clone(),
                    node: step.node.clone(),
                    command: step.command().map(str::to_string),
                    status,
                    stderr_tail,
                    at: now(),
                });
                state.save(&opts.state_file)?;
                tracing::warn!(step = %step.id, node = %step.node, "upgrade stopped");
                return Err(e);
            }
        }
    }
    state.finished = true;
    state.save(&opts.state_file)?;
    Ok(UpgradeReport {
        dry_run: false,
        plan,
        state_file: opts.state_file.clone(),
        resumed,
        steps: outcomes,
        new_tables,
        finished: true,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_keep_the_last_lines_of_stderr_or_stdout() {
        let err: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let t = tail_lines(&err, "ignored");
        assert!(t.starts_with("line 11\n") && t.ends_with("line 30"), "{t}");
        assert_eq!(tail_lines("  \n", "only stdout\n"), "only stdout");
        let long = "x".repeat(5000);
        assert_eq!(tail_lines(&long, "").chars().count(), 2001);
    }
}
