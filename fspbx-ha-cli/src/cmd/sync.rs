//! `fspbx-ha sync …`: pair the nodes' Syncthing daemons, show and wait for sync status.
//! Everything is decided in `fspbx_ha_core::files` and `fspbx_ha_sync`; this file parses flags
//! and renders results.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::args::parse_duration;

use fspbx_ha_core::files::{Files, FilesOptions, FilesStatus};
use fspbx_ha_sync::{ApplyEvent, SyncPlan, SyncStatus, WaitOptions};

/// `fspbx-ha sync` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SyncCommand {
    /// Show what `apply` would change on each daemon (nothing changes).
    Plan(SyncArgs),
    /// Pair the daemons: each device added to the other with its address, every folder shared
    /// both ways. A second run changes nothing.
    Apply(SyncArgs),
    /// Per folder and direction: completion, what is still needed, state, errors, connection,
    /// conflict copies (exit 1 unless everything is complete).
    Status(SyncArgs),
    /// Block until every folder is complete both ways (exit 1 on timeout), with progress.
    Wait {
        /// Give up after this long (`90s`, `10m`, `1h`, or seconds).
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
        /// Do not rescan the folders first (changes may then be seen only after the watcher
        /// delay).
        #[arg(long)]
        no_rescan: bool,
        #[command(flatten)]
        args: SyncArgs,
    },
}

/// Flags shared by the `sync` subcommands.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SyncArgs {
    /// Leave global/local discovery, relays and NAT traversal as they are (by default they are
    /// turned off: the nodes talk over a private link).
    #[arg(long)]
    no_hardening: bool,
}

impl SyncArgs {
    fn options(&self) -> FilesOptions {
        FilesOptions {
            hardening: !self.no_hardening,
            ..FilesOptions::default()
        }
    }
}

pub(crate) async fn run(
    cmd: SyncCommand,
    config_path: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let args = match &cmd {
        SyncCommand::Plan(a) | SyncCommand::Apply(a) | SyncCommand::Status(a) => a.clone(),
        SyncCommand::Wait { args, .. } => args.clone(),
    };
    let files = Files::connect(&config, args.options()).await?;
    match cmd {
        SyncCommand::Plan(_) => {
            let plan = files.plan().await?;
            if json {
                crate::output::json(&plan)?;
            } else {
                out!("{}", render_plan(&plan));
            }
            Ok(ExitCode::SUCCESS)
        }
        SyncCommand::Apply(_) => {
            let report = files
                .apply_with(|ev| {
                    if json {
                        return;
                    }
                    match ev {
                        ApplyEvent::Planned(p) if p.is_empty() => eprintln!("nothing to change"),
                        ApplyEvent::Planned(p) => eprintln!("{} step(s):", p.steps.len()),
                        ApplyEvent::Applied(s) => eprintln!("  done  {}", s.summary()),
                        ApplyEvent::Verifying => eprintln!("checking the folders on both nodes…"),
                        _ => {}
                    }
                })
                .await?;
            if json {
                crate::output::json(&report)?;
            } else {
                outln!(
                    "applied {} step(s) in {:.1?}; {} folder(s) paired",
                    report.applied.len(),
                    report.elapsed,
                    report.folders.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SyncCommand::Status(_) => {
            let status = files.status().await?;
            if json {
                crate::output::json(
                    &serde_json::json!({ "complete": status.sync.is_complete(), "status": status }),
                )?;
            } else {
                out!("{}", render_status(&status));
            }
            Ok(exit_for(&status.sync))
        }
        SyncCommand::Wait {
            timeout, no_rescan, ..
        } => {
            let mut options = WaitOptions::new(timeout);
            options.rescan = !no_rescan;
            let mut last = String::new();
            let result = files
                .wait(&options, |s| {
                    if json {
                        return;
                    }
                    let line = s.summary();
                    if line != last {
                        eprintln!("{line}");
                        last = line;
                    }
                })
                .await;
            match result {
                Ok(status) => {
                    if json {
                        crate::output::json(
                            &serde_json::json!({ "complete": true, "status": status }),
                        )?;
                    } else {
                        outln!("{}", status.summary());
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(fspbx_ha_core::Error::Sync { source: e, .. })
                    if matches!(*e, fspbx_ha_sync::Error::WaitTimeout { .. }) =>
                {
                    if json {
                        crate::output::json(
                            &serde_json::json!({ "complete": false, "error": e.to_string() }),
                        )?;
                    } else {
                        eprintln!("{e}");
                    }
                    Ok(ExitCode::from(crate::exit::FAILED))
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

fn exit_for(status: &SyncStatus) -> ExitCode {
    if status.is_complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILED)
    }
}

fn render_plan(plan: &SyncPlan) -> String {
    let mut out = String::new();
    for (i, id) in plan.device_ids.iter().enumerate() {
        out.push_str(&format!(
            "device {}: {id} at {}\n",
            ["A", "B"][i],
            plan.sync_addresses[i]
        ));
    }
    for f in &plan.folders {
        out.push_str(&format!(
            "folder {} = {} ({}, rescan {} s)\n",
            f.id, f.path, f.id_source, f.rescan_interval_s
        ));
    }
    if plan.is_empty() {
        out.push_str("nothing to change\n");
    }
    for (n, s) in plan.steps.iter().enumerate() {
        out.push_str(&format!(
            "{:>2}. {}\n      why: {}\n",
            n + 1,
            s.summary(),
            s.why
        ));
    }
    out
}

fn render_status(status: &FilesStatus) -> String {
    let mut out = String::new();
    for (n, c) in status.sync.nodes.iter().zip(&status.conflicts) {
        let conflicts = match (c.count, &c.error) {
            (Some(k), _) => format!("{k} conflict file(s)"),
            (None, Some(e)) => format!("conflicts not counted: {e}"),
            (None, None) => "conflicts not counted".into(),
        };
        match &n.error {
            Some(e) => out.push_str(&format!("node {}: ERROR {e}\n", n.node)),
            None => out.push_str(&format!(
                "node {}: {} {} peer {}; {conflicts}\n",
                n.node,
                n.device_id.as_deref().unwrap_or("?"),
                n.version.as_deref().unwrap_or("?"),
                if n.peer_connected {
                    format!("connected ({})", n.peer_address.as_deref().unwrap_or("?"))
                } else {
                    "NOT connected".into()
                },
            )),
        }
    }
    for f in &status.sync.folders {
        out.push_str(&format!("{} ({})\n", f.path, f.id));
        for d in &f.directions {
            out.push_str(&format!(
                "  {:<6} {}\n",
                if d.complete { "ok" } else { "behind" },
                d.describe()
            ));
        }
    }
    out.push_str(&format!("{}\n", status.sync.summary()));
    out
}
