//! `fspbx-ha dns …`: show, flip and verify the floating record; plan and apply the node records.
//! Everything is decided in `fspbx_ha_dns`; this file turns flags into calls and renders results.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_dns::plan::{self, Action, FlipStep, NodeRecord};
use fspbx_ha_dns::propagation::{Checker, Outcome, PropagationReport, ServerAnswer};
use fspbx_ha_dns::{DnsProvider, Error as DnsError, ProviderConfig, RecordKind, RecordSet};
use serde::Serialize;

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
        #[arg(long, default_value_t = 300)]
        node_ttl: u32,
    },
    /// Create or correct the node records and the floating record (each write guarded by
    /// what the plan saw). A missing floating record is pointed at the first node.
    Apply {
        /// TTL of the node records.
        #[arg(long, default_value_t = 300)]
        node_ttl: u32,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 2m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?}: unit must be s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}


/// Resolves `--to`: a node name, `a`/`b`, or addresses.
fn target(config: &ClusterConfig, to: &str) -> Result<(Option<String>, Vec<IpAddr>), DnsError> {
    let t = to.trim();
    for (i, n) in config.nodes.iter().enumerate() {
        let letter = if i == 0 { "a" } else { "b" };
        if n.name.eq_ignore_ascii_case(t)
            || t.eq_ignore_ascii_case(letter)
            || n.hostname.eq_ignore_ascii_case(t)
        {
            return Ok((Some(n.name.clone()), n.addresses.clone()));
        }
    }
    let ips = parse_ips(t, "--to")?;
    Ok((None, ips))
}

fn parse_ips(s: &str, field: &'static str) -> Result<Vec<IpAddr>, DnsError> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim()
                .parse::<IpAddr>()
                .map_err(|_| DnsError::InvalidInput {
                    field,
                    value: p.trim().to_string(),
                    reason: "give a node name (see `fspbx-ha config`), `a`, `b` or IP addresses"
                        .into(),
                })
        })
        .collect()
}

fn node_records(config: &ClusterConfig) -> Result<[NodeRecord<'_>; 2], DnsError> {
    match config.nodes.as_slice() {
        [a, b] => Ok([
            NodeRecord {
                node: &a.name,
                hostname: &a.hostname,
                addresses: &a.addresses,
            },
            NodeRecord {
                node: &b.name,
                hostname: &b.hostname,
                addresses: &b.addresses,
            },
        ]),
        other => Err(DnsError::InvalidInput {
            field: "nodes",
            value: other.len().to_string(),
            reason: "exactly two nodes are needed".into(),
        }),
    }
}

struct Ctx {
    provider: Box<dyn DnsProvider>,
    provider_cfg: ProviderConfig,
}

impl Ctx {
    fn new(config: &ClusterConfig) -> Result<Ctx, DnsError> {
        let provider_cfg = config.floating.provider.clone();
        let provider = provider_cfg.build(&config.floating.zone)?;
        Ok(Ctx {
            provider,
            provider_cfg,
        })
    }

    async fn checker(&self, config: &ClusterConfig) -> Result<Checker, DnsError> {
        Checker::for_zone(
            &config.floating.zone,
            &config.floating.nameservers,
            self.provider_cfg.primary_server()?,
        )
        .await
    }
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

/// Renders a DNS error with its exit code: a lost compare-and-swap is a reported failure (1),
/// bad input or configuration is a usage error (2), the rest could not complete (3).
fn fail(e: &DnsError, json: bool) -> ExitCode {
    let code = match e {
        DnsError::CasMismatch { .. } => crate::exit::FAILED,
        DnsError::InvalidInput { .. }
        | DnsError::NameNotInZone { .. }
        | DnsError::ValueKindMismatch { .. }
        | DnsError::Secret { .. } => crate::exit::USAGE,
        _ => crate::exit::RUNTIME,
    };
    if json {
        let found = match e {
            DnsError::CasMismatch { found, .. } => serde_json::to_value(found).ok(),
            _ => None,
        };
        let body = serde_json::json!({"ok": false, "exit_code": code, "error": e.to_string(), "found": found});
        println!(
            "{}",
            serde_json::to_string_pretty(&body).unwrap_or_default()
        );
    } else {
        eprintln!("error: {e}");
    }
    ExitCode::from(code)
}

async fn run_inner(
    cmd: DnsCommand,
    config: &ClusterConfig,
    json: bool,
) -> Result<ExitCode, DnsError> {
    let ctx = Ctx::new(config)?;
    match cmd {
        DnsCommand::Show => show(&ctx, config, json).await,
        DnsCommand::Set {
            to,
            expect,
            ttl,
            no_wait,
            timeout,
        } => {
            set(
                &ctx,
                config,
                json,
                &to,
                expect.as_deref(),
                ttl,
                no_wait,
                timeout,
            )
            .await
        }
        DnsCommand::Verify { to, timeout } => {
            verify(&ctx, config, json, to.as_deref(), timeout).await
        }
        DnsCommand::Plan { node_ttl } => plan_or_apply(&ctx, config, json, node_ttl, false).await,
        DnsCommand::Apply { node_ttl } => plan_or_apply(&ctx, config, json, node_ttl, true).await,
    }
}

#[derive(Serialize)]
struct ShowReport<'a> {
    zone: &'a str,
    name: &'a str,
    provider: &'static str,
    atomic_cas: bool,
    floating: Vec<RecordSet>,
    active_node: Option<String>,
    nodes: Vec<RecordSet>,
    servers: Vec<ServerAnswer>,
    servers_error: Option<String>,
}

