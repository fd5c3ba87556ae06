//! `fspbx-ha-lab`: start, inspect and stop the two-node lab (demo and manual testing).
//!
//! Exit codes: 0 success (also "already running" / "nothing to stop"), 1 failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use fspbx_ha_lab::lab::{self, Lab, LabOptions, LabStatus, LabTopology};
use fspbx_ha_lab::postgres::PgFlavor;

/// `println!` into the output buffer.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "fspbx-ha-lab",
    version,
    about = "Start and stop the fspbx-ha two-node lab"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start node A (127.0.0.2) and node B (127.0.0.3) and leave them running.
    Up {
        /// Lab directory (under /tmp: the PostgreSQL user must reach it).
        #[arg(long, env = "FSPBX_HA_LAB_DIR")]
        dir: PathBuf,
        /// PostgreSQL major version on both nodes: 17 or 18 (15 = Debian's, too old).
        #[arg(long, default_value = "17")]
        pg: PgFlavor,
        /// A different PostgreSQL on node B (e.g. 15, to see `check` refuse it).
        #[arg(long)]
        pg_b: Option<PgFlavor>,
        /// wal_level of node A's server (default logical; `replica` to see `check` fail).
        #[arg(long)]
        wal_level_a: Option<String>,
        /// wal_level of node B's server.
        #[arg(long)]
        wal_level_b: Option<String>,
        /// Print the topology as JSON instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Stop every process recorded in <dir>/lab.json and remove the lab's files.
    Down {
        /// Lab directory.
        #[arg(long, env = "FSPBX_HA_LAB_DIR")]
        dir: PathBuf,
    },
    /// SIGKILL a node's processes recorded in <dir>/lab.json (all, or one component): node
    /// loss for the failover demo. `up` brings the lab back.
    Kill {
        /// Lab directory.
        #[arg(long, env = "FSPBX_HA_LAB_DIR")]
        dir: PathBuf,
        /// The node: a or b.
        #[arg(long)]
        node: String,
        /// Only this component: postgres, sshd, kamailio or syncthing.
        #[arg(long)]
        component: Option<String>,
    },
    /// Say what runs in a lab directory.
    Status {
        /// Lab directory.
        #[arg(long, env = "FSPBX_HA_LAB_DIR")]
        dir: PathBuf,
        /// Print the topology as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let mut out = String::new();
    let result = run(Cli::parse(), &mut out);
    // Output is written once; a closed pipe (`| head`) is not worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fspbx-ha-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, out: &mut String) -> anyhow::Result<()> {
    match cli.command {
        Command::Up {
            dir,
            pg,
            pg_b,
            wal_level_a,
            wal_level_b,
            json,
        } => {
            let options = LabOptions {
                pg,
                dns: true,
                syncthing: true,
                sip: true,
                node_b_pg: pg_b,
                wal_level_a,
                wal_level_b,
                ..LabOptions::new(&dir)
            };
            up(&dir, options, json, out)
        }
        Command::Down { dir } => {
            let report = lab::down(&dir).with_context(|| format!("down in {}", dir.display()))?;
            if report.stopped.is_empty()
                && report.already_gone.is_empty()
                && report.removed.is_empty()
            {
                outln!(out, "nothing to stop in {}", dir.display());
            }
            for p in &report.stopped {
                outln!(
                    out,
                    "stopped {:?} of node {} (pid {})",
                    p.component,
                    p.node,
                    p.pid
                );
            }
            for p in &report.already_gone {
                outln!(
                    out,
                    "already gone: {:?} of node {} (pid {})",
                    p.component,
                    p.node,
                    p.pid
                );
            }
            if !report.removed.is_empty() {
                outln!(
                    out,
                    "removed {} lab paths under {}",
                    report.removed.len(),
                    dir.display()
                );
            }
            Ok(())
        }
        Command::Kill {
            dir,
            node,
            component,
        } => {
            let Some(t) = LabTopology::read(&dir)? else {
                anyhow::bail!("no lab in {} (run `up` first)", dir.display());
            };
            let name = |c: lab::Component| {
                serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            };
            let chosen: Vec<_> = t
                .processes
                .iter()
                .filter(|p| p.node == node)
                .filter(|p| component.as_deref().is_none_or(|c| name(p.component) == c))
                .collect();
            if chosen.is_empty() {
                let known: Vec<String> = t
                    .processes
                    .iter()
                    .filter(|p| p.node == node)
                    .map(|p| name(p.component))
                    .collect();
                anyhow::bail!(
                    "--node {node:?} --component {:?}: no such process in {} (node {node} runs: \
                     {})",
                    component.as_deref().unwrap_or("any"),
                    dir.display(),
                    if known.is_empty() {
                        "nothing".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            }
            for p in chosen {
                let what = if p.kill() { "killed" } else { "already gone:" };
                outln!(
                    out,
                    "{what} {:?} of node {} (pid {})",
                    p.component,
                    p.node,
                    p.pid
                );
            }
            Ok(())
        }
        Command::Status { dir, json } => {
            match lab::status(&dir)? {
                LabStatus::Absent => outln!(out, "no lab in {}", dir.display()),
                LabStatus::Running(t) if json => outln!(out, "{}", t.to_json()?),
                LabStatus::Running(t) => {
                    outln!(out, "lab running in {}", dir.display());
                    print_summary(out, &t);
                }
                LabStatus::Stale { topology, dead } => {
                    outln!(
                        out,
                        "lab in {} is stale: {} of {} processes gone",
                        dir.display(),
                        dead.len(),
                        topology.processes.len()
                    );
                    for p in &dead {
                        outln!(
                            out,
                            "  gone: {:?} of node {} (pid {})",
                            p.component,
                            p.node,
                            p.pid
                        );
                    }
                    outln!(
                        out,
                        "run `fspbx-ha-lab down --dir {}` to clean up",
                        dir.display()
                    );
                }
            }
            Ok(())
        }
    }
}

fn up(dir: &Path, options: LabOptions, json: bool, out: &mut String) -> anyhow::Result<()> {
    match lab::status(dir)? {
        LabStatus::Running(t) => {
            if json {
                outln!(out, "{}", t.to_json()?);
            } else {
                outln!(
                    out,
                    "lab already running in {} (nothing started)",
                    dir.display()
                );
                print_summary(out, &t);
            }
            return Ok(());
        }
        LabStatus::Stale { dead, .. } => {
            eprintln!(
                "stale lab in {} ({} processes gone): cleaning up",
                dir.display(),
                dead.len()
            );
            lab::down(dir)?;
        }
        LabStatus::Absent => {}
    }
    let started = Instant::now();
    let lab =
        Lab::start(options).with_context(|| format!("starting the lab in {}", dir.display()))?;
    let elapsed = started.elapsed();

    // The configuration an operator would write for this pair. If writing it fails, `lab` is
    // dropped on return and every process is stopped.
    let config = fspbx_ha_lab::cluster_toml::write_cluster_toml(&lab.topology())?;

    let topology = lab.detach();
    if json {
        outln!(out, "{}", topology.to_json()?);
    } else {
        outln!(
            out,
            "lab up in {} ({:.1} s)",
            dir.display(),
            elapsed.as_secs_f64()
        );
        print_summary(out, &topology);
        outln!(out, "config: {}", config.display());
    }
    Ok(())
}

fn print_summary(out: &mut String, t: &LabTopology) {
    for n in &t.nodes {
        let pid = |c| {
            t.processes
                .iter()
                .find(|p| p.node == n.name && p.component == c)
                .map_or_else(|| "-".to_owned(), |p| p.pid.to_string())
        };
        outln!(
            out,
            "node {} {}: PostgreSQL {} port {} (pid {}), sshd port {} (pid {})",
            n.name,
            n.ip,
            n.pg.flavor,
            n.pg.port,
            pid(lab::Component::Postgres),
            n.ssh.port,
            pid(lab::Component::Sshd),
        );
        if let Some(sip) = &n.sip {
            outln!(
                out,
                "  sip:   sipsak -s sip:ping@{}:{} (pid {})",
                n.ip,
                sip.port,
                pid(lab::Component::Kamailio)
            );
        }
        outln!(
            out,
            "  psql:  PGPASSWORD=\"$(cat {})\" psql -h {} -p {} -U {} {}",
            n.pg.password_file.display(),
            n.ip,
            n.pg.port,
            n.pg.user,
            n.pg.database
        );
        outln!(
            out,
            "  ssh:   ssh -i {} -o UserKnownHostsFile={} -p {} {}@{}",
            t.operator_key.display(),
            t.known_hosts.display(),
            n.ssh.port,
            n.ssh.user,
            n.ip
        );
    }
    outln!(out, "topology: {}", t.dir.join(lab::LAB_JSON).display());
}
