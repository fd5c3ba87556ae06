//! `fspbx-ha replication conflicts` and `fspbx-ha replication resolve`: stuck subscriptions,
//! their conflicts and the remedies. Everything is decided in
//! `fspbx_ha_core::replication::conflicts`; this file parses flags and renders results.

use std::process::ExitCode;

use fspbx_ha_core::replication::Pair;
use fspbx_ha_core::replication::conflicts::{self, ConflictOptions, Remedy, ResolveOptions};

/// Flags of `replication resolve`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("remedy").required(true).args(["skip", "resync", "fix_row"])))]
pub(crate) struct ResolveArgs {
    /// The stuck subscription (as `replication conflicts` names it).
    #[arg(long, value_name = "NAME")]
    subscription: String,
    /// Skip the failing remote transaction (`ALTER SUBSCRIPTION … SKIP`): its changes are not
    /// applied on the subscriber.
    #[arg(long)]
    skip: bool,
    /// Replace the subscriber's copy of TABLE (`schema.table`) with the publisher's.
    #[arg(long, value_name = "TABLE")]
    resync: Option<String>,
    /// Delete the subscriber's conflicting row (printed first) so the remote change applies.
    #[arg(long)]
    fix_row: bool,
    /// Really do it; without it the plan is printed and nothing changes.
    #[arg(long)]
    yes: bool,
}

impl ResolveArgs {
    fn remedy(&self) -> Remedy {
        match (&self.resync, self.fix_row) {
            (Some(table), _) => Remedy::Resync {
                table: table.clone(),
            },
            (None, true) => Remedy::FixRow,
            (None, false) => Remedy::Skip,
        }
    }
}

/// `replication conflicts`: exit 1 when a direction is stuck.
pub(crate) async fn list(pair: &Pair, json: bool) -> anyhow::Result<ExitCode> {
    let report = conflicts::conflicts(pair, &ConflictOptions::default()).await?;
    if json {
        crate::output::json(&report)?;
    } else {
        out!("{}", report.render());
    }
    Ok(if report.any() {
        ExitCode::from(crate::exit::FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `replication resolve`: the plan (dry run), or with `--yes` the remedy and its re-check
/// (exit 1 when the direction is still stuck afterwards).
pub(crate) async fn resolve(
    pair: &Pair,
    args: &ResolveArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let plan = conflicts::plan_resolution(
        pair,
        &args.subscription,
        &args.remedy(),
        &ConflictOptions::default(),
    )
    .await?;
    if !args.yes {
        if json {
            crate::output::json(&serde_json::json!({ "dry_run": true, "plan": plan }))?;
        } else {
            out!("{}", plan.render());
            outln!("\ndry run: nothing changed; run again with --yes to apply this remedy");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !json {
        eprint!("{}", plan.render());
    }
    let out = conflicts::resolve(pair, &plan, &ResolveOptions::default()).await?;
    if json {
        crate::output::json(&out)?;
    } else {
        if let Some(n) = out.rows_copied {
            outln!("copied {n} row(s) from {}", plan.publisher);
        }
        if out.resolved {
            outln!(
                "resolved: {} on {} applies again (heartbeat from {} arrived in {:.2} s)",
                plan.subscription,
                plan.node,
                plan.publisher,
                out.heartbeat_s.unwrap_or_default()
            );
        } else {
            outln!(
                "not resolved yet: {} on {} is {}",
                plan.subscription,
                plan.node,
                out.after.state.as_str()
            );
            let report = conflicts::ConflictReport {
                directions: vec![out.after.clone()],
            };
            out!("{}", report.render());
        }
    }
    Ok(if out.resolved {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILED)
    })
}
