//! `fspbx-ha dns …`: show, flip and verify the floating record; plan and apply the node records.
//! Everything is decided in `fspbx_ha_core::floating` (over `fspbx_ha_dns`); this file turns
//! flags into calls and renders the reports.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fspbx_ha_core::Error;
use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::floating::{
    DEFAULT_NODE_TTL, FlipOptions, FlipReport, Floating, FloatingReport, RecordsReport,
    VerifyReport, parse_expect,
};
use fspbx_ha_dns::plan::Action;
use fspbx_ha_dns::propagation::{Outcome, PropagationReport, ServerAnswer};
use serde::Serialize;

use super::args::parse_duration;

/// `fspbx-ha dns` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DnsCommand {
    /// What the provider holds for the floating record and the node records, which node is
    /// active, and what every authoritative server answers.
    Show,
    /// Point the floating record at a node (`--to a`, `--to b`, a node name, or an address),
    /// guarded by compare-and-swap: the write happens only if the record still holds what was
    /// read (or `--expect`). Then waits until every authoritative server answers it.
    Set {
        /// Target: a node name, `a`/`b` (first/second node), or an IP address.
        #[arg(long)]
        to: String,
        /// Only flip if the record currently holds these addresses (comma separated; `none` =
        /// must not exist). Default: whatever it holds when read.
        #[arg(long)]
        expect: Option<String>,
        /// TTL for the record (default: `floating.ttl`).
        #[arg(long)]
        ttl: Option<u32>,
        /// Do not wait for the authoritative servers.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the provider and the servers (`90s`, `2m`, or seconds).
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Wait until every authoritative server answers the floating record's value (or `--to`),
    /// and say when clients still holding the old answer will have moved (exit 1 on timeout).
    Verify {
        /// The value to wait for: node name, `a`/`b`, or IP address (default: what the
        /// provider holds).
        #[arg(long)]
        to: Option<String>,
        /// Give up after this long.
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Show what `dns apply` would create or correct: both node records and the floating
    /// record (nothing changes).
    Plan {
        /// TTL of the node records.
        #[arg(long, default_value_t = DEFAULT_NODE_TTL)]
        node_ttl: u32,
    },
    /// Create or correct the node records and the floating record (each write guarded by
    /// what the plan saw). A missing floating record is pointed at the first node.
    Apply {
        /// TTL of the node records.
        #[arg(long, default_value_t = DEFAULT_NODE_TTL)]
        node_ttl: u32,
    },
}

/// Runs a `dns` subcommand.
pub(crate) async fn run(
    cmd: DnsCommand,
    config: &ClusterConfig,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match run_inner(cmd, config, json).await {
        Ok(code) => Ok(code),
        Err(e) => Ok(fail(&e, json)),
    }
}

/// Renders an error with the library's classification as exit code: a lost compare-and-swap
/// is a reported failure (1), bad input, configuration or secret a usage error (2), the rest
/// could not complete (3).
fn fail(e: &Error, json: bool) -> ExitCode {
    let code = crate::exit::code(e.class());
    if json {
        let found = match e {
            Error::Dns { source } => match source.as_ref() {
                fspbx_ha_dns::Error::CasMismatch { found, .. } => serde_json::to_value(found).ok(),
                _ => None,
            },
            _ => None,
        };
        let body = serde_json::json!({"ok": false, "exit_code": code, "error": e.to_string(), "found": found});
        print_json(&body);
    } else {
        eprintln!("error: {e}");
    }
    ExitCode::from(code)
}

async fn run_inner(cmd: DnsCommand, config: &ClusterConfig, json: bool) -> Result<ExitCode, Error> {
    let floating = Floating::new(config)?;
    let f = &floating;
    let code = match cmd {
        DnsCommand::Show => {
            let report = f.show().await?;
            render(json, &report, print_show);
            ExitCode::SUCCESS
        }
        DnsCommand::Set {
            to,
            expect,
            ttl,
            no_wait,
            timeout,
        } => {
            let target = f.resolve_target(&to, "--to")?;
            let mut options = FlipOptions::default();
            if let Some(e) = expect {
                options.expect = Some(parse_expect(&e, "--expect")?);
            }
            options.ttl = ttl;
            options.timeout = timeout;
            options.wait_for_servers = !no_wait;
            let report = f.flip(&target, &options).await?;
            render(json, &report, print_flip);
            outcome(report.ok())
        }
        DnsCommand::Verify { to, timeout } => {
            let target = match to {
                Some(t) => Some(f.resolve_target(&t, "--to")?),
                None => None,
            };
            let report = f.verify(target.as_ref(), timeout).await?;
            render(json, &report, print_verify);
            outcome(report.ok)
        }
        DnsCommand::Plan { node_ttl } => {
            let report = f.plan(node_ttl).await?;
            render(json, &report, print_records);
            ExitCode::SUCCESS
        }
        DnsCommand::Apply { node_ttl } => {
            let report = f.apply(node_ttl).await?;
            render(json, &report, print_records);
            ExitCode::SUCCESS
        }
    };
    Ok(code)
}

fn outcome(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILED)
    }
}

