//! Lab scenario: steady-state replication lag A → B under write load, with fspbx-ha's setup
//! and with plain PostgreSQL logical replication set up by hand, side by side.
//!
//! ```text
//! cargo run -p fspbx-ha-core --example replication_lag -- \
//!     [seconds=15] [rates=100,500,2000] [17|18] [reps=1]
//! ```
//!
//! Two pairs run at once (node A 127.0.0.2, node B 127.0.0.3, four servers), each with the
//! generated FS PBX-like schema on both nodes and B's rows copied from A:
//! - **manual**: only SQL, as FS PBX's script does it: `CREATE PUBLICATION … FOR ALL TABLES` on
//!   both, `CREATE SUBSCRIPTION` on B (`copy_data = true, origin = none`, as `fusionpbx`), wait
//!   until every table is ready, then the reverse subscription (`copy_data = false`);
//! - **ours**: `Pair::connect` + plan + apply (replication role, heartbeat tables, the same
//!   subscriptions), and during the load a `replication::status` call every second (each
//!   writes a heartbeat row on both nodes and reads the other's), as a monitor would.
//!
//! The load is `pgbench` (the flavor's own binary) at a fixed rate (`-R`, 4 clients) against
//! node A with an FS PBX-like transaction: a CDR inserted into `v_xml_cdr`, an extension's
//! `update_date` touched, a Laravel job queued. Runs alternate between the pairs.
//!
//! Lag of every transaction: node B's copy of `v_xml_cdr` has one more column,
//! `bench_applied_at timestamptz DEFAULT clock_timestamp()`, which the apply worker fills when
//! it inserts the row; node A's commit time is `pg_xact_commit_timestamp(xmin)`
//! (`track_commit_timestamp = on`). Same machine, same clock: lag = applied on B − committed
//! on A, for every CDR of the run. For ours, the heartbeat lag `status` itself measures (write
//! on A, poll B every 20 ms) is shown too.

#[path = "../tests/replication_support/mod.rs"]
mod replication_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fspbx_ha_core::replication;
use fspbx_ha_lab::postgres::{PgFlavor, PgServer};
use replication_support::{LabPair, PairOptions, replicate_both_ways};

/// The transaction each pgbench client runs (`:run` tags the rows of one run).
const SCRIPT: &str = r#"\set ext random(1, 50)
\set dom random(0, 19)
BEGIN;
INSERT INTO public.v_xml_cdr (xml_cdr_uuid, domain_uuid, direction, caller_id_name, caller_id_number, destination_number, start_stamp, answer_stamp, end_stamp, duration, billsec, hangup_cause, record_name) VALUES (uuid_generate_v4(), md5('domain' || :dom)::uuid, 'inbound', 'Caller ' || :client_id, '+15550100', '1001', now() - interval '42 s', now() - interval '40 s', now(), 42, 40, 'NORMAL_CLEARING', 'lag-' || :run);
UPDATE public.v_extensions SET update_date = now() WHERE extensions_name = md5(:ext || 'v_extensions');
INSERT INTO public.jobs (queue, payload, attempts, available_at, created_at) VALUES ('default', '{"job":"cdr"}', 0, 0, 0);
END;
"#;

const CLIENTS: u32 = 4;

/// B records when each CDR was applied.
fn add_probe_column(lab: &LabPair) {
    lab.sql_b(
        "ALTER TABLE public.v_xml_cdr ADD COLUMN bench_applied_at timestamptz DEFAULT clock_timestamp()",
    );
}

/// `synchronous_commit` of the load's sessions: `FSPBX_HA_BENCH_SYNC_COMMIT`, default `on`.
fn sync_commit() -> String {
    std::env::var("FSPBX_HA_BENCH_SYNC_COMMIT").unwrap_or_else(|_| "on".into())
}

/// What pgbench reported.
struct PgbenchResult {
    tps: f64,
    latency_ms: f64,
}

