//! `fspbx-ha replication …`: plan, apply, status, verify and teardown of PostgreSQL logical
//! replication both ways. Everything is decided in `fspbx_ha_core::replication`; this file
//! parses flags and renders results.

use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use fspbx_ha_core::replication::{
    self, ApplyObserver, CopyProgress, Intent, Pair, ReplicationPlan, Step, StepOutcome,
    StepResult, Verdict,
};

/// Consent flags shared by `plan` and `apply`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct IntentArgs {
    /// Allow restarting PostgreSQL on a node when a setting (wal_level, …) needs it.
    #[arg(long)]
    allow_restart: bool,
    /// Allow destroying data on node B (truncate its tables, or replace its schema with node
    /// A's) before the initial copy.
    #[arg(long)]
    destructive: bool,
}

impl IntentArgs {
    fn intent(&self) -> Intent {
        let mut i = Intent::default();
        i.allow_restart = self.allow_restart;
        i.destructive = self.destructive;
        i
    }
}

/// `fspbx-ha replication` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ReplicationCommand {
    /// Show what `apply` would do, step by step (nothing changes).
    Plan(IntentArgs),
    /// Set replication up both ways; steps already done are skipped, so a re-run resumes.
    Apply(IntentArgs),
    /// Health of both directions with end-to-end heartbeat lag (exit 1 unless healthy).
    Status,
    /// Compare every table on both nodes: row count and a digest of all rows (exit 1 if any
    /// differs).
    Verify,
    /// Remove subscriptions, their slots, publications and the heartbeat. Without --yes only
    /// shows the steps.
    Teardown {
        /// Really do it.
        #[arg(long)]
        yes: bool,
    },
    /// Stuck subscriptions: an apply worker failing in a loop, with the error, table, key, LSN
    /// and both versions of the conflicting row (exit 1 when any).
    Conflicts,
    /// Remedy a stuck subscription: skip the failing transaction, re-sync one table, or
    /// replace the subscriber's conflicting row. Without --yes only shows the plan.
    Resolve(super::replication_conflicts::ResolveArgs),
    /// Serial and identity columns and the sequence strategy (exit 1 when not compliant);
    /// --apply [--yes] interleaves them.
    Sequences(super::replication_schema::SequencesArgs),
    /// Schema drift between the nodes and tables a subscription lacks (exit 1 if any).
    Drift,
    /// ALTER SUBSCRIPTION … REFRESH PUBLICATION on both nodes (dry run without --yes).
    Refresh(super::replication_schema::RefreshArgs),
}

pub(crate) async fn run(
    cmd: ReplicationCommand,
    config_path: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let mut pair = Pair::connect(&config).await?;
    match cmd {
        ReplicationCommand::Conflicts => super::replication_conflicts::list(&pair, json).await,
        ReplicationCommand::Resolve(args) => {
            super::replication_conflicts::resolve(&pair, &args, json).await
        }
        ReplicationCommand::Sequences(args) => {
            super::replication_schema::sequences(&pair, args, json).await
        }
        ReplicationCommand::Drift => super::replication_schema::drift(&pair, json).await,
        ReplicationCommand::Refresh(args) => {
            super::replication_schema::refresh(&pair, args, json).await
        }
        ReplicationCommand::Plan(args) => {
            let plan = pair.plan(&args.intent()).await?;
            print_plan(&plan, json)?;
            Ok(ExitCode::SUCCESS)
        }
        ReplicationCommand::Apply(args) => {
            let plan = pair.plan(&args.intent()).await?;
            if !json {
                eprint!("{}", plan.render());
            }
            let progress = Progress::new(json);
            let report = replication::apply(&mut pair, &plan, &progress).await?;
            if json {
                crate::output::json(&serde_json::json!({ "plan": plan, "report": report }))?;
            } else {
                outln!(
                    "applied: {} step(s) run, {} already done, {:.1} s",
                    report.executed(),
                    report.steps.len() - report.executed(),
                    report.elapsed_s
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ReplicationCommand::Status => {
            let st = replication::status(&pair).await?;
            if json {
                crate::output::json(&st)?;
            } else {
                out!("{}", st.render());
            }
            Ok(if st.verdict == Verdict::Healthy {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(crate::exit::FAILED)
            })
        }
        ReplicationCommand::Verify => {
            let v = replication::verify(&pair).await?;
            if json {
                crate::output::json(&v)?;
            } else {
                out!("{}", v.render());
            }
            Ok(if v.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(crate::exit::FAILED)
            })
        }
        ReplicationCommand::Teardown { yes } => {
            let plan = pair.teardown_plan().await?;
            if !yes {
                print_plan(&plan, json)?;
                if !json && !plan.is_empty() {
                    outln!(
                        "\ndry run: nothing changed; run again with --yes to remove replication"
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            let progress = Progress::new(json);
            let report = replication::apply(&mut pair, &plan, &progress).await?;
            if json {
                crate::output::json(&serde_json::json!({ "plan": plan, "report": report }))?;
            } else {
                outln!("teardown: {} step(s) run", report.executed());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_plan(plan: &ReplicationPlan, json: bool) -> anyhow::Result<()> {
    if json {
        crate::output::json(plan)
    } else {
        out!("{}", plan.render());
        Ok(())
    }
}

/// Step lines and a copy progress line on stderr (nothing with --json).
struct Progress {
    quiet: bool,
    tty: bool,
    last_line: Mutex<Option<Instant>>,
}

impl Progress {
    fn new(json: bool) -> Progress {
        Progress {
            quiet: json,
            tty: std::io::stderr().is_terminal(),
            last_line: Mutex::new(None),
        }
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

impl ApplyObserver for Progress {
    fn step_started(&self, step: &Step, index: usize, total: usize) {
        if !self.quiet {
            eprintln!("[{}/{}] {} on {} …", index + 1, total, step.id, step.node);
        }
    }

    fn step_finished(&self, _step: &Step, outcome: &StepOutcome) {
        if self.quiet {
            return;
        }
        if self.tty {
            eprintln!();
        }
        let what = match outcome.result {
            StepResult::AlreadyDone => "already done",
            StepResult::Executed => "done",
        };
        eprintln!("      {what} ({:.2} s)", outcome.elapsed_s);
    }

    fn copy_progress(&self, p: &CopyProgress) {
        if self.quiet {
            return;
        }
        let line = format!(
            "      copy: {}/{} tables, {}/{} rows, {}/{}, {:.0} rows/s, ETA {}",
            p.tables_done,
            p.tables_total,
            p.rows_copied,
            p.rows_total,
            mb(p.bytes_copied),
            mb(p.bytes_total),
            p.rows_per_s,
            p.eta_s.map_or("?".to_string(), |s| format!("{s:.0} s"))
        );
        if self.tty {
            eprint!("\r{line}\x1b[K");
            let _ = std::io::stderr().flush();
        } else {
            // Not a terminal: a line every 2 seconds at most.
            let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|t| t.elapsed().as_secs() >= 2) || p.tables_done == p.tables_total {
                eprintln!("{line}");
                *last = Some(Instant::now());
            }
        }
    }
}
