//! `fspbx-ha status`: the pair at a glance.

use std::path::Path;
use std::process::ExitCode;

use fspbx_ha_core::replication::Verdict;
use fspbx_ha_core::status::pair_status;

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {}

pub(crate) async fn run(_args: StatusArgs, path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(path)?;
    let status = pair_status(&config).await;
    if json {
        crate::output::json(&status)?;
    } else {
        out!("{}", status.render());
    }
    Ok(if status.verdict == Verdict::Healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILED)
    })
}
