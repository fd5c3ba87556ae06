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

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::failover::{Controller, NodeId, Requirement, SwitchoverReport};
use fspbx_ha_core::floating::{DEFAULT_NODE_TTL, Floating};
use fspbx_ha_core::replication::{self, Intent, NoProgress, Pair, Side, Verdict};
use fspbx_ha_lab::cluster_toml::write_cluster_toml;
use fspbx_ha_lab::lab::{Lab, LabOptions};
use tokio::task::JoinHandle;

const INTERVAL: Duration = Duration::from_millis(500);
const WRITE_PAUSE: Duration = Duration::from_millis(5);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Commits a row to one node every [`WRITE_PAUSE`]; returns the acknowledged ids.
fn writer(pair: Arc<Pair>, side: Side, stop: Arc<AtomicBool>) -> JoinHandle<(Vec<i64>, usize)> {
    tokio::spawn(async move {
        let (mut acked, mut errors) = (vec![], 0usize);
        while !stop.load(Ordering::Relaxed) {
            match pair
                .pg(side)
                .client()
                .query_one(
                    "INSERT INTO public.switch_rows DEFAULT VALUES RETURNING id",
                    &[],
                )
                .await
            {
                Ok(row) => acked.push(row.get::<_, i64>(0)),
                Err(_) => errors += 1,
            }
            tokio::time::sleep(WRITE_PAUSE).await;
        }
        (acked, errors)
    })
}

async fn missing_on(pair: &Pair, side: Side, ids: &[i64]) -> usize {
    let have: HashSet<i64> = pair
        .pg(side)
        .client()
        .query("SELECT id FROM public.switch_rows", &[])
        .await
        .expect("select")
        .iter()
        .map(|r| r.get(0))
        .collect();
    ids.iter().filter(|i| !have.contains(i)).count()
}

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
    let lab = Lab::start(LabOptions {
        dns: true,
        sip: true,
        ..LabOptions::new(dir.path().join("lab"))
    })
    .expect("lab");
    let path = write_cluster_toml(&lab.topology()).expect("cluster.toml");
    let mut config = ClusterConfig::load(&path).expect("config");
    config.policy.interval = INTERVAL;
    config.policy.fall = 3;
    config.policy.rise = 2;
    config.failover.lag = Requirement::Hard;
    config.failover.schema = Requirement::Hard;
    config.failover.sync = Requirement::Off;
    config.failover.fence_timeout = Duration::from_secs(2);
    // Nothing is counted after these flips (no FreeSWITCH in the lab).
    config.failover.registrations_watch = Duration::ZERO;
    config.failover.calls_watch = Duration::ZERO;
    let floating = Floating::new(&config).expect("floating");
    floating.apply(DEFAULT_NODE_TTL).await.expect("dns apply");

    let mut pair = Pair::connect(&config).await.expect("pair");
    pair.pg(Side::A)
        .client()
        .batch_execute(
            "CREATE TABLE public.switch_rows (id bigserial PRIMARY KEY, \
             at timestamptz NOT NULL DEFAULT now()); \
             INSERT INTO public.switch_rows DEFAULT VALUES;",
        )
        .await
        .expect("table");
    let plan = pair.plan(&Intent::default()).await.expect("plan");
    replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .expect("replication");
    let st = replication::status(&pair).await.expect("status");
    assert_ne!(st.verdict, Verdict::Broken, "{}", st.render());
    let pair = Arc::new(pair);
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
        let stop = Arc::new(AtomicBool::new(false));
        let w = writer(pair.clone(), from, stop.clone());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut controller = Controller::new(config.clone()).await.expect("controller");
        let report = controller
            .switchover(to, false, false)
            .await
            .unwrap_or_else(|e| panic!("trial {trial}: {e}"));
        stop.store(true, Ordering::Relaxed);
        let (acked, errors) = w.await.expect("writer");
        assert_eq!(report.outcome, "flipped", "{report:#?}");
        let late = missing_on(&pair, target, &acked).await;
        let deadline = Instant::now() + config.replication.heartbeat_timeout;
        let mut lost = late;
        while lost > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            lost = missing_on(&pair, target, &acked).await;
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
