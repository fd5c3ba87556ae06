//! `fspbx-ha failover {watch,status,switchover}`: the failover controller.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::failover::{self, Controller, NodeId};
use fspbx_ha_core::floating::{Target, dns_nodes};

use super::args::parse_duration;

/// `failover` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum FailoverCommand {
    /// Run the controller until SIGINT/SIGTERM: probe both nodes every `policy.interval`, flip
    /// the floating record when the active node is down, fence it, audit every decision.
    Watch(WatchArgs),
    /// The last decisions from the audit log, the active node and the controller's /health
    /// (exit 1 when a configured controller is not healthy).
    Status(StatusArgs),
    /// Planned move of the floating record to a node (its health and the preconditions are
    /// checked first; refused = exit 1).
    Switchover(SwitchoverArgs),
}

/// Arguments of `failover watch`.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Serve /metrics and /health here (overrides `failover.metrics_listen`).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Append the audit log here (overrides `failover.audit_log`).
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Stop after this long (`30`, `90s`, `10m`; default: run until SIGINT/SIGTERM).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    run_for: Option<Duration>,
}

/// Arguments of `failover status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// How many audit records to show.
    #[arg(long, short = 'n', default_value_t = 20)]
    last: usize,
}

/// Arguments of `failover switchover`.
#[derive(Debug, Args)]
pub(crate) struct SwitchoverArgs {
    /// The node to make active: `a`, `b` or a node name.
    #[arg(long)]
    to: String,
    /// Measure and show every step (replication, catch-up, sequences, flip) without changing
    /// anything.
    #[arg(long)]
    dry_run: bool,
    /// After the flip, run `failover.fence_commands` on the node switched away from.
    #[arg(long)]
    fence: bool,
}

pub(crate) async fn run(
    command: FailoverCommand,
    config: ClusterConfig,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match command {
        FailoverCommand::Watch(args) => watch(args, config, json).await,
        FailoverCommand::Status(args) => status(args, &config, json).await,
        FailoverCommand::Switchover(args) => switchover(args, config, json).await,
    }
}

/// Completes on SIGINT or SIGTERM, or after `run_for`.
async fn shutdown_signal(run_for: Option<Duration>) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let timer = async {
        match run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
        () = timer => {}
    }
}

async fn watch(args: WatchArgs, mut config: ClusterConfig, json: bool) -> anyhow::Result<ExitCode> {
    if let Some(addr) = args.metrics_listen {
        config.failover.metrics_listen = Some(addr);
    }
    if let Some(path) = args.audit_log {
        config.failover.audit_log = path;
    }
    let run_for = args.run_for;
    let controller = Controller::new(config).await?;
    eprintln!(
        "watching {} (audit log {}{}); stop with Ctrl-C",
        controller
            .status()
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(" + "),
        controller.audit_path().display(),
        controller
            .metrics_addr()
            .map(|a| format!(", metrics http://{a}/metrics"))
            .unwrap_or_default()
    );
    let status = controller.run(shutdown_signal(run_for)).await?;
    if json {
        crate::output::json(&status)?;
    } else {
        outln!(
            "stopped after {} rounds: active node {}, {} flip(s), {} failed, {} fence(s)",
            status.rounds,
            status.active.as_deref().unwrap_or("unknown"),
            status.flips_ok,
            status.flips_failed,
            status.fences
        );
        if let Some(alert) = &status.last_alert {
            outln!("last alert: {alert}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(args: StatusArgs, config: &ClusterConfig, json: bool) -> anyhow::Result<ExitCode> {
    let report = failover::status_report(config, args.last).await?;
    if json {
        crate::output::json(&serde_json::json!({ "ok": report.ok(), "report": report }))?;
    } else {
        outln!(
            "floating record: {}",
            match (&report.active_node, &report.record_error) {
                (Some(n), _) => format!("node {n}"),
                (None, Some(e)) => format!("unknown ({e})"),
                (None, None) => "neither node".to_owned(),
            }
        );
        match &report.controller {
            Some(c) => outln!(
                "controller at {}: {} ({})",
                c.addr,
                if c.healthy { "healthy" } else { "NOT HEALTHY" },
                c.detail
            ),
            None => outln!("controller: no failover.metrics_listen configured"),
        }
        for (what, samples) in [
            ("registrations", &report.registrations),
            ("calls", &report.calls),
        ] {
            if samples.is_empty() {
                continue;
            }
            outln!("{what} since the last flip:");
            for r in samples {
                let count = match (r.count, &r.error) {
                    (Some(n), _) => n.to_string(),
                    (None, e) => format!("? ({})", e.as_deref().unwrap_or("not counted")),
                };
                outln!("  node {} +{:.1}s: {count}", r.node, r.seconds_since_flip);
            }
        }
        outln!(
            "last {} of the audit log {}:",
            report.recent.len(),
            report.audit_log.display()
        );
        for r in &report.recent {
            outln!(
                "  {} {:<8} {:<13} {}",
                humantime::format_rfc3339_millis(r.at),
                r.level,
                r.event,
                r.message
            );
        }
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILED)
    })
}

async fn switchover(
    args: SwitchoverArgs,
    config: ClusterConfig,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let target = Target::resolve(&dns_nodes(&config)?, &args.to, "to")?;
    let to = match target.node.as_deref() {
        Some(n) if Some(n) == config.nodes.first().map(|x| x.name.as_str()) => NodeId::A,
        Some(_) => NodeId::B,
        None => anyhow::bail!(
            "--to {:?}: name a node (a, b or its name), not addresses",
            args.to
        ),
    };
    let mut controller = Controller::new(config).await?;
    let report = controller.switchover(to, args.dry_run, args.fence).await?;
    if json {
        crate::output::json(&report)?;
    } else {
        match report.outcome {
            "already_active" => outln!("node {} is already active; nothing to do", report.to),
            "would_flip" => outln!(
                "dry run: would flip the floating record from node {} to node {} (health A {:?}, B {:?})",
                report.from.as_deref().unwrap_or("?"),
                report.to,
                report.health[0],
                report.health[1]
            ),
            _ => outln!(
                "switched over from node {} to node {} in {:.0} ms (flip {:.0} ms); every authoritative server answers it",
                report.from.as_deref().unwrap_or("?"),
                report.to,
                report.elapsed.as_secs_f64() * 1000.0,
                report
                    .flip
                    .as_ref()
                    .map_or(0.0, |f| f.elapsed.as_secs_f64() * 1000.0)
            ),
        }
        for st in &report.steps {
            outln!(
                "  {:<11} {:<9} {:>6.0} ms  {}",
                st.step,
                st.status.as_str(),
                st.elapsed.as_secs_f64() * 1000.0,
                st.detail
            );
        }
        if let Some(f) = &report.fence {
            outln!(
                "fenced node {}: {}",
                f.node,
                if f.ok() {
                    "every fence command succeeded".to_owned()
                } else {
                    f.error
                        .clone()
                        .unwrap_or_else(|| "a fence command failed".into())
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
