//! Lab scenario: replication bootstrap of the generated FS PBX-like database, ours against the
//! manual procedure, on fresh PostgreSQL pairs in the same run; then `status` latency and
//! `verify` throughput and peak memory.
//!
//! ```text
//! cargo run -p fspbx-ha-core --example replication_bootstrap -- [trials] [cdr_rows] [17|18]
//! ```
//!
//! Manual procedure (what an operator types, FS PBX's order): `pg_dump -s` of A piped into
//! psql on B, `CREATE PUBLICATION … FOR ALL TABLES` on both, `CREATE SUBSCRIPTION` on B with
//! `copy_data = true, origin = none`, wait until every table is `r`, then the reverse
//! subscription with `copy_data = false`. Ours: `Pair::connect` + plan + apply (which also
//! writes the pg_hba block over SSH, creates the role, fixes replica identity, adds the
//! heartbeat, and moves B's sequences). Both wait for the same end state.

#[path = "../tests/replication_support/mod.rs"]
mod replication_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fspbx_ha_core::replication::{self, Intent, NoProgress, Pair};
use fspbx_ha_lab::postgres::{PgFlavor, PgServer};
use replication_support::{LabPair, PairOptions, fspbx_schema_sql};

fn pipe_schema(a: &PgServer, b: &PgServer) {
    let mut dump = Command::new(a.bin_dir().join("pg_dump"))
        .args(["-h"])
        .arg(a.socket_dir())
        .args([
            "-p",
            &a.port().to_string(),
            "-U",
            "postgres",
            "--schema-only",
            "fusionpbx",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let status = Command::new(b.bin_dir().join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(b.socket_dir())
        .args([
            "-p",
            &b.port().to_string(),
            "-U",
            "postgres",
            "-d",
            "fusionpbx",
        ])
        .stdin(dump.stdout.take().unwrap())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success() && dump.wait().unwrap().success());
}

fn manual(lab: &LabPair) -> Duration {
    let t = Instant::now();
    pipe_schema(lab.a(), lab.b());
    lab.sql_a("CREATE PUBLICATION fspbx_publication_a FOR ALL TABLES");
    lab.sql_b("CREATE PUBLICATION fspbx_publication_b FOR ALL TABLES");
    if let Ok(pre) = std::env::var("FSPBX_HA_BENCH_MANUAL_PRE_B") {
        lab.sql_b(&pre);
    }
    lab.sql_b(&format!(
        "CREATE SUBSCRIPTION fspbx_subscription_a_to_b CONNECTION 'host=127.0.0.2 port={} dbname=fusionpbx user=fusionpbx password={}' \
         PUBLICATION fspbx_publication_a WITH (copy_data = true, origin = none{})",
        lab.a().port(),
        lab.a().password(),
        std::env::var("FSPBX_HA_BENCH_MANUAL_OPTS").unwrap_or_default()
    ));
    while lab.sql_b("SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'") != "0" {
        std::thread::sleep(Duration::from_millis(250));
    }
    lab.sql_a(&format!(
        "CREATE SUBSCRIPTION fspbx_subscription_b_to_a CONNECTION 'host=127.0.0.3 port={} dbname=fusionpbx user=fusionpbx password={}' \
         PUBLICATION fspbx_publication_b WITH (copy_data = false, origin = none)",
        lab.b().port(),
        lab.b().password()
    ));
    t.elapsed()
}

async fn ours(lab: &LabPair) -> (Duration, Pair) {
    let config = lab.config("");
    let t = Instant::now();
    let mut pair = Pair::connect(&config).await.unwrap();
    let plan = pair.plan(&Intent::default()).await.unwrap();
    let report = replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .unwrap();
    if std::env::var_os("FSPBX_HA_BENCH_STEPS").is_some() {
        for s in &report.steps {
            println!("      {:<40} {:.3} s", s.id, s.elapsed_s);
        }
    }
    (t.elapsed(), pair)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let trials: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let rows: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(300_000);
    let flavor = match args.get(3).map(String::as_str) {
        Some("18") => PgFlavor::V18,
        _ => PgFlavor::V17,
    };
    println!(
        "replication bootstrap: PostgreSQL {flavor}, {rows} CDR rows + FS PBX-like tables, {trials} trial(s)"
    );
    let schema = fspbx_schema_sql(rows);
    let (mut t_ours, mut t_manual) = (Vec::new(), Vec::new());
    let mut last_pair = None;
    for trial in 0..trials {
        // Alternate the order so neither side always runs on a warmer machine.
        for first_ours in [trial % 2 == 0, trial % 2 != 0] {
            let lab = LabPair::start(PairOptions {
                ssh: first_ours,
                ..PairOptions::new(flavor)
            });
            lab.sql_a(&schema);
            if first_ours {
                let (d, pair) = ours(&lab).await;
                t_ours.push(d.as_secs_f64());
                println!("  trial {trial}: ours   {:.2} s", d.as_secs_f64());
                last_pair = Some((lab, pair));
            } else {
                let d = manual(&lab);
                t_manual.push(d.as_secs_f64());
                println!("  trial {trial}: manual {:.2} s", d.as_secs_f64());
            }
        }
    }
    let (po, pm) = (pct(&mut t_ours, 0.5), pct(&mut t_manual, 0.5));
    println!(
        "bootstrap p50: ours {po:.2} s, manual {pm:.2} s, ratio ours/manual {:.2}",
        po / pm
    );

    let (lab, pair) = last_pair.unwrap();
    let mut lat = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let st = replication::status(&pair).await.unwrap();
        assert_eq!(st.verdict, replication::Verdict::Healthy, "{}", st.render());
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "status latency (20 calls, includes the heartbeat round trip both ways): p50 {:.0} ms, p95 {:.0} ms",
        pct(&mut lat.clone(), 0.5),
        pct(&mut lat, 0.95)
    );

    let before = peak_rss_kib();
    let v = replication::verify(&pair).await.unwrap();
    assert!(v.clean(), "{}", v.render());
    let after = peak_rss_kib();
    let largest = lab.sql_a("SELECT pg_size_pretty(pg_table_size('public.v_xml_cdr'))");
    println!(
        "verify: {} rows in {} tables in {:.2} s = {:.0} rows/s; peak RSS {} KiB before, {} KiB after (largest table v_xml_cdr: {rows} rows, {largest})",
        v.rows_compared,
        v.tables.len(),
        v.elapsed_s,
        v.rows_compared as f64 / v.elapsed_s,
        before,
        after
    );
}
