//! `fspbx-ha replication sequences | drift | refresh`: the sequence strategy, schema drift and
//! subscription refresh. Everything is decided in `fspbx_ha_core::replication`; this file
//! parses flags and renders results.

use std::process::ExitCode;

use fspbx_ha_core::replication::{self, Pair};

/// `fspbx-ha replication sequences` flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SequencesArgs {
    /// Interleave the sequences as `[replication.sequences]` says (strategy "interleave"):
    /// shows the plan; with --yes restarts them (tables locked on both nodes meanwhile).
    #[arg(long)]
    apply: bool,
    /// With --apply: really change the sequences.
    #[arg(long, requires = "apply")]
    yes: bool,
}

/// `fspbx-ha replication refresh` flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RefreshArgs {
    /// Really run ALTER SUBSCRIPTION … REFRESH PUBLICATION on both nodes (default: dry run).
    #[arg(long)]
    yes: bool,
    /// Copy the existing rows of tables the refresh adds (copy_data = true): only for a table
    /// filled on one node alone, or the copy collides with the other node's rows.
    #[arg(long)]
    copy_data: bool,
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILED)
    }
}

/// `replication sequences [--apply [--yes]]`: exit 1 when the sequences do not comply with
/// the strategy (after an applied interleave: when they still do not).
pub(crate) async fn sequences(
    pair: &Pair,
    args: SequencesArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if args.apply {
        let report = replication::interleave(pair, !args.yes).await?;
        let compliant = if args.yes {
            replication::check_sequences(pair).await?.compliant
        } else {
            report.is_noop()
        };
        if json {
            crate::output::json(&report)?;
        } else {
            out!("{}", report.render());
            if !args.yes && !report.is_noop() {
                outln!("dry run: nothing changed; run again with --apply --yes");
            }
        }
        return Ok(exit(compliant));
    }
    let report = replication::sequences_report(pair).await?;
    if json {
        crate::output::json(&report)?;
    } else {
        out!("{}", report.render());
    }
    Ok(exit(report.compliance.compliant))
}

/// `replication drift`: exit 1 on drift or a subscription needing a refresh.
pub(crate) async fn drift(pair: &Pair, json: bool) -> anyhow::Result<ExitCode> {
    let report = replication::drift(pair).await?;
    if json {
        crate::output::json(&report)?;
    } else {
        out!("{}", report.render());
    }
    Ok(exit(report.clean()))
}

/// `replication refresh [--yes] [--copy-data]`.
pub(crate) async fn refresh(
    pair: &Pair,
    args: RefreshArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let report = replication::refresh_subscriptions_with(pair, !args.yes, args.copy_data).await?;
    if json {
        crate::output::json(&report)?;
    } else {
        out!("{}", report.render());
    }
    Ok(ExitCode::SUCCESS)
}
