//! Embedding example: the pair's state in your own tool (a monitoring check, a dashboard).
//!
//! ```sh
//! cargo run --example pair_status -- lab/cluster.toml
//! ```
//! Exits 0 when healthy, 1 when degraded, 2 when broken — the convention of Nagios-style checks.

use fspbx_ha::core::config::ClusterConfig;
use fspbx_ha::core::replication::Verdict;
use fspbx_ha::core::status::pair_status;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "cluster.toml".into());
    let config = ClusterConfig::load(&path)?;
    let status = pair_status(&config).await;
    print!("{}", status.render());
    std::process::exit(match status.verdict {
        Verdict::Healthy => 0,
        Verdict::Degraded => 1,
        Verdict::Broken => 2,
    });
}