fn pgbench(a: &PgServer, script: &Path, rate: u32, seconds: u32, run: u32) -> PgbenchResult {
    let mut cmd = Command::new(a.bin_dir().join("pgbench"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    // PostgreSQL's default (the lab's servers default to off for test speed): with off, a
    // commit reaches the WAL only at the WAL writer's next round (wal_writer_delay, 200 ms),
    // and walsenders send flushed WAL only, which alone adds 0-200 ms of lag.
    cmd.env(
        "PGOPTIONS",
        format!("-c synchronous_commit={}", sync_commit()),
    );
    cmd.args(["-n", "-f"])
        .arg(script)
        .args(["-R", &rate.to_string(), "-T", &seconds.to_string()])
        .args(["-c", &CLIENTS.to_string(), "-j", "2"])
        .args(["-D", &format!("run={run}")])
        .arg("-h")
        .arg(a.socket_dir())
        .args(["-p", &a.port().to_string(), "-U", "postgres", "fusionpbx"]);
    let out = cmd.output().expect("pgbench runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    PgbenchResult {
        tps: field("tps = "),
        latency_ms: field("latency average = "),
    }
}

/// `uuid|epoch` lines into a map.
fn epochs(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('|')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// Per-transaction lag (ms) of run `run`, after B has applied all of it.
fn lags_ms(lab: &LabPair, run: u32) -> Vec<f64> {
    let tag = format!("lag-{run}");
    let count = format!("SELECT count(*) FROM public.v_xml_cdr WHERE record_name = '{tag}'");
    let want = lab.sql_a(&count);
    let started = Instant::now();
    while lab.sql_b(&count) != want {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "B never caught up with run {run}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let committed = epochs(&lab.sql_a(&format!(
        "SELECT xml_cdr_uuid, extract(epoch FROM pg_xact_commit_timestamp(xmin))
           FROM public.v_xml_cdr WHERE record_name = '{tag}'"
    )));
    let applied = epochs(&lab.sql_b(&format!(
        "SELECT xml_cdr_uuid, extract(epoch FROM bench_applied_at)
           FROM public.v_xml_cdr WHERE record_name = '{tag}'"
    )));
    committed
        .iter()
        .map(|(k, c)| (applied[k] - c) * 1000.0)
        .collect()
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// One row of the table.
struct Row {
    rate: u32,
    setup: &'static str,
    tps: f64,
    latency_ms: f64,
    lags: Vec<f64>,
    heartbeats: Vec<f64>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(15);
    let rates: Vec<u32> = args
        .get(2)
        .map(|s| s.split(',').filter_map(|r| r.parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 500, 2000]);
    let flavor = match args.get(3).map(String::as_str) {
        Some("18") => PgFlavor::V18,
        _ => PgFlavor::V17,
    };
    let reps: u32 = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(1);
    println!(
        "replication lag A -> B: PostgreSQL {flavor}, {seconds} s per run, rates {rates:?} tx/s, \
         {CLIENTS} pgbench clients (synchronous_commit = {}), {reps} run(s) per rate and setup",
        sync_commit()
    );

    let manual = LabPair::with_same_schema(PairOptions::new(flavor), 10_000);
    // Plain PostgreSQL, by hand (FS PBX's names, user and options).
    manual.script_setup(Duration::from_secs(600));
    let ours = LabPair::with_same_schema(PairOptions::new(flavor), 10_000);
    let pair = replicate_both_ways(&ours.config("")).await;
    // What one `status` call costs the nodes when idle: WAL written on A (the heartbeat row;
    // both nodes write one) and wall time.
    let lsn = |lab: &LabPair| lab.sql_a("SELECT pg_current_wal_lsn()");
    let calls = 20;
    let (before, t) = (lsn(&ours), Instant::now());
    for _ in 0..calls {
        replication::status(&pair).await.unwrap();
    }
    let took = t.elapsed().as_secs_f64() / f64::from(calls);
    let wal: f64 = ours
        .sql_a(&format!(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{before}')"
        ))
        .parse()
        .unwrap();
    println!(
        "one status call on the idle pair (before the load): {:.0} ms, {:.0} bytes of WAL on node A ({calls} calls)",
        took * 1000.0,
        wal / f64::from(calls)
    );
    for lab in [&manual, &ours] {
        add_probe_column(lab);
    }
    let dir = tempfile::tempdir().unwrap();
    let script: PathBuf = dir.path().join("fspbx_tx.sql");
    std::fs::write(&script, SCRIPT).unwrap();

    let mut rows: Vec<Row> = Vec::new();
    let mut run = 0;
    // Warm-up on both (caches, first connections), not measured.
    for lab in [&manual, &ours] {
        run += 1;
        pgbench(lab.a(), &script, 200, 3, run);
        lags_ms(lab, run);
    }
    for &rate in &rates {
        for rep in 0..reps * 2 {
            let our_turn = (rep + rate / 100) % 2 == 0;
            run += 1;
            let (lab, setup) = if our_turn {
                (&ours, "ours")
            } else {
                (&manual, "manual")
            };
            let a_script = script.clone();
            let a = lab.a();
            let mut heartbeats = Vec::new();
            let result = std::thread::scope(|s| {
                let bench = s.spawn(|| pgbench(a, &a_script, rate, seconds, run));
                if our_turn {
                    let monitor = async {
                        while !bench.is_finished() {
                            let t = Instant::now();
                            let st = replication::status(&pair).await.unwrap();
                            if let Some(l) = st.directions[0].heartbeat_lag_s {
                                heartbeats.push(l * 1000.0);
                            }
                            let pause = Duration::from_secs(1).saturating_sub(t.elapsed());
                            tokio::time::sleep(pause).await;
                        }
                    };
                    tokio::task::block_in_place(|| {
                        tokio::runtime::Handle::current().block_on(monitor)
                    });
                }
                bench.join().unwrap()
            });
            let lags = lags_ms(lab, run);
            println!(
                "  {rate:>5} tx/s {setup:<6}: {:.0} tx/s done, {} CDRs, lag p50 {:.1} ms p99 {:.1} ms",
                result.tps,
                lags.len(),
                pct(&lags, 0.5),
                pct(&lags, 0.99)
            );
            rows.push(Row {
                rate,
                setup,
                tps: result.tps,
                latency_ms: result.latency_ms,
                lags,
                heartbeats,
            });
        }
    }

    println!(
        "\n| target tx/s | setup | achieved tx/s | pgbench latency avg | CDRs | lag p50 | lag p99 | lag max | status heartbeat p50 / max |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &rate in &rates {
        for setup in ["manual", "ours"] {
            let mine: Vec<&Row> = rows
                .iter()
                .filter(|r| r.rate == rate && r.setup == setup)
                .collect();
            let lags: Vec<f64> = mine.iter().flat_map(|r| r.lags.clone()).collect();
            let hb: Vec<f64> = mine.iter().flat_map(|r| r.heartbeats.clone()).collect();
            let n = mine.len() as f64;
            println!(
                "| {rate} | {setup} | {:.0} | {:.2} ms | {} | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
                mine.iter().map(|r| r.tps).sum::<f64>() / n,
                mine.iter().map(|r| r.latency_ms).sum::<f64>() / n,
                lags.len(),
                pct(&lags, 0.5),
                pct(&lags, 0.99),
                pct(&lags, 1.0),
                if hb.is_empty() {
                    "—".to_string()
                } else {
                    format!(
                        "{:.0} / {:.0} ms ({} calls)",
                        pct(&hb, 0.5),
                        pct(&hb, 1.0),
                        hb.len()
                    )
                }
            );
        }
    }
    // Still flowing both ways after the load. What else `status` says is printed: the probe
    // column is schema drift (which it is), and on PostgreSQL 18 the first update of each row
    // that the initial copy wrote counts as `confl_update_origin_differs`.
    let st = replication::status(&pair).await.unwrap();
    for d in &st.directions {
        assert!(
            d.worker_running && d.heartbeat_lag_s.is_some(),
            "{}",
            st.render()
        );
    }
    println!("status after the load: {}", st.verdict.as_str());
    for r in &st.reasons {
        println!("  - {r}");
    }
    if flavor == PgFlavor::V18 {
        // The server's own counters on B, for both setups.
        for (lab, setup) in [(&manual, "manual"), (&ours, "ours")] {
            println!(
                "{setup}: B's confl_update_origin_differs = {}",
                lab.sql_b(
                    "SELECT sum(confl_update_origin_differs) FROM pg_stat_subscription_stats"
                )
            );
        }
    }
}
