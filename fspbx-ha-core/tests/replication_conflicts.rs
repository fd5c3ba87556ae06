//! Fault "the same primary key inserted on both nodes", on real PostgreSQL 17 and 18 pairs from
//! the lab: replication set up both ways, the same uuid key and the same bigserial id written on
//! both nodes while the pair is partitioned (both subscriptions disabled), then reconnected so
//! both apply workers fail in a loop. Each test asserts what the servers and their logs say:
//! detection with table, key, LSN and both row versions, one remedy, and afterwards a healthy pair
//! (heartbeats crossing both ways) and `verify` clean where the remedy converges.

mod replication_support;

use std::time::{Duration, Instant};

use fspbx_ha_core::replication::conflicts::{
    self, ApplyState, ConflictOptions, Remedy, RemedyAction, ResolveOptions,
};
use fspbx_ha_core::replication::{self, Pair, Side, Verdict};
use fspbx_ha_lab::postgres::{PgFlavor, PgServer};
use replication_support::{LabPair, PairOptions, replicate_both_ways};

const KEY: &str = "7f2c0a4e-0000-4000-8000-000000000001";
const A_TO_B: &str = "fspbx_subscription_a_to_b";
const B_TO_A: &str = "fspbx_subscription_b_to_a";

const SCHEMA: &str = r#"
SET ROLE fusionpbx;
CREATE TABLE public.v_extensions (extension_uuid uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  extension text NOT NULL, description text);
CREATE TABLE public.jobs (id bigserial PRIMARY KEY, queue text NOT NULL, payload text NOT NULL);
RESET ROLE;
ALTER SYSTEM SET wal_retrieve_retry_interval = '300ms';
SELECT pg_reload_conf();
"#;

/// A pair replicating both ways with the two tables (empty), SSH usable (the log is read
/// through it).
async fn replicating_pair(flavor: PgFlavor) -> (LabPair, Pair) {
    let lab = LabPair::start(PairOptions {
        ssh: true,
        ..PairOptions::new(flavor)
    });
    lab.sql_a(SCHEMA);
    lab.sql_b(SCHEMA);
    let pair = replicate_both_ways(&lab.config("")).await;
    (lab, pair)
}

