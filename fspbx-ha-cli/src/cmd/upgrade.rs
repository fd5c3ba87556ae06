//! `fspbx-ha upgrade`: FS PBX's multinode update procedure, checked and resumable. Everything
//! is decided and run in `fspbx_ha_core::upgrade`; this file parses flags and renders results.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use fspbx_ha_core::Error as CoreError;
use fspbx_ha_core::upgrade::{
    self, UpgradeObserver, UpgradeOptions, UpgradePlan, UpgradeStep, UpgradeStepOutcome,
    UpgradeStepResult,
};

/// `fspbx-ha upgrade` flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct UpgradeArgs {
    /// Show every step with its node and exact command; run nothing, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Run it. Without --yes the plan is shown and nothing runs.
    #[arg(long)]
    yes: bool,
    /// The node to migrate first (default: upgrade.first, normally the active node).
    #[arg(long, value_name = "NODE")]
    first: Option<String>,
    /// Start over, ignoring what the state file records of an earlier run.
    #[arg(long)]
    restart: bool,
    /// The state file (default: upgrade.state_file, else upgrade-state.json next to the
    /// configuration file).
    #[arg(long, value_name = "PATH")]
    state_file: Option<PathBuf>,
}

pub(crate) async fn run(
    args: UpgradeArgs,
    config_path: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let state_file = args
        .state_file
        .clone()
        .unwrap_or_else(|| upgrade::state_file_for(&config, Some(config_path)));
    let dry_run = args.dry_run || !args.yes;
    let opts = UpgradeOptions {
        dry_run,
        first: args.first.clone(),
        restart: args.restart,
        state_file,
    };
    let result = upgrade::upgrade(&config, &opts, &Progress).await;
    let report = match result {
        Ok(r) => r,
        Err(e) if json => return Ok(json_error(&e)),
        Err(e) => return Err(e.into()),
    };
    if json {
        crate::output::json(&report)?;
    } else {
        out!("{}", report.render());
        if dry_run && !args.dry_run {
            outln!("not run: pass --yes to run the upgrade");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The error as JSON on stdout, with the failed command's details when a command failed.
fn json_error(e: &CoreError) -> ExitCode {
    let code = crate::exit::code(e.class());
    let body = serde_json::json!({
        "ok": false,
        "exit_code": code,
        "error": e.to_string(),
        "failed": upgrade::failure_details(e),
    });
    outln!(
        "{}",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    );
    ExitCode::from(code)
}

/// Step lines on stderr.
struct Progress;

impl UpgradeObserver for Progress {
    fn plan_ready(&self, plan: &UpgradePlan, done: &[String]) {
        if done.is_empty() {
            eprintln!(
                "upgrade: {} first, then {} ({} steps)",
                plan.first,
                plan.second,
                plan.steps.len()
            );
        } else {
            eprintln!(
                "upgrade: resuming ({} of {} steps recorded done): {} first, then {}",
                done.len(),
                plan.steps.len(),
                plan.first,
                plan.second
            );
        }
    }

    fn step_started(&self, step: &UpgradeStep, index: usize, total: usize) {
        match step.command() {
            Some(cmd) => eprintln!(
                "[{}/{total}] {} on {}: {}",
                index + 1,
                step.id,
                step.node,
                cmd.lines().next().unwrap_or_default()
            ),
            None => eprintln!("[{}/{total}] {} ({}) …", index + 1, step.id, step.node),
        }
    }

    fn step_running(&self, step: &UpgradeStep, elapsed: Duration) {
        eprintln!("      {} still running ({} s)", step.id, elapsed.as_secs());
    }

    fn step_finished(&self, step: &UpgradeStep, outcome: &UpgradeStepOutcome) {
        match outcome.result {
            UpgradeStepResult::AlreadyDone => {
                eprintln!("      {} on {}: recorded done, skipped", step.id, step.node)
            }
            _ => {
                eprintln!("      done ({:.2} s)", outcome.elapsed_s);
                if let Some(n) = &outcome.note {
                    eprintln!("      {n}");
                }
            }
        }
    }
}