async fn show(ctx: &Ctx, config: &ClusterConfig, json: bool) -> Result<ExitCode, DnsError> {
    let f = &config.floating;
    let p = ctx.provider.as_ref();
    let mut floating = vec![];
    for kind in [RecordKind::A, RecordKind::Aaaa] {
        floating.extend(p.get(&f.name, kind).await?);
    }
    let [a, b] = node_records(config)?;
    let values: Vec<IpAddr> = floating.iter().flat_map(|r| r.values.clone()).collect();
    let active_node = plan::active_node(&values, a.addresses, b.addresses)
        .map(|i| [a.node, b.node][i].to_string());
    let mut nodes = vec![];
    for n in [&a, &b] {
        for kind in [RecordKind::A, RecordKind::Aaaa] {
            nodes.extend(p.get(n.hostname, kind).await?);
        }
    }
    let (servers, servers_error) = match ctx.checker(config).await {
        Ok(c) => {
            let mut all = c.ask(&f.name, RecordKind::A).await?;
            if floating.iter().any(|r| r.kind == RecordKind::Aaaa) {
                all.extend(c.ask(&f.name, RecordKind::Aaaa).await?);
            }
            (all, None)
        }
        Err(e) => (vec![], Some(e.to_string())),
    };
    let report = ShowReport {
        zone: &f.zone,
        name: &f.name,
        provider: p.name(),
        atomic_cas: p.capabilities().atomic_cas,
        floating,
        active_node,
        nodes,
        servers,
        servers_error,
    };
    if json {
        print_json(&report);
    } else {
        println!(
            "floating record {} (zone {}, provider {})",
            report.name, report.zone, report.provider
        );
        if report.floating.is_empty() {
            println!("  (absent)  — create it with `fspbx-ha dns apply`");
        }
        for r in &report.floating {
            println!("  {r}");
        }
        match &report.active_node {
            Some(n) => println!("  active node: {n}"),
            None if !report.floating.is_empty() => {
                println!("  active node: none (points at neither node)")
            }
            None => {}
        }
        println!("node records:");
        for r in &report.nodes {
            println!("  {r}");
        }
        println!("authoritative servers:");
        if let Some(e) = &report.servers_error {
            println!("  not checked: {e}");
        }
        print_answers(&report.servers);
    }
    Ok(ExitCode::SUCCESS)
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
        println!(
            "  {:<24} {what}  [{serial}, {:.1?}]",
            a.server.to_string(),
            a.rtt
        );
    }
}

#[derive(Serialize)]
struct SetReport {
    name: String,
    target_node: Option<String>,
    to: Vec<IpAddr>,
    steps: Vec<FlipStep>,
    propagation: Vec<PropagationReport>,
    all_servers_answer: Option<bool>,
}

