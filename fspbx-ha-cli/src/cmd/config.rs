//! `fspbx-ha config`: validate the configuration and show it with defaults.

use std::path::Path;
use std::process::ExitCode;

/// Arguments of `config`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {}

pub(crate) fn run(_args: ConfigArgs, path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let config = super::load_config(path)?;
    if json {
        crate::output::json(&serde_json::json!({ "ok": true, "config": config }))?;
    } else {
        outln!("# {} is valid; with defaults filled in:\n", path.display());
        out!("{}", config.to_toml());
    }
    Ok(ExitCode::SUCCESS)
}
