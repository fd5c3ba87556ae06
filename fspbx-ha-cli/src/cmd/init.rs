//! `fspbx-ha init`: write the commented template.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fspbx_ha_core::config::ClusterConfig;

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// Where to write (default: the --config path).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
    /// Print the template on stdout instead of writing a file.
    #[arg(long)]
    stdout: bool,
}

pub(crate) fn run(args: InitArgs, config: &Path, json: bool) -> anyhow::Result<ExitCode> {
    if args.stdout {
        out!("{}", ClusterConfig::template());
        return Ok(ExitCode::SUCCESS);
    }
    let path = args.output.as_deref().unwrap_or(config);
    let written = ClusterConfig::write_template(path, args.force)?;
    if json {
        crate::output::json(&serde_json::json!({ "ok": true, "written": written }))?;
    } else {
        outln!(
            "wrote {}: edit the nodes, the floating record and the secret references, then run \
             `fspbx-ha --config {} check`",
            written.display(),
            written.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