#[allow(clippy::too_many_arguments)]
async fn set(
    ctx: &Ctx,
    config: &ClusterConfig,
    json: bool,
    to: &str,
    expect: Option<&str>,
    ttl: Option<u32>,
    no_wait: bool,
    timeout: Duration,
) -> Result<ExitCode, DnsError> {
    let f = &config.floating;
    let (target_node, to_ips) = target(config, to)?;
    let expected = match expect {
        None => None,
        Some(e) if e.trim().eq_ignore_ascii_case("none") => Some(vec![]),
        Some(e) => Some(parse_ips(e, "--expect")?),
    };
    let p = ctx.provider.as_ref();
    let steps = plan::flip(
        p,
        &f.name,
        ttl.unwrap_or(f.ttl),
        &to_ips,
        expected.as_deref(),
    )
    .await?;
    for s in &steps {
        if let Some(r) = &s.receipt {
            p.wait_applied(r, timeout).await?;
        }
    }
    let mut propagation = vec![];
    if !no_wait {
        let checker = ctx.checker(config).await?;
        for s in steps.iter().filter(|s| s.changed() || !s.to.is_empty()) {
            let old_ttl = s.from.as_ref().map(|r| r.ttl);
            propagation.push(
                checker
                    .wait_for(
                        &f.name,
                        s.kind,
                        &s.to,
                        old_ttl,
                        timeout,
                        Duration::from_millis(200),
                    )
                    .await?,
            );
        }
    }
    let all = (!no_wait).then(|| propagation.iter().all(|r| r.verdict.all_moved()));
    let report = SetReport {
        name: f.name.clone(),
        target_node,
        to: to_ips,
        steps,
        propagation,
        all_servers_answer: all,
    };
    if json {
        print_json(&report);
    } else {
        for s in &report.steps {
            let from = s
                .from
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_else(|| "no record".into());
            if s.changed() {
                println!("{} {}: {from} -> {:?}", report.name, s.kind, s.to);
            } else {
                println!("{} {}: already {from}", report.name, s.kind);
            }
        }
        print_propagation(&report.propagation);
    }
    Ok(if all == Some(false) {
        ExitCode::from(crate::exit::FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_propagation(reports: &[PropagationReport]) {
    for r in reports {
        if r.verdict.all_moved() {
            println!(
                "{} {}: all {} authoritative server(s) answer it after {:.1?}",
                r.name,
                r.kind,
                r.answers.len(),
                r.waited
            );
            match (r.clients_moved_by, r.old_ttl) {
                (Some(t), Some(ttl)) => println!(
                    "  clients holding the old answer (TTL {ttl} s) move by {}",
                    utc_time(t)
                ),
                _ => println!(
                    "  no old answer was seen: clients holding one keep it for at most the old \
                     record's TTL"
                ),
            }
        } else {
            println!(
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

async fn verify(
    ctx: &Ctx,
    config: &ClusterConfig,
    json: bool,
    to: Option<&str>,
    timeout: Duration,
) -> Result<ExitCode, DnsError> {
    let f = &config.floating;
    let p = ctx.provider.as_ref();
    let mut wanted: Vec<(RecordKind, Vec<IpAddr>)> = vec![];
    match to {
        Some(t) => {
            let (_, ips) = target(config, t)?;
            for kind in [RecordKind::A, RecordKind::Aaaa] {
                let v: Vec<IpAddr> = ips.iter().copied().filter(|i| kind.fits(i)).collect();
                if !v.is_empty() {
                    wanted.push((kind, v));
                }
            }
        }
        None => {
            for kind in [RecordKind::A, RecordKind::Aaaa] {
                if let Some(r) = p.get(&f.name, kind).await? {
                    wanted.push((kind, r.values));
                }
            }
        }
    }
    if wanted.is_empty() {
        return Err(DnsError::InvalidInput {
            field: "floating.name",
            value: f.name.clone(),
            reason: "the provider holds no A or AAAA record for it: nothing to verify (run `fspbx-ha dns apply`)".into(),
        });
    }
    let checker = ctx.checker(config).await?;
    let mut reports = vec![];
    for (kind, values) in wanted {
        reports.push(
            checker
                .wait_for(
                    &f.name,
                    kind,
                    &values,
                    None,
                    timeout,
                    Duration::from_millis(200),
                )
                .await?,
        );
    }
    let ok = reports.iter().all(|r| r.verdict.all_moved());
    if json {
        print_json(&serde_json::json!({"ok": ok, "reports": reports}));
    } else {
        print_propagation(&reports);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILED)
    })
}

async fn plan_or_apply(
    ctx: &Ctx,
    config: &ClusterConfig,
    json: bool,
    node_ttl: u32,
    apply: bool,
) -> Result<ExitCode, DnsError> {
    let f = &config.floating;
    let p = ctx.provider.as_ref();
    let [a, b] = node_records(config)?;
    // Keep the floating record on the node it points at; a missing or foreign one goes to A.
    let mut floating_now = vec![];
    for kind in [RecordKind::A, RecordKind::Aaaa] {
        if let Some(r) = p.get(&f.name, kind).await? {
            floating_now.extend(r.values);
        }
    }
    let active = match plan::active_node(&floating_now, a.addresses, b.addresses) {
        Some(1) => &b,
        _ => &a,
    };
    let desired = plan::desired_records(&a, &b, &f.name, f.ttl, active, node_ttl);
    let current = plan::read_current(p, &desired).await?;
    let steps = plan::plan(&desired, &current);
    let receipts = if apply {
        plan::apply(p, &steps).await?
    } else {
        vec![]
    };
    if json {
        print_json(
            &serde_json::json!({"applied": apply, "steps": steps, "changes": receipts.len()}),
        );
    } else {
        for s in &steps {
            let d = &s.desired;
            let line = format!(
                "{} {} {:?} ttl {}  ({})",
                d.name, d.kind, d.values, d.ttl, d.why
            );
            match &s.action {
                Action::Unchanged => println!("  ok      {line}"),
                Action::Create => println!("  create  {line}"),
                Action::Update { from } => println!("  update  {line}  (now {from})"),
            }
        }
        let todo = steps
            .iter()
            .filter(|s| s.action != Action::Unchanged)
            .count();
        if apply {
            println!("{} change(s) applied", receipts.len());
        } else if todo > 0 {
            println!("{todo} change(s) planned: run `fspbx-ha dns apply`");
        } else {
            println!("nothing to change");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json<T: Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