fn render<T: Serialize>(json: bool, report: &T, human: fn(&T)) {
    if json {
        print_json(report);
    } else {
        human(report);
    }
}

fn print_show(report: &FloatingReport) {
    outln!(
        "floating record {} (zone {}, provider {})",
        report.name,
        report.zone,
        report.provider
    );
    if report.floating.is_empty() {
        outln!("  (absent)  — create it with `fspbx-ha dns apply`");
    }
    for r in &report.floating {
        outln!("  {r}");
    }
    match &report.active_node {
        Some(n) => outln!("  active node: {n}"),
        None if !report.floating.is_empty() => {
            outln!("  active node: none (points at neither node)")
        }
        None => {}
    }
    outln!("node records:");
    for r in &report.nodes {
        outln!("  {r}");
    }
    outln!("authoritative servers:");
    if let Some(e) = &report.servers_error {
        outln!("  not checked: {e}");
    }
    print_answers(&report.servers);
}

fn print_answers(answers: &[ServerAnswer]) {
    for a in answers {
        let what = match &a.outcome {
            Outcome::Records { ttl, values } => {
                format!(
                    "{} (ttl {ttl})",
                    values
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            Outcome::NoData => "no record of this type".into(),
            Outcome::NxDomain => "NXDOMAIN".into(),
            Outcome::NotAuthoritative => "not authoritative for the zone".into(),
            Outcome::Failed { detail } => format!("no answer: {detail}"),
        };
        let serial = a
            .soa_serial
            .map(|s| format!("serial {s}"))
            .unwrap_or_else(|| "serial ?".into());
        outln!(
            "  {:<24} {what}  [{serial}, {:.1?}]",
            a.server.to_string(),
            a.rtt
        );
    }
}

fn print_flip(report: &FlipReport) {
    for s in &report.steps {
        let from = s
            .from
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "no record".into());
        if s.changed() {
            outln!("{} {}: {from} -> {:?}", report.name, s.kind, s.to);
        } else {
            outln!("{} {}: already {from}", report.name, s.kind);
        }
    }
    print_propagation(&report.propagation);
}

fn print_verify(report: &VerifyReport) {
    print_propagation(&report.reports);
}

fn print_propagation(reports: &[PropagationReport]) {
    for r in reports {
        if r.verdict.all_moved() {
            outln!(
                "{} {}: all {} authoritative server(s) answer it after {:.1?}",
                r.name,
                r.kind,
                r.answers.len(),
                r.waited
            );
            match (r.clients_moved_by, r.old_ttl) {
                (Some(t), Some(ttl)) => outln!(
                    "  clients holding the old answer (TTL {ttl} s) move by {}",
                    utc_time(t)
                ),
                _ => outln!(
                    "  no old answer was seen: clients holding one keep it for at most the old \
                     record's TTL"
                ),
            }
        } else {
            outln!(
                "{} {}: after {:.1?}, {} server(s) still lag and {} did not answer:",
                r.name,
                r.kind,
                r.waited,
                r.verdict.lagging.len(),
                r.verdict.unreachable.len()
            );
        }
        print_answers(&r.answers);
    }
}

fn utc_time(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        day / 3600,
        (day % 3600) / 60,
        day % 60
    )
}

fn print_records(report: &RecordsReport) {
    for s in &report.steps {
        let d = &s.desired;
        let line = format!(
            "{} {} {:?} ttl {}  ({})",
            d.name, d.kind, d.values, d.ttl, d.why
        );
        match &s.action {
            Action::Unchanged => outln!("  ok      {line}"),
            Action::Create => outln!("  create  {line}"),
            Action::Update { from } => outln!("  update  {line}  (now {from})"),
        }
    }
    let todo = report.pending();
    if report.applied {
        outln!("{} change(s) applied", report.changes);
    } else if todo > 0 {
        outln!("{todo} change(s) planned: run `fspbx-ha dns apply`");
    } else {
        outln!("nothing to change");
    }
}

fn print_json<T: Serialize>(v: &T) {
    outln!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
