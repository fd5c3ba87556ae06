//! Faults of a running pair (issue 4) against the lab's real PostgreSQL servers, on 17 and 18:
//!
//! - a node's server SIGKILLed while writers commit on both nodes: after the restart,
//!   replication resumes both ways, every acknowledged commit is on both nodes and `verify` is
//!   clean;
//! - node B stopped while A takes writes: A's slot for B is inactive and holds the WAL written
//!   meanwhile (read through the tool's inventory and slot safety of node A, checked against
//!   the server's own views), slot safety warns; after B's restart it catches up and the slot
//!   lets the WAL go.
//!
//! The writers use `synchronous_commit = on` in their sessions (the lab's servers default to
//! `off` for speed), so an acknowledged commit is one the server has written to its WAL: that is
//! the promise a crash must keep.

mod replication_support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::replication::{self, Pair, ReplicationStatus, Side, Verdict, slots};
use fspbx_ha_lab::postgres::{PgFlavor, PgServer};
use replication_support::{LabPair, PairOptions, replicate_both_ways};

/// Both nodes carry the FS PBX-like schema (B without rows), replication set up both ways by
/// the library with `replication_extra` in the configuration's `[replication]` section;
/// returns the lab and its configuration.
async fn replicating_pair(flavor: PgFlavor, replication_extra: &str) -> (LabPair, ClusterConfig) {
    let lab = LabPair::with_same_schema(PairOptions::new(flavor), 1_000);
    let config = lab.config(replication_extra);
    replicate_both_ways(&config).await;
    (lab, config)
}

/// A client committing transactions in a loop on one node's `fusionpbx` database over TCP:
/// each inserts a CDR whose `caller_id_name` is `<tag>-<n>` (its uuid derived from it), and
/// every third one also updates an earlier CDR of the same writer. Connection errors (a killed
/// server) are counted and the writer reconnects until it is stopped. `acked` holds the `n` of
/// every transaction whose COMMIT the server acknowledged.
struct Writer {
    tag: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u64>>>,
    errors: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(tag: &str, pg: &PgServer) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(AtomicU64::new(0));
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(pg.ip().to_string())
            .port(pg.port())
            .user(pg.user())
            .password(pg.password())
            .dbname(pg.database())
            .connect_timeout(Duration::from_secs(1));
        let task = tokio::spawn(write_loop(
            tag.to_string(),
            cfg,
            stop.clone(),
            acked.clone(),
            errors.clone(),
        ));
        Writer {
            tag: tag.to_string(),
            stop,
            acked,
            errors,
            task,
        }
    }

    fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn errors(&self) -> u64 {
        self.errors.load(Ordering::SeqCst)
    }

    /// Waits until `more` further commits are acknowledged (30 s at most).
    async fn wait_for_commits(&self, more: usize) {
        let want = self.acked_count() + more;
        let started = Instant::now();
        while self.acked_count() < want {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "writer {} stalled at {} commits ({} errors)",
                self.tag,
                self.acked_count(),
                self.errors()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the writer; returns the names of its acknowledged rows.
    async fn finish(self) -> HashSet<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        let acked = self.acked.lock().unwrap();
        acked.iter().map(|n| format!("{}-{n}", self.tag)).collect()
    }
}

async fn write_loop(
    tag: String,
    cfg: tokio_postgres::Config,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u64>>>,
    errors: Arc<AtomicU64>,
) {
    let mut n: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let Ok((mut client, conn)) = cfg.connect(tokio_postgres::NoTls).await else {
            errors.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let conn = tokio::spawn(conn);
        if client
            .batch_execute("SET synchronous_commit = on")
            .await
            .is_err()
        {
            errors.fetch_add(1, Ordering::SeqCst);
            conn.abort();
            continue;
        }
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            if commit_one(&mut client, &tag, n).await.is_err() {
                errors.fetch_add(1, Ordering::SeqCst);
                break;
            }
            acked.lock().unwrap().push(n);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        conn.abort();
    }
}

async fn commit_one(
    client: &mut tokio_postgres::Client,
    tag: &str,
    n: u64,
) -> Result<(), tokio_postgres::Error> {
    let name = format!("{tag}-{n}");
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO public.v_xml_cdr (xml_cdr_uuid, direction, caller_id_name, caller_id_number,
                destination_number, start_stamp, end_stamp, duration, billsec, hangup_cause)
         VALUES (md5($1)::uuid, 'inbound', $1, '+15550100', '1001', now() - interval '30 s',
                 now(), 30, 27, 'NORMAL_CLEARING')",
        &[&name],
    )
    .await?;
    if n.is_multiple_of(3) {
        let earlier = format!("{tag}-{}", n - 2);
        tx.execute(
            "UPDATE public.v_xml_cdr SET billsec = billsec + 1, hangup_cause = 'UPDATED'
              WHERE xml_cdr_uuid = md5($1)::uuid",
            &[&earlier],
        )
        .await?;
    }
    tx.commit().await
}

