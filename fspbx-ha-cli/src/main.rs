//! `fspbx-ha`: make a two-node FS PBX highly available.
//!
//! This binary only parses arguments, calls the libraries and renders what they return.
//! Exit codes (also in `--help`): 0 success; 1 a check or operation reported failure;
//! 2 bad usage or invalid configuration; 3 could not complete (I/O, network, server error).

/// `print!` to stdout that ends the process quietly when stdout was closed (`| head`).
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*), false) };
}

/// `println!` to stdout that ends the process quietly when stdout was closed (`| head`).
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write_stdout(format_args!($($arg)*), true) };
}

mod cmd;
mod exit;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  success (check: every check passed; warnings allowed)
  1  a check failed or the operation reported failure
  2  bad usage or invalid configuration
  3  could not complete: I/O, network or server error
  141  standard output was closed early (e.g. `| head`), as other Unix tools";

/// High availability for a two-node FS PBX: replication, file sync, DNS failover.
#[derive(Debug, Parser)]
#[command(name = "fspbx-ha", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// Cluster configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "FSPBX_HA_CONFIG",
        default_value = "cluster.toml"
    )]
    config: PathBuf,
    /// Machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a commented configuration template.
    Init(cmd::init::InitArgs),
    /// Preflight checks of both nodes: SSH both ways, PostgreSQL version and settings, tables.
    Check(cmd::check::CheckArgs),
    /// Validate the configuration file and print it with defaults filled in.
    Config(cmd::config::ConfigArgs),
    /// The pair at a glance: floating record, replication both ways, Syncthing (exit 1 unless
    /// healthy).
    Status(cmd::status::StatusArgs),
    /// PostgreSQL logical replication both ways: plan, apply, status, verify, teardown.
    #[command(subcommand)]
    Replication(cmd::replication::ReplicationCommand),
    /// The floating DNS record: show, set (compare-and-swap flip), verify; plan/apply the node
    /// records.
    #[command(subcommand)]
    Dns(cmd::dns::DnsCommand),
    /// Syncthing both ways: pair the daemons, sync status, wait until in sync.
    #[command(subcommand)]
    Sync(cmd::sync::SyncCommand),
    /// The failover controller: watch (probe, flip, fence, audit), status, switchover.
    #[command(subcommand)]
    Failover(cmd::failover::FailoverCommand),
    /// FS PBX's multinode update over SSH, checked and resumable: code on both, migrate the
    /// first node, delete-last-batch + migrate the second, refresh subscriptions (needs --yes).
    Upgrade(cmd::upgrade::UpgradeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return exit::report(&anyhow::Error::new(e), cli.json),
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Init(args) => cmd::init::run(args, &cli.config, cli.json),
            Command::Check(args) => cmd::check::run(args, &cli.config, cli.json).await,
            Command::Config(args) => cmd::config::run(args, &cli.config, cli.json),
            Command::Status(args) => cmd::status::run(args, &cli.config, cli.json).await,
            Command::Replication(c) => cmd::replication::run(c, &cli.config, cli.json).await,
            Command::Sync(c) => cmd::sync::run(c, &cli.config, cli.json).await,
            Command::Upgrade(args) => cmd::upgrade::run(args, &cli.config, cli.json).await,
            Command::Dns(c) => match cmd::load_config(&cli.config) {
                Ok(config) => cmd::dns::run(c, &config, cli.json).await,
                Err(e) => Err(e),
            },
            Command::Failover(c) => match cmd::load_config(&cli.config) {
                Ok(config) => cmd::failover::run(c, config, cli.json).await,
                Err(e) => Err(e),
            },
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => exit::report(&e, cli.json),
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FSPBX_HA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
