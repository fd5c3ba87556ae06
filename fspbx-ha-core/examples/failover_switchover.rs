//! Lab scenario: the planned switchover's time and rows lost, over many trials (issue 7 asks
//! for distributions of ≥ 20).
//!
//! ```text
//! cargo run --release -p fspbx-ha-core --example failover_switchover -- [trials]
//! ```
//!
//! One lab (PostgreSQL 17, sshd and Kamailio per node, the floating record on Knot primary +
//! secondary); a `bigserial` table replicated both ways (logical replication, `origin = none`);
//! the lag and schema gates `hard`. Each trial (`trials`, default 20) switches the record over
//! to the other node — A → B, then B → A, and so on — while a writer commits a row to the
//! active node every 5 ms and records every acknowledged id. Measured per trial: the whole
//! switchover (health rounds, replication check, catch-up heartbeat, sequence move, flip until
//! every authoritative server answers, drain), its flip and catch-up steps, and the
//! acknowledged rows missing on the new active node (at once, and after the heartbeat
//! timeout).

#[path = "../tests/failover_support/mod.rs"]
mod failover_support;

use std::time::{Duration, Instant};

use failover_support::{Writer, lab_config, missing_on, percentile, set_up_replication, start_lab};
use fspbx_ha_core::failover::{Controller, NodeId, Requirement, SwitchoverReport};
use fspbx_ha_core::floating::{DEFAULT_NODE_TTL, Floating};
use fspbx_ha_core::replication::Side;

const INTERVAL: Duration = Duration::from_millis(500);
const WRITE_PAUSE: Duration = Duration::from_millis(5);

fn step_ms(r: &SwitchoverReport, name: &str) -> f64 {
    r.steps
        .iter()
        .find(|s| s.step == name)
        .map_or(f64::NAN, |s| s.elapsed.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let trials: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let lab = start_lab(dir.path(), false);
    // Rise 2, fall 3, the Syncthing gate off; replication is set up below: lag and schema hard.
    let mut config = lab_config(&lab, INTERVAL);
    config.failover.lag = Requirement::Hard;
    config.failover.schema = Requirement::Hard;
    // Nothing is counted after these flips (no FreeSWITCH in the lab).
    config.failover.registrations_watch = Duration::ZERO;
    config.failover.calls_watch = Duration::ZERO;
    let floating = Floating::new(&config).expect("floating");
    floating.apply(DEFAULT_NODE_TTL).await.expect("dns apply");

    // A bigserial table on A, then replication both ways.
    let pair = set_up_replication(&config).await;
    println!(
        "settings: interval {INTERVAL:?}, rise 2, fall 3, probe timeout {:?}, lag and schema \
         gates hard, writer every {WRITE_PAUSE:?} on the active node, PostgreSQL 17, Knot \
         primary + secondary; {trials} trials",
        config.nodes[0].probes.timeout
    );

    let (mut total, mut flip, mut catch_up) = (vec![], vec![], vec![]);
    let (mut lost_all, mut late_all, mut rows_all) = (0usize, 0usize, 0usize);
    for trial in 0..trials {
        let (from, to) = if trial % 2 == 0 {
            (Side::A, NodeId::B)
        } else {
            (Side::B, NodeId::A)
        };
        let target = if to == NodeId::B { Side::B } else { Side::A };
        let w = Writer::start(&config, from, WRITE_PAUSE).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut controller = Controller::new(config.clone()).await.expect("controller");
        let report = controller
            .switchover(to, false, false)
            .await
            .unwrap_or_else(|e| panic!("trial {trial}: {e}"));
        let (acked, errors) = w.stop().await;
        let acked: Vec<i64> = acked.into_iter().map(|(id, _)| id).collect();
        assert_eq!(report.outcome, "flipped", "{report:#?}");
        let late = missing_on(&pair, target, &acked).await.len();
        let deadline = Instant::now() + config.replication.heartbeat_timeout;
        let mut lost = late;
        while lost > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            lost = missing_on(&pair, target, &acked).await.len();
        }
        println!(
            "trial {trial:>2} -> {}: {:>5.0} ms (flip {:>4.0} ms, catch-up {:>3.0} ms); {} rows \
             acknowledged, {errors} failed inserts, {late} not yet on the target at return, \
             {lost} lost",
            report.to,
            report.elapsed.as_secs_f64() * 1000.0,
            step_ms(&report, "flip"),
            step_ms(&report, "catch_up"),
            acked.len(),
        );
        total.push(report.elapsed.as_secs_f64());
        flip.push(step_ms(&report, "flip") / 1000.0);
        catch_up.push(step_ms(&report, "catch_up") / 1000.0);
        lost_all += lost;
        late_all += late;
        rows_all += acked.len();
    }
    for v in [&mut total, &mut flip, &mut catch_up] {
        v.sort_by(f64::total_cmp);
    }
    println!("\n| measure ({trials} trials) | p50 | p95 | max |\n|---|---|---|---|");
    for (what, v) in [
        ("planned switchover, request → drained", &total),
        ("  of which the flip (until every server answers)", &flip),
        ("  of which the catch-up heartbeat", &catch_up),
    ] {
        println!(
            "| {what} | {:.2} s | {:.2} s | {:.2} s |",
            percentile(v, 0.5),
            percentile(v, 0.95),
            v.last().copied().unwrap_or(f64::NAN)
        );
    }
    println!(
        "rows acknowledged during the trials: {rows_all}; not yet on the target at return: \
         {late_all}; lost: {lost_all}"
    );
    drop(lab);
}
