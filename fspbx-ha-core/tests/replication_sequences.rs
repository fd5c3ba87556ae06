//! Sequence strategies against real PostgreSQL pairs (17 and 18) started by the lab.
//!
//! - interleave: applied to existing serial, bigserial and identity sequences (dry run first,
//!   then for real, then a re-run that changes nothing); then several tasks on BOTH nodes
//!   insert thousands of rows at once into the same tables: no duplicate key, no apply error
//!   on either subscription, both nodes converge (verify clean); a table created afterwards is
//!   reported as not compliant and interleaved by a second run; a switchover moves nothing.
//! - sync: nothing at rest; a switchover's move puts the target past the source plus the
//!   margin and an insert there does not collide; interleave is refused; a half-applied
//!   interleave is reported.

mod replication_support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use fspbx_ha_core::Error;
use fspbx_ha_core::config::{ClusterConfig, SequenceStrategy};
use fspbx_ha_core::replication::sequences::InterleaveAction;
use fspbx_ha_core::replication::{self, Intent, NoProgress, Pair, Side, Verdict};
use fspbx_ha_lab::postgres::PgFlavor;
use replication_support::{LabPair, PairOptions};

/// Tables with the three kinds of owned sequences, 500 rows on A (B gets them by the copy).
const SCHEMA: &str = "
CREATE TABLE public.orders (id bigserial PRIMARY KEY, node text NOT NULL, task int, n int);
CREATE TABLE public.events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, node text NOT NULL);
CREATE TABLE public.migrations (id serial PRIMARY KEY, migration text NOT NULL);";

const ROWS_ON_A: &str = "
INSERT INTO public.orders (node, task, n) SELECT 'a', 0, i FROM generate_series(1, 500) i;
INSERT INTO public.events (node) SELECT 'a' FROM generate_series(1, 500);
INSERT INTO public.migrations (migration) SELECT 'm' || i FROM generate_series(1, 120) i;";

/// A pair with the schema on both nodes, rows on A, replication set up both ways.
async fn replicated_pair(flavor: PgFlavor, strategy: SequenceStrategy) -> (LabPair, Pair) {
    let lab = LabPair::start(PairOptions::new(flavor));
    lab.sql_a(SCHEMA);
    lab.sql_a(ROWS_ON_A);
    lab.sql_b(SCHEMA);
    let mut config = lab.config("");
    config.replication.sequences.strategy = strategy;
    let mut pair = Pair::connect(&config).await.unwrap();
    let plan = pair.plan(&Intent::default()).await.unwrap();
    replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .unwrap();
    (lab, pair)
}

/// `increment|next value` of a sequence as the server says (`pg_sequence` and the relation).
fn seq_state(lab: &LabPair, side: Side, seq: &str) -> (i64, i64) {
    let sql = format!(
        "SELECT s.seqincrement || '|' || CASE WHEN v.is_called THEN v.last_value + s.seqincrement \
         ELSE v.last_value END FROM pg_sequence s, public.{seq} v WHERE s.seqrelid = 'public.{seq}'::regclass"
    );
    let out = match side {
        Side::A => lab.sql_a(&sql),
        Side::B => lab.sql_b(&sql),
    };
    let (i, n) = out.split_once('|').unwrap();
    (i.parse().unwrap(), n.parse().unwrap())
}

/// Apply errors counted by `side`'s subscription.
fn apply_errors(lab: &LabPair, side: Side) -> i64 {
    let sql = "SELECT coalesce(sum(apply_error_count + sync_error_count), 0) FROM pg_stat_subscription_stats";
    match side {
        Side::A => lab.sql_a(sql),
        Side::B => lab.sql_b(sql),
    }
    .parse()
    .unwrap()
}

/// `tasks` tasks inserting `rows` rows each, one statement per row, on node `side`.
async fn insert_concurrently(
    config: &ClusterConfig,
    side: Side,
    tasks: usize,
    rows: usize,
) -> Vec<tokio::task::JoinHandle<Vec<i64>>> {
    let idx = side.index();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let node = config.nodes[idx].clone();
        handles.push(tokio::spawn(async move {
            let conn = fspbx_ha_core::pg::connect(&format!("nodes[{idx}]"), &node, None)
                .await
                .unwrap();
            let mut ids = Vec::with_capacity(rows);
            for n in 0..rows {
                let id: i64 = conn
                    .client()
                    .query_one(
                        "INSERT INTO public.orders (node, task, n) VALUES ($1, $2, $3) RETURNING id",
                        &[&node.name, &(task as i32), &(n as i32)],
                    )
                    .await
                    .unwrap()
                    .get(0);
                conn.client()
                    .execute(
                        "INSERT INTO public.events (node) VALUES ($1)",
                        &[&node.name],
                    )
                    .await
                    .unwrap();
                ids.push(id);
            }
            ids
        }));
    }
    handles
}