fn wait_no_worker(pg: &PgServer, sub: &str) {
    let started = Instant::now();
    while pg
        .psql(
            "fusionpbx",
            &format!(
                "SELECT count(*) FROM pg_stat_subscription w JOIN pg_subscription s ON s.oid = w.subid \
                 WHERE s.subname = '{sub}' AND w.pid IS NOT NULL"
            ),
        )
        .unwrap()
        != "0"
    {
        assert!(started.elapsed() < Duration::from_secs(10), "worker of {sub} never stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Partition (both subscriptions disabled), write `a_sql` on A and `b_sql` on B, reconnect.
fn conflict(lab: &LabPair, a_sql: &str, b_sql: &str) {
    lab.sql_b(&format!("ALTER SUBSCRIPTION {A_TO_B} DISABLE"));
    lab.sql_a(&format!("ALTER SUBSCRIPTION {B_TO_A} DISABLE"));
    wait_no_worker(lab.b(), A_TO_B);
    wait_no_worker(lab.a(), B_TO_A);
    lab.sql_a(a_sql);
    lab.sql_b(b_sql);
    lab.sql_b(&format!("ALTER SUBSCRIPTION {A_TO_B} ENABLE"));
    lab.sql_a(&format!("ALTER SUBSCRIPTION {B_TO_A} ENABLE"));
}

fn both_tables(node: &str) -> String {
    format!(
        "BEGIN; INSERT INTO public.v_extensions (extension_uuid, extension, description) \
         VALUES ('{KEY}', '1001', 'from {node}'); \
         INSERT INTO public.jobs (queue, payload) VALUES ('default', 'job from {node}'); COMMIT;"
    )
}

fn options() -> ConflictOptions {
    ConflictOptions {
        sample_interval: Duration::from_millis(800),
        read_log: true,
    }
}

/// Waits until `conflicts` sees both directions stuck with an error read from the log.
async fn both_stuck(pair: &Pair) -> conflicts::ConflictReport {
    let started = Instant::now();
    loop {
        let r = conflicts::conflicts(pair, &options()).await.unwrap();
        if r.directions.iter().all(|d| d.stuck() && d.error.is_some()) {
            status_says_stuck(pair).await;
            return r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "both directions never read as stuck:\n{}",
            r.render()
        );
    }
}

/// `replication status` with both directions stuck: broken, no heartbeat crossed, each
/// direction's apply state stuck, and a failing worker named with the way to its key.
async fn status_says_stuck(pair: &Pair) {
    let st = replication::status(pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Broken, "{}", st.render());
    let apply = st.conflicts.as_ref().expect("apply state read");
    assert_eq!(apply.stuck(), 2, "{}", st.render());
    for d in &apply.directions {
        let named = st.reasons.iter().any(|r| {
            r.starts_with(&format!("{} -> {}", d.from, d.to))
                && (r.contains("fails in a loop") || r.contains("is disabled"))
        });
        assert!(named, "{:?} not among the reasons:\n{}", d, st.render());
    }
}

/// Status healthy both ways (heartbeats crossed, counters reset), and the report clean.
async fn healthy_again(pair: &Pair) {
    let st = replication::status(pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Healthy, "{}", st.render());
    for d in &st.directions {
        assert!(d.heartbeat_lag_s.is_some(), "{d:?}");
    }
    let r = conflicts::conflicts(pair, &options()).await.unwrap();
    assert!(!r.any(), "{}", r.render());
    let s = conflicts::conflict_summary(pair).await.unwrap();
    assert_eq!(s.stuck(), 0, "{s:?}");
}

fn check_detection(r: &conflicts::ConflictReport, flavor: PgFlavor, states: [ApplyState; 2]) {
    for (d, mine, theirs, state) in [
        (&r.directions[0], "from b", "from a", states[0]),
        (&r.directions[1], "from a", "from b", states[1]),
    ] {
        assert_eq!(d.state, state, "{}", r.render());
        let e = d.error.as_ref().unwrap();
        assert_eq!(e.relation.as_deref(), Some("public.v_extensions"));
        assert_eq!(e.message_type, "INSERT");
        assert_eq!(
            e.key.as_ref().unwrap().text,
            format!("(extension_uuid)=({KEY})")
        );
        assert!(
            e.finish_lsn.as_deref().is_some_and(|l| l.contains('/')),
            "{e:?}"
        );
        assert!(e.remote_xid.is_some());
        assert_eq!(d.table.as_deref(), Some("\"public\".\"v_extensions\""));
        let rows = d.rows.as_ref().expect("both row versions read");
        assert!(
            rows.subscriber_row.as_deref().unwrap().contains(mine),
            "{rows:?}"
        );
        assert!(
            rows.publisher_row.as_deref().unwrap().contains(theirs),
            "{rows:?}"
        );
        let sample = d.sample.as_ref().unwrap();
        assert!(sample.apply_error_count > 0);
        match flavor {
            PgFlavor::V18 => {
                assert_eq!(e.kind.name(), "insert_exists");
                assert!(e.local_row.as_deref().unwrap().contains(mine), "{e:?}");
                assert!(
                    sample.conflicts.get("confl_insert_exists").copied() > Some(0),
                    "{sample:?}"
                );
            }
            _ => assert_eq!(e.kind.name(), "unique_violation"),
        }
    }
    let text = r.render();
    assert!(text.contains("from a") && text.contains("from b"), "{text}");
    let json = serde_json::to_string(r).unwrap();
    assert!(json.contains("finish_lsn"), "{json}");
}

/// Skip on both sides: each node keeps its own version (reported), replication flows again,
/// verify names exactly the two tables that now differ. B's subscription has
/// `disable_on_error`: it reads as disabled, and its plan enables it again.
async fn skip_both(flavor: PgFlavor) {
    let (lab, pair) = replicating_pair(flavor).await;
    lab.sql_b(&format!(
        "ALTER SUBSCRIPTION {A_TO_B} SET (disable_on_error = true)"
    ));
    conflict(&lab, &both_tables("a"), &both_tables("b"));
    let report = both_stuck(&pair).await;
    check_detection(&report, flavor, [ApplyState::Disabled, ApplyState::Failing]);
    assert!(
        report.directions[0].reasons[0].contains("disable_on_error"),
        "{}",
        report.render()
    );
    assert_eq!(
        conflicts::conflict_summary(&pair).await.unwrap().stuck(),
        2,
        "summary counts both"
    );

    for sub in [A_TO_B, B_TO_A] {
        let plan = conflicts::plan_resolution(&pair, sub, &Remedy::Skip, &options())
            .await
            .unwrap();
        let lsn = plan
            .conflict
            .error
            .as_ref()
            .unwrap()
            .finish_lsn
            .clone()
            .unwrap();
        assert_eq!(
            plan.steps[0].sql,
            format!("ALTER SUBSCRIPTION \"{sub}\" SKIP (lsn = '{lsn}')")
        );
        let text = plan.render();
        assert!(text.contains("from a") && text.contains("from b"), "{text}");
        let enables = plan.steps.iter().any(|s| s.sql.ends_with("ENABLE"));
        assert_eq!(enables, sub == A_TO_B, "{text}");
        // The plan alone changes nothing.
        let subscriber = if sub == A_TO_B { lab.b() } else { lab.a() };
        assert_eq!(
            subscriber
                .psql(
                    "fusionpbx",
                    &format!("SELECT subskiplsn FROM pg_subscription WHERE subname = '{sub}'")
                )
                .unwrap(),
            "0/0"
        );
        let out = conflicts::resolve(&pair, &plan, &ResolveOptions::default())
            .await
            .unwrap();
        assert!(out.resolved, "{:#?}", out.after);
        assert!(out.heartbeat_s.is_some());
    }
    healthy_again(&pair).await;
    // Each kept its own rows: exactly the two tables differ.
    assert!(lab.sql_a("SELECT description FROM public.v_extensions") == "from a");
    assert!(lab.sql_b("SELECT description FROM public.v_extensions") == "from b");
    let v = replication::verify(&pair).await.unwrap();
    let mut differ = v.differing.clone();
    differ.sort();
    assert_eq!(
        differ,
        ["\"public\".\"jobs\"", "\"public\".\"v_extensions\""],
        "{}",
        v.render()
    );
    // A re-sync of both tables on the flowing direction makes B's copies A's again.
    for table in ["public.v_extensions", "public.jobs"] {
        let remedy = Remedy::Resync {
            table: table.into(),
        };
        let plan = conflicts::plan_resolution(&pair, A_TO_B, &remedy, &options())
            .await
            .unwrap();
        assert_eq!(plan.lost_total, 1, "B's own row is listed: {:?}", plan.lost);
        let out = conflicts::resolve(&pair, &plan, &ResolveOptions::default())
            .await
            .unwrap();
        assert!(out.resolved && out.rows_copied == Some(1), "{out:#?}");
    }
    assert_eq!(
        lab.sql_b("SELECT description FROM public.v_extensions"),
        "from a"
    );
    let v = replication::verify(&pair).await.unwrap();
    assert!(v.clean(), "{}", v.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_on_both_nodes_skip_on_17() {
    skip_both(PgFlavor::V17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_on_both_nodes_skip_on_18() {
    skip_both(PgFlavor::V18).await;
}

/// Fix-row on B (B takes A's rows; its own are printed and deleted without replicating the
/// delete), skip on A (A keeps its rows): the pair converges and verify is clean.
async fn fix_row_then_skip(flavor: PgFlavor) {
    let (lab, pair) = replicating_pair(flavor).await;
    conflict(&lab, &both_tables("a"), &both_tables("b"));
    let report = both_stuck(&pair).await;
    check_detection(&report, flavor, [ApplyState::Failing, ApplyState::Failing]);

    // The failing transaction holds two conflicting rows: the first fix-row resolves the uuid
    // one, the re-check then reports the bigserial one.
    let plan = conflicts::plan_resolution(&pair, A_TO_B, &Remedy::FixRow, &options())
        .await
        .unwrap();
    assert_eq!(plan.steps[0].action, RemedyAction::Unreplicated);
    assert_eq!(
        plan.steps[0].sql,
        format!("DELETE FROM \"public\".\"v_extensions\" WHERE \"extension_uuid\" = '{KEY}'")
    );
    assert!(plan.lost[0].contains("from b"), "{:?}", plan.lost);
    // The re-check stops waiting once the worker failed twice more (not after the timeout).
    let out = conflicts::resolve(&pair, &plan, &ResolveOptions::default())
        .await
        .unwrap();
    assert!(
        !out.resolved,
        "the same transaction still conflicts on jobs"
    );
    assert!(out.heartbeat_s.is_none());
    let next = out
        .after
        .error
        .as_ref()
        .expect("the next conflict is reported");
    assert_eq!(next.relation.as_deref(), Some("public.jobs"));
    assert_eq!(next.key.as_ref().unwrap().text, "(id)=(1)");
    let rows = out.after.rows.as_ref().unwrap();
    assert!(
        rows.subscriber_row
            .as_deref()
            .unwrap()
            .contains("job from b")
    );
    assert!(
        rows.publisher_row
            .as_deref()
            .unwrap()
            .contains("job from a")
    );

    let plan = conflicts::plan_resolution(&pair, A_TO_B, &Remedy::FixRow, &options())
        .await
        .unwrap();
    assert!(plan.lost[0].contains("job from b"), "{:?}", plan.lost);
    let out = conflicts::resolve(&pair, &plan, &ResolveOptions::default())
        .await
        .unwrap();
    assert!(out.resolved, "{:#?}", out.after);
    assert_eq!(
        lab.sql_b("SELECT description FROM public.v_extensions"),
        "from a"
    );
    // B's deletes did not reach A (A's subscription is still stuck, but A's rows are there).
    assert_eq!(lab.sql_a("SELECT count(*) FROM public.jobs"), "1");

    let plan = conflicts::plan_resolution(&pair, B_TO_A, &Remedy::Skip, &options())
        .await
        .unwrap();
    let out = conflicts::resolve(&pair, &plan, &ResolveOptions::default())
        .await
        .unwrap();
    assert!(out.resolved, "{:#?}", out.after);
    healthy_again(&pair).await;
    // After A's worker resumed it passed B's unreplicated deletes: A still has its rows.
    assert_eq!(
        lab.sql_a("SELECT description FROM public.v_extensions"),
        "from a"
    );
    assert_eq!(lab.sql_a("SELECT payload FROM public.jobs"), "job from a");
    let v = replication::verify(&pair).await.unwrap();
    assert!(v.clean(), "{}", v.render());

    if flavor == PgFlavor::V18 {
        skipped_change_reported(&lab, &pair).await;
    }
}

/// PostgreSQL 18 logs a remote UPDATE of a row the subscriber lacks (`update_missing`) and goes
/// on: the direction flows and the change is reported as skipped, with table and key.
async fn skipped_change_reported(lab: &LabPair, pair: &Pair) {
    lab.sql_b(
        "SELECT pg_replication_origin_create('fspbx_ha_test');\n\
         SELECT pg_replication_origin_session_setup('fspbx_ha_test');\n\
         DELETE FROM public.jobs WHERE id = 1;\n\
         SELECT pg_replication_origin_session_reset();",
    );
    assert_eq!(lab.sql_a("SELECT count(*) FROM public.jobs"), "1");
    lab.sql_a("UPDATE public.jobs SET payload = 'updated on a' WHERE id = 1");
    let started = Instant::now();
    loop {
        let r = conflicts::conflicts(pair, &options()).await.unwrap();
        let d = &r.directions[0];
        if let Some(s) = d
            .skipped_changes
            .iter()
            .find(|s| s.kind.name() == "update_missing")
        {
            assert_eq!(d.state, ApplyState::Flowing, "{}", r.render());
            assert!(!r.any());
            assert_eq!(s.severity, "LOG");
            assert_eq!(s.message_type, "UPDATE");
            assert_eq!(s.relation.as_deref(), Some("public.jobs"));
            assert_eq!(s.key.as_ref().unwrap().text, "(id)=(1)");
            assert!(r.render().contains("skipped"), "{}", r.render());
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no update_missing reported:\n{}",
            r.render()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_on_both_nodes_fix_row_on_17() {
    fix_row_then_skip(PgFlavor::V17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_on_both_nodes_fix_row_on_18() {
    fix_row_then_skip(PgFlavor::V18).await;
}

/// Re-sync of the bigserial table on B from A (B's rows listed as lost; the emptying and the copy
/// not replicated back), skip on A: converged, verify clean, A's rows untouched.
async fn resync_then_skip(flavor: PgFlavor) {
    let (lab, pair) = replicating_pair(flavor).await;
    lab.sql_a("INSERT INTO public.jobs (id, queue, payload) SELECT i, 'q', 'old ' || i FROM generate_series(100, 149) i");
    lab.wait_for(lab.b(), "SELECT count(*) FROM public.jobs", "50");
    conflict(
        &lab,
        "INSERT INTO public.jobs (queue, payload) VALUES ('default', 'job from a')",
        "INSERT INTO public.jobs (queue, payload) VALUES ('default', 'job from b')",
    );
    let r = both_stuck(&pair).await;
    let d = &r.directions[0];
    assert_eq!(d.subscriber, Side::B);
    let e = d.error.as_ref().unwrap();
    assert_eq!(e.relation.as_deref(), Some("public.jobs"));
    assert_eq!(e.key.as_ref().unwrap().text, "(id)=(1)");

    // The versions of A's rows: a replicated delete and re-insert would give them new ones.
    let versions = "SELECT string_agg(xmin::text, ',' ORDER BY id) FROM public.jobs";
    let a_versions = lab.sql_a(versions);
    let remedy = Remedy::Resync {
        table: "public.jobs".into(),
    };
    let plan = conflicts::plan_resolution(&pair, A_TO_B, &remedy, &options())
        .await
        .unwrap();
    assert_eq!(plan.lost_total, 1, "{:?}", plan.lost);
    assert!(plan.lost[0].contains("job from b"));
    assert_eq!(
        lab.sql_b("SELECT count(*) FROM public.jobs"),
        "51",
        "plan changes nothing"
    );
    let out = conflicts::resolve(&pair, &plan, &ResolveOptions::default())
        .await
        .unwrap();
    assert!(out.resolved, "{:#?}", out.after);
    assert_eq!(out.rows_copied, Some(51));
    assert_eq!(
        lab.sql_b("SELECT payload FROM public.jobs WHERE id = 1"),
        "job from a"
    );
    let plan = conflicts::plan_resolution(&pair, B_TO_A, &Remedy::Skip, &options())
        .await
        .unwrap();
    assert!(
        conflicts::resolve(&pair, &plan, &ResolveOptions::default())
            .await
            .unwrap()
            .resolved
    );
    healthy_again(&pair).await;
    // A's worker has passed B's emptying and copy: neither came back to A (its rows are the
    // very same row versions).
    assert_eq!(lab.sql_a(versions), a_versions);
    assert_eq!(lab.sql_a("SELECT count(*) FROM public.jobs"), "51");
    assert_eq!(
        lab.sql_a("SELECT payload FROM public.jobs WHERE id = 1"),
        "job from a"
    );
    let v = replication::verify(&pair).await.unwrap();
    assert!(v.clean(), "{}", v.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_on_both_nodes_resync_on_17() {
    resync_then_skip(PgFlavor::V17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_key_on_both_nodes_resync_on_18() {
    resync_then_skip(PgFlavor::V18).await;
}
