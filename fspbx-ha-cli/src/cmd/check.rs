//! `fspbx-ha check`: preflight checks of both nodes.

use std::path::Path;
use std::process::ExitCode;

use fspbx_ha_core::check::{self, CheckOptions};

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// Skip the node-to-node SSH check.
    #[arg(long)]
    no_peer_ssh: bool,
}

pub(crate) async fn run(args: CheckArgs, path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(path)?;
    let mut options = CheckOptions::default();
    options.peer_ssh = !args.no_peer_ssh;
    let report = check::run(&config, &options).await;
    if json {
        crate::output::json(&serde_json::json!({
            "ok": report.ok(),
            "items": report.items,
        }))?;
    } else {
        out!("{}", report.render_table());
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILED)
    })
}