async fn interleave_under_concurrent_writes(flavor: PgFlavor) {
    let (lab, pair) = replicated_pair(flavor, SequenceStrategy::Interleave).await;

    // Not interleaved yet: status says so and degrades.
    let c = replication::check_sequences(&pair).await.unwrap();
    assert_eq!(c.owned, [3, 3]);
    assert!(!c.compliant && c.problems.len() == 6, "{c:#?}");
    let st = replication::status(&pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Degraded, "{}", st.render());
    assert!(
        st.reasons
            .iter()
            .any(|r| r.contains("do not comply with strategy interleave")),
        "{:?}",
        st.reasons
    );

    // Dry run: every sequence of both nodes planned, nothing changed.
    let before = seq_state(&lab, Side::B, "orders_id_seq");
    let dry = replication::interleave(&pair, true).await.unwrap();
    assert!(!dry.applied);
    assert_eq!(dry.restarts().count(), 6, "{}", dry.render());
    assert_eq!(seq_state(&lab, Side::B, "orders_id_seq"), before);

    // Apply: A odd, B even, above everything either node holds.
    let done = replication::interleave(&pair, false).await.unwrap();
    assert!(done.applied);
    println!("{}", done.render());
    for (seq, max) in [
        ("orders_id_seq", 500),
        ("events_id_seq", 500),
        ("migrations_id_seq", 120),
    ] {
        let (inc_a, next_a) = seq_state(&lab, Side::A, seq);
        let (inc_b, next_b) = seq_state(&lab, Side::B, seq);
        assert_eq!((inc_a, inc_b), (2, 2), "{seq}");
        assert!(next_a > max && next_a % 2 == 1, "{seq}: A next {next_a}");
        assert!(next_b > max && next_b % 2 == 0, "{seq}: B next {next_b}");
    }
    // The identity column was altered through its table (still GENERATED ALWAYS).
    assert_eq!(
        lab.sql_b(
            "SELECT attidentity FROM pg_attribute WHERE attrelid = 'public.events'::regclass AND attname = 'id'"
        ),
        "a"
    );

    // Idempotent: a re-run changes nothing.
    let state: Vec<(i64, i64)> = ["orders_id_seq", "events_id_seq"]
        .iter()
        .flat_map(|s| [seq_state(&lab, Side::A, s), seq_state(&lab, Side::B, s)])
        .collect();
    let again = replication::interleave(&pair, false).await.unwrap();
    assert!(again.is_noop(), "{}", again.render());
    assert!(
        again
            .changes
            .iter()
            .all(|c| c.action == InterleaveAction::Keep)
    );
    let after: Vec<(i64, i64)> = ["orders_id_seq", "events_id_seq"]
        .iter()
        .flat_map(|s| [seq_state(&lab, Side::A, s), seq_state(&lab, Side::B, s)])
        .collect();
    assert_eq!(state, after, "a re-run moved a sequence");

    // Both nodes write at once: 4 tasks each, 750 rows each into orders and events.
    let started = Instant::now();
    let config = pair.config().clone();
    let mut handles = insert_concurrently(&config, Side::A, 4, 750).await;
    handles.extend(insert_concurrently(&config, Side::B, 4, 750).await);
    let mut ids: Vec<(usize, i64)> = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let side = if i < 4 { 0 } else { 1 };
        ids.extend(h.await.unwrap().into_iter().map(|id| (side, id)));
    }
    let wrote = started.elapsed();
    assert_eq!(ids.len(), 6000);
    // Each node drew from its own class only, and no id was drawn twice.
    assert!(
        ids.iter()
            .all(|(side, id)| id.rem_euclid(2) == (1 - *side as i64))
    );
    let unique: HashSet<i64> = ids.iter().map(|(_, id)| *id).collect();
    assert_eq!(unique.len(), 6000, "an id was drawn twice");

    // Both nodes converge: 6500 rows each in orders and events, verify clean.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = replication::verify(&pair).await.unwrap();
        let counts = (
            lab.sql_a("SELECT count(*) FROM public.orders"),
            lab.sql_b("SELECT count(*) FROM public.orders"),
            lab.sql_a("SELECT count(*) FROM public.events"),
            lab.sql_b("SELECT count(*) FROM public.events"),
        );
        if v.clean() && counts == ("6500".into(), "6500".into(), "6500".into(), "6500".into()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence: {counts:?}\n{}",
            v.render()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let converged = started.elapsed();
    println!(
        "PG{}: 6000 rows + 6000 identity rows written on both nodes in {:.2} s, converged after {:.2} s",
        flavor.major(),
        wrote.as_secs_f64(),
        converged.as_secs_f64()
    );
    // No subscription ever hit an error (a duplicate key would count here and stall it).
    assert_eq!(apply_errors(&lab, Side::A), 0);
    assert_eq!(apply_errors(&lab, Side::B), 0);
    let st = replication::status(&pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Healthy, "{}", st.render());
    let c = st.sequences.as_ref().unwrap();
    assert!(c.compliant && c.strategy == "interleave", "{c:?}");

    // With interleave a switchover has nothing to move.
    let moves = replication::move_sequences(&pair, Side::B, Side::A, 1000, true)
        .await
        .unwrap();
    assert!(moves.is_empty(), "{moves:#?}");

    // A table created after the interleave is not compliant until the next run.
    let late = SCHEMA
        .replace("orders", "late_orders")
        .replace("public.events", "public.late_events")
        .replace("public.migrations", "public.late_migrations");
    lab.sql_a(&late);
    lab.sql_b(&late);
    let c = replication::check_sequences(&pair).await.unwrap();
    assert!(!c.compliant && c.problems.len() == 6, "{c:#?}");
    assert!(c.problems[0].contains("late_"), "{:?}", c.problems);
    // ... a switchover would move those (sync fallback) ...
    let moves = replication::move_sequences(&pair, Side::B, Side::A, 1000, true)
        .await
        .unwrap();
    assert!(
        moves.iter().all(|m| m.sequence.contains("late_")),
        "{moves:#?}"
    );
    // ... and a second run interleaves them only, a table that exists on A alone included (it
    // is locked on A only).
    lab.sql_a("CREATE TABLE public.late_only_a (id bigserial PRIMARY KEY)");
    let second = replication::interleave(&pair, false).await.unwrap();
    assert_eq!(second.restarts().count(), 7, "{}", second.render());
    assert_eq!(seq_state(&lab, Side::A, "late_only_a_id_seq"), (2, 1));
    assert!(second.restarts().all(|c| c.sequence.contains("late_")));
    assert!(replication::check_sequences(&pair).await.unwrap().compliant);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleave_under_concurrent_writes_on_postgresql_17() {
    interleave_under_concurrent_writes(PgFlavor::V17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleave_under_concurrent_writes_on_postgresql_18() {
    interleave_under_concurrent_writes(PgFlavor::V18).await;
}

async fn sync_strategy(flavor: PgFlavor) {
    let (lab, pair) = replicated_pair(flavor, SequenceStrategy::Sync).await;
    lab.sql_a("INSERT INTO public.orders (node) SELECT 'a' FROM generate_series(1, 100)");
    lab.wait_for(lab.b(), "SELECT count(*) FROM public.orders", "600");

    // Nothing to comply with at rest; interleave is refused (it would fight the moves).
    let c = replication::check_sequences(&pair).await.unwrap();
    assert!(
        c.compliant && c.strategy == "sync" && c.margin == Some(1000),
        "{c:?}"
    );
    match replication::interleave(&pair, true).await {
        Err(e @ Error::SequenceStrategy { .. }) => {
            assert!(
                e.to_string().contains("replication.sequences.strategy"),
                "{e}"
            )
        }
        other => panic!("expected SequenceStrategy, got {other:?}"),
    }

    // Sync before a switchover to B: B's sequences go past A's last values + the margin.
    let (_, a_next) = seq_state(&lab, Side::A, "orders_id_seq");
    let moves = replication::move_sequences(&pair, Side::B, Side::A, 1000, false)
        .await
        .unwrap();
    let m = moves
        .iter()
        .find(|m| m.sequence == "\"public\".\"orders_id_seq\"")
        .expect("orders moved");
    assert_eq!((m.source, m.after), (a_next - 1, a_next - 1 + 1000));
    let (_, b_next) = seq_state(&lab, Side::B, "orders_id_seq");
    assert_eq!(b_next, a_next + 1000);
    // B takes writes: no collision with A's rows, nothing stuck on A.
    lab.sql_b("INSERT INTO public.orders (node) SELECT 'b' FROM generate_series(1, 50)");
    lab.wait_for(lab.a(), "SELECT count(*) FROM public.orders", "650");
    assert_eq!(apply_errors(&lab, Side::A), 0);
    assert_eq!(apply_errors(&lab, Side::B), 0);
    assert!(replication::verify(&pair).await.unwrap().clean());
    // A second move changes nothing (never down, already past).
    assert!(
        replication::move_sequences(&pair, Side::B, Side::A, 1000, false)
            .await
            .unwrap()
            .iter()
            .all(|m| m.sequence != "\"public\".\"orders_id_seq\"")
    );

    // A half-applied interleave under sync is reported.
    lab.sql_b("ALTER SEQUENCE public.orders_id_seq INCREMENT BY 2");
    let c = replication::check_sequences(&pair).await.unwrap();
    assert!(!c.compliant, "{c:?}");
    assert!(
        c.problems[0].contains("increment 1 on node a but 2 on node b"),
        "{:?}",
        c.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_strategy_on_postgresql_17() {
    sync_strategy(PgFlavor::V17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_strategy_on_postgresql_18() {
    sync_strategy(PgFlavor::V18).await;
}