/// The writers' rows on `pg` (`caller_id_name` of every CDR they wrote).
fn writer_rows(pg: &PgServer) -> HashSet<String> {
    pg.psql(
        "fusionpbx",
        "SELECT caller_id_name FROM public.v_xml_cdr WHERE caller_id_name LIKE 'w%'",
    )
    .unwrap()
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Asserts that every acknowledged row is on `pg`.
fn assert_all_present(pg: &PgServer, acked: &HashSet<String>) {
    let rows = writer_rows(pg);
    let missing: Vec<&String> = acked.difference(&rows).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged commit(s) missing on {}, e.g. {:?}",
        missing.len(),
        pg.name(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
}

/// Reconnects and reads `status` until replication flows both ways (`within`); returns the
/// pair and a healthy status. A restarted publisher's subscriber reconnects only after
/// `wal_retrieve_retry_interval` (5 s by default), so this takes a few seconds.
///
/// The subscriber whose publisher was killed counts the lost connection as an apply error in
/// `pg_stat_subscription_stats`, a cumulative counter: `status` must call the pair healthy
/// anyway once changes flow (the count is a note, the apply state says flowing).
async fn wait_healthy(config: &ClusterConfig, within: Duration) -> (Pair, ReplicationStatus) {
    let started = Instant::now();
    loop {
        let last = match Pair::connect(config).await {
            Ok(pair) => match replication::status(&pair).await {
                Ok(st) if st.verdict == Verdict::Healthy => return (pair, st),
                Ok(st) => st.render(),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        assert!(
            started.elapsed() < within,
            "replication not healthy after {within:?}:\n{last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Healthy both ways, with a fresh heartbeat that crossed each way just now.
fn assert_flowing(st: &ReplicationStatus) {
    assert_eq!(st.verdict, Verdict::Healthy, "{}", st.render());
    let apply = st.conflicts.as_ref().expect("the apply state is read");
    assert!(
        apply
            .directions
            .iter()
            .all(|d| d.state == replication::conflicts::ApplyState::Flowing),
        "{}",
        st.render()
    );
    assert_eq!(st.directions.len(), 2);
    for d in &st.directions {
        assert!(d.enabled && d.worker_running, "{d:?}");
        assert!(d.slot.as_ref().is_some_and(|s| s.active), "{d:?}");
        for (what, secs) in [
            ("heartbeat lag", d.heartbeat_lag_s),
            ("last heartbeat age", d.last_heartbeat_age_s),
        ] {
            assert!(
                secs.is_some_and(|s| s < 5.0),
                "{} -> {}: {what} {secs:?} s",
                d.from,
                d.to
            );
        }
    }
}

/// SIGKILL of the postmaster (and its children) of `side` while both writers commit; the server
/// is started again (crash recovery) after `down`.
async fn kill_and_restart(lab: &mut LabPair, side: Side, writers: [&Writer; 2], down: Duration) {
    // Both writers are committing right now.
    for w in writers {
        w.wait_for_commits(50).await;
    }
    let killed = match side {
        Side::A => &writers[0],
        Side::B => &writers[1],
    };
    let errors_before = killed.errors();
    let pg = match side {
        Side::A => lab.a_mut(),
        Side::B => lab.b_mut(),
    };
    pg.kill_hard();
    assert!(!pg.is_running());
    // The other node keeps taking writes while this one is down.
    tokio::time::sleep(down).await;
    assert!(
        killed.errors() > errors_before,
        "the writer on {} noticed the kill",
        pg.name()
    );
    pg.start_again().expect("the server restarts after SIGKILL");
    // Its writer reconnects and commits again.
    killed.wait_for_commits(50).await;
}

async fn sigkill_mid_write(flavor: PgFlavor) {
    let (mut lab, config) = replicating_pair(flavor, "").await;
    let wa = Writer::start("wa", lab.a());
    let wb = Writer::start("wb", lab.b());

    kill_and_restart(&mut lab, Side::A, [&wa, &wb], Duration::from_secs(1)).await;
    kill_and_restart(&mut lab, Side::B, [&wa, &wb], Duration::from_secs(1)).await;
    // Both keep writing while replication resumes.
    wa.wait_for_commits(100).await;
    wb.wait_for_commits(100).await;
    let (errors_a, errors_b) = (wa.errors(), wb.errors());
    let acked_a = wa.finish().await;
    let acked_b = wb.finish().await;
    assert!(errors_a > 0 && errors_b > 0, "{errors_a} {errors_b}");
    eprintln!(
        "PostgreSQL {flavor}: {} + {} acknowledged commits, {errors_a} + {errors_b} writer errors",
        acked_a.len(),
        acked_b.len()
    );

    let t = Instant::now();
    let (pair, st) = wait_healthy(&config, Duration::from_secs(40)).await;
    eprintln!(
        "PostgreSQL {flavor}: healthy {:.1} s after the writers stopped",
        t.elapsed().as_secs_f64()
    );
    assert_flowing(&st);
    // The kills were counted as apply errors; healthy anyway, with the counts as notes.
    let counted: i64 = st.directions.iter().map(|d| d.apply_error_count).sum();
    eprintln!(
        "PostgreSQL {flavor}: {counted} apply error(s) counted; notes {:?}",
        st.notes
    );
    if counted > 0 {
        assert!(
            st.notes.iter().any(|n| n.contains("error(s) counted")),
            "{}",
            st.render()
        );
    }
    let v = replication::verify(&pair).await.unwrap();
    assert!(v.caught_up, "{}", v.render());
    assert!(v.clean(), "{}", v.render());
    // Every acknowledged commit of either writer is on both nodes, once (verify compared the
    // rows; these are the writers' own acknowledgements).
    for pg in [lab.a(), lab.b()] {
        assert_all_present(pg, &acked_a);
        assert_all_present(pg, &acked_b);
    }
    let cdrs = lab.sql_a("SELECT count(*) FROM public.v_xml_cdr WHERE caller_id_name LIKE 'w%'");
    assert_eq!(
        cdrs,
        lab.sql_b("SELECT count(*) FROM public.v_xml_cdr WHERE caller_id_name LIKE 'w%'")
    );
    let n: usize = cdrs.parse().unwrap();
    assert!(n >= acked_a.len() + acked_b.len(), "{n}");
    // Each writer's updates crossed too.
    assert_eq!(
        lab.sql_a("SELECT count(*) FROM public.v_xml_cdr WHERE hangup_cause = 'UPDATED'"),
        lab.sql_b("SELECT count(*) FROM public.v_xml_cdr WHERE hangup_cause = 'UPDATED'")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_write_on_postgresql_17() {
    sigkill_mid_write(PgFlavor::V17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_write_on_postgresql_18() {
    sigkill_mid_write(PgFlavor::V18).await;
}

/// A's slot for B as the tool's inventory reports it: (active, retained bytes).
async fn slot_on_a(pair: &Pair, slot: &str) -> (bool, i64) {
    let inv = pair.inventory(Side::A).await.unwrap();
    let s = inv
        .slots
        .iter()
        .find(|s| s.name == slot)
        .unwrap_or_else(|| panic!("no slot {slot} on a: {:?}", inv.slots));
    (
        s.active,
        s.retained_bytes.expect("a logical slot has a restart_lsn"),
    )
}

async fn node_b_down_then_catches_up(flavor: PgFlavor) {
    let (mut lab, config) = replicating_pair(flavor, "slot_max_retained = \"16MB\"").await;
    let slot = config.replication.subscription_a_to_b.clone();
    let pair = Pair::connect(&config).await.unwrap();
    let (active, _) = slot_on_a(&pair, &slot).await;
    assert!(active, "B streams from A before it is stopped");

    lab.b_mut().stop();
    // The gap: `status` (and `slot_safety`) need both nodes; with B down it fails (naming B)
    // instead of reporting A's side. A's slot is read from A alone: through A's inventory and
    // slot-safety reading of A.
    let err = replication::status(&pair).await.unwrap_err();
    assert!(err.to_string().contains("node b"), "{err}");

    // A's walsender for B ends: the slot goes inactive.
    let started = Instant::now();
    let mut before = slot_on_a(&pair, &slot).await;
    while before.0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "slot stays active"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        before = slot_on_a(&pair, &slot).await;
    }
    let restart_lsn = |lab: &LabPair| {
        lab.sql_a(&format!(
            "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'"
        ))
    };
    let lsn_before = restart_lsn(&lab);
    let wal_before = lab.sql_a("SELECT pg_current_wal_lsn()");

    // Writes on A while B is down: a writer committing, and a burst of CDRs (FS PBX writes one
    // per call) worth several WAL segments.
    let wa = Writer::start("wa", lab.a());
    wa.wait_for_commits(200).await;
    lab.sql_a(
        "INSERT INTO public.v_xml_cdr (xml_cdr_uuid, direction, caller_id_name, start_stamp, duration, billsec)
         SELECT md5('burst' || i)::uuid, 'outbound', 'burst-' || i, now(), i % 600, i % 600
           FROM generate_series(1, 100000) i;
         CHECKPOINT;",
    );
    wa.wait_for_commits(100).await;

    // The tool's inventory of A: inactive, and the WAL it keeps grew by what was written.
    let after = slot_on_a(&pair, &slot).await;
    assert!(!after.0, "the slot is inactive while B is down");
    assert!(
        after.1 - before.1 > 16 * 1024 * 1024,
        "retained {} -> {} bytes",
        before.1,
        after.1
    );
    // The server's own view, in one statement (one current LSN): the slot stayed put, so it
    // retains what it held when B stopped plus every byte of WAL written since.
    let row = lab.sql_a(&format!(
        "SELECT restart_lsn,
                pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8,
                pg_wal_lsn_diff(pg_current_wal_lsn(), '{wal_before}')::int8,
                pg_wal_lsn_diff('{wal_before}', restart_lsn)::int8
           FROM pg_replication_slots WHERE slot_name = '{slot}'"
    ));
    let f: Vec<&str> = row.split('|').collect();
    let num = |i: usize| f[i].parse::<i64>().unwrap();
    let (retained, advanced, held) = (num(1), num(2), num(3));
    assert_eq!(f[0], lsn_before, "the slot stayed put");
    assert!(
        advanced > 16 * 1024 * 1024,
        "{advanced} bytes of WAL written"
    );
    assert_eq!(retained, held + advanced, "{row}");
    assert!(
        retained >= after.1,
        "server {retained} bytes, tool {} bytes",
        after.1
    );
    // Slot safety from node A alone warns about it: inactive, above the configured limit,
    // and nothing (max_slot_wal_keep_size = -1) caps it.
    let a_slots = slots::read_slots(pair.pg(Side::A), "a").await.unwrap();
    let limit = i64::try_from(config.replication.slot_max_retained.bytes()).unwrap();
    let safety = slots::judge_slots(vec![a_slots], limit);
    let report = &safety.nodes[0].slots[0];
    assert_eq!(report.name, slot);
    assert!(
        !report.active && report.retained_bytes >= Some(after.1),
        "{report:?}"
    );
    assert_eq!(report.wal_status.as_deref(), Some("reserved"));
    let warned = |what: &str| {
        safety
            .warnings
            .iter()
            .any(|w| w.starts_with(&format!("node a: slot {slot}")) && w.contains(what))
    };
    assert!(warned("is inactive"), "{:?}", safety.warnings);
    assert!(
        warned("above replication.slot_max_retained"),
        "{:?}",
        safety.warnings
    );
    assert!(
        safety
            .warnings
            .iter()
            .any(|w| w.contains("max_slot_wal_keep_size is -1")),
        "{:?}",
        safety.warnings
    );
    // The server really keeps it: after a checkpoint the segment holding the slot's
    // restart_lsn is still on disk, and the server counts the slot's WAL as reserved.
    assert_eq!(
        lab.sql_a(&format!(
            "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '{slot}'"
        )),
        "reserved"
    );
    assert_eq!(
        lab.sql_a(&format!(
            "SELECT count(*) FROM pg_ls_waldir() WHERE name = pg_walfile_name('{lsn_before}')"
        )),
        "1"
    );
    let waldir: i64 = lab
        .sql_a("SELECT sum(size) FROM pg_ls_waldir()")
        .parse()
        .unwrap();
    assert!(
        waldir >= after.1,
        "{waldir} bytes in pg_wal, {} retained",
        after.1
    );

    // B comes back and catches up.
    lab.b_mut().start_again().expect("B restarts");
    let acked = wa.finish().await;
    let (pair, st) = wait_healthy(&config, Duration::from_secs(40)).await;
    assert_flowing(&st);
    let v = replication::verify(&pair).await.unwrap();
    assert!(v.clean(), "{}", v.render());
    assert_all_present(lab.b(), &acked);
    assert_eq!(
        lab.sql_b("SELECT count(*) FROM public.v_xml_cdr WHERE caller_id_name LIKE 'burst-%'"),
        "100000"
    );
    // A's slot moved on: once B confirmed what it applied, the slot lets the WAL go (a
    // checkpoint logs the running transactions the slot's restart point advances on).
    let started = Instant::now();
    loop {
        lab.sql_a("CHECKPOINT");
        let (active, retained) = slot_on_a(&pair, &slot).await;
        if active && retained < after.1 / 4 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "slot active {active}, still retains {retained} bytes after the catch-up ({} before)",
            after.1
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_b_down_then_catches_up_on_postgresql_17() {
    node_b_down_then_catches_up(PgFlavor::V17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_b_down_then_catches_up_on_postgresql_18() {
    node_b_down_then_catches_up(PgFlavor::V18).await;
}
