//! Embedding example: run the preflight checks from your own tool and act on the result.
//!
//! ```sh
//! cargo run --example preflight -- lab/cluster.toml
//! ```

use fspbx_ha::core::check::{self, CheckOptions, CheckStatus};
use fspbx_ha::core::config::ClusterConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "cluster.toml".into());
    let config = ClusterConfig::load(&path)?;
    let report = check::run(&config, &CheckOptions::default()).await;
    for item in report
        .items
        .iter()
        .filter(|i| i.status != CheckStatus::Pass)
    {
        println!(
            "{} {} {}: {}",
            item.node,
            item.check,
            item.status.as_str(),
            item.observed
        );
        if let Some(fix) = &item.fix {
            println!("    fix: {fix}");
        }
    }
    println!(
        "{} checks, {} failing: the pair is {}ready for high availability",
        report.items.len(),
        report.count(CheckStatus::Fail),
        if report.ok() { "" } else { "not " }
    );
    std::process::exit(if report.ok() { 0 } else { 1 });
}
