//! Schema drift, subscription refresh and slot safety against real PostgreSQL pairs (17 and
//! 18) started by the lab. Assertions read what the servers say afterwards.
//!
//! - drift: a column added on A, a table created on B, a replica identity changed on B: the
//!   diff says exactly that (and nothing else); `status` degrades and names it; fixing the
//!   schema clears it.
//! - refresh: a table published but absent on the subscriber blocks the refresh (nothing runs);
//!   once both nodes have it, both subscriptions lack it ("refresh needed"), a dry run changes
//!   nothing, the refresh adds it and a row crosses both ways.
//! - slots: a disabled subscription leaves its slot inactive on the publisher and retaining
//!   WAL past a small `slot_max_retained`: status warns (naming the node, the slot and the
//!   limit) and shows `max_slot_wal_keep_size` and `wal_status`.

mod replication_support;

use fspbx_ha_core::Error;
use fspbx_ha_core::config::ByteSize;
use fspbx_ha_core::replication::drift::DriftChange;
use fspbx_ha_core::replication::{self, Intent, NoProgress, Pair, Verdict};
use fspbx_ha_lab::postgres::PgFlavor;
use replication_support::{LabPair, PairOptions};

const SCHEMA: &str = "
CREATE TABLE public.v_users (user_uuid uuid PRIMARY KEY, username text NOT NULL, email varchar(255));
CREATE TABLE public.jobs (id bigserial PRIMARY KEY, queue varchar(255) NOT NULL, payload text);
CREATE TABLE public.device_phonebook (device_uuid uuid, phonebook_name text);
ALTER TABLE public.device_phonebook REPLICA IDENTITY FULL;
INSERT INTO public.v_users SELECT md5(i::text)::uuid, 'user' || i FROM generate_series(1, 20) i;";

async fn replicated_pair(flavor: PgFlavor) -> (LabPair, Pair) {
    let lab = LabPair::start(PairOptions::new(flavor));
    lab.sql_a(SCHEMA);
    lab.sql_b(&SCHEMA.replace("INSERT INTO", "-- "));
    let mut pair = Pair::connect(&lab.config("")).await.unwrap();
    let plan = pair.plan(&Intent::default()).await.unwrap();
    replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .unwrap();
    (lab, pair)
}

async fn drift_and_refresh(flavor: PgFlavor) {
    let (lab, pair) = replicated_pair(flavor).await;

    // A fresh pair: no drift, nothing to refresh, status healthy.
    let d = replication::drift(&pair).await.unwrap();
    assert!(d.clean(), "{}", d.render());
    let st = replication::status(&pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Healthy, "{}", st.render());

    // Drift: a column on A, a table on B, a replica identity on B.
    lab.sql_a("ALTER TABLE public.v_users ADD COLUMN nickname text");
    lab.sql_b("CREATE TABLE public.new_b (id uuid PRIMARY KEY, label text)");
    lab.sql_b("ALTER TABLE public.jobs REPLICA IDENTITY FULL");
    let d = replication::drift(&pair).await.unwrap();
    let got: Vec<(String, Vec<DriftChange>)> = d
        .tables
        .iter()
        .map(|t| (t.table.clone(), t.changes.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "\"public\".\"jobs\"".to_string(),
                vec![DriftChange::ReplicaIdentityChanged {
                    a: "default".into(),
                    b: "full".into()
                }]
            ),
            (
                "\"public\".\"new_b\"".to_string(),
                vec![DriftChange::OnlyOn { node: "b".into() }]
            ),
            (
                "\"public\".\"v_users\"".to_string(),
                vec![DriftChange::ColumnOnlyOn {
                    column: "nickname".into(),
                    data_type: "text".into(),
                    node: "a".into()
                }]
            ),
        ],
        "{}",
        d.render()
    );
    // B publishes new_b (FOR ALL TABLES) but A does not have it: absent, not refreshable.
    let b_to_a = &d.subscriptions[1];
    assert_eq!(b_to_a.subscriber, "a");
    assert_eq!(b_to_a.absent, ["public.new_b"]);
    assert!(b_to_a.missing.is_empty());
    let text = d.render();
    println!("{text}");
    assert!(
        text.contains("column \"nickname\" (text) only on a"),
        "{text}"
    );
    assert!(
        text.contains("replica identity default on a but full on b"),
        "{text}"
    );
    let st = replication::status(&pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Degraded, "{}", st.render());
    assert!(
        st.reasons
            .iter()
            .any(|r| r.starts_with("schema drift in 3 table(s)")),
        "{:?}",
        st.reasons
    );

    // The refresh is refused while A lacks new_b; nothing ran.
    match replication::refresh_subscriptions(&pair, false).await {
        Err(e @ Error::RefreshBlocked { .. }) => {
            let m = e.to_string();
            assert!(
                m.starts_with("node a: subscription fspbx_subscription_b_to_a"),
                "{m}"
            );
            assert!(m.contains("public.new_b"), "{m}");
        }
        other => panic!("expected RefreshBlocked, got {other:?}"),
    }

    // Both nodes get new_b: now both subscriptions lack it (refresh needed).
    lab.sql_a("CREATE TABLE public.new_b (id uuid PRIMARY KEY, label text)");
    let d = replication::drift(&pair).await.unwrap();
    let needing: Vec<(&str, &[String])> = d
        .refresh_needed()
        .iter()
        .map(|s| (s.subscriber.as_str(), s.missing.as_slice()))
        .collect();
    assert_eq!(
        needing,
        [
            ("b", &["public.new_b".to_string()][..]),
            ("a", &["public.new_b".to_string()][..])
        ]
    );
    let st = replication::status(&pair).await.unwrap();
    assert!(
        st.reasons
            .iter()
            .any(|r| r.contains("not subscribed yet (public.new_b)")),
        "{:?}",
        st.reasons
    );

    // Dry run: the statements, nothing changed.
    let dry = replication::refresh_subscriptions(&pair, true)
        .await
        .unwrap();
    assert!(dry.subscriptions.iter().all(|s| !s.done));
    assert_eq!(
        dry.subscriptions[0].statement.as_deref(),
        Some(
            "ALTER SUBSCRIPTION \"fspbx_subscription_a_to_b\" REFRESH PUBLICATION WITH (copy_data = false)"
        )
    );
    assert_eq!(
        replication::drift(&pair)
            .await
            .unwrap()
            .refresh_needed()
            .len(),
        2
    );

    // The refresh: both subscriptions include new_b, a row crosses each way.
    let done = replication::refresh_subscriptions(&pair, false)
        .await
        .unwrap();
    assert!(
        done.subscriptions.iter().all(|s| s.done),
        "{}",
        done.render()
    );
    let d = replication::drift(&pair).await.unwrap();
    assert!(d.refresh_needed().is_empty(), "{}", d.render());
    lab.wait_for(
        lab.b(),
        "SELECT count(*) FROM pg_subscription_rel WHERE srrelid = 'public.new_b'::regclass AND srsubstate = 'r'",
        "1",
    );
    lab.sql_a("INSERT INTO public.new_b VALUES ('00000000-0000-0000-0000-00000000000a', 'from a')");
    lab.sql_b("INSERT INTO public.new_b VALUES ('00000000-0000-0000-0000-00000000000b', 'from b')");
    lab.wait_for(lab.b(), "SELECT count(*) FROM public.new_b", "2");
    lab.wait_for(lab.a(), "SELECT count(*) FROM public.new_b", "2");

    // Fixing the schema clears the drift.
    lab.sql_b("ALTER TABLE public.v_users ADD COLUMN nickname text");
    lab.sql_b("ALTER TABLE public.jobs REPLICA IDENTITY DEFAULT");
    let d = replication::drift(&pair).await.unwrap();
    assert!(d.clean(), "{}", d.render());
    let st = replication::status(&pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Healthy, "{}", st.render());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_and_refresh_on_postgresql_17() {
    drift_and_refresh(PgFlavor::V17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_and_refresh_on_postgresql_18() {
    drift_and_refresh(PgFlavor::V18).await;
}

async fn slot_warnings(flavor: PgFlavor) {
    let (lab, _) = replicated_pair(flavor).await;
    // A small limit, and a cap on A so that wal_status/safe_wal_size are meaningful.
    let mut config = lab.config("");
    config.replication.slot_max_retained = ByteSize(64 * 1024);
    lab.sql_a("ALTER SYSTEM SET max_slot_wal_keep_size = '256MB'");
    lab.sql_a("SELECT pg_reload_conf()");
    let pair = Pair::connect(&config).await.unwrap();

    // B's subscription stops: A's slot goes inactive while A keeps writing.
    lab.sql_b("ALTER SUBSCRIPTION fspbx_subscription_a_to_b DISABLE");
    lab.wait_for(
        lab.a(),
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'fspbx_subscription_a_to_b'",
        "f",
    );
    lab.sql_a("INSERT INTO public.jobs (queue, payload) SELECT 'q', repeat('x', 500) FROM generate_series(1, 2000)");
    let st = replication::status(&pair).await.unwrap();
    let slots = st.slots.as_ref().expect("slots read");
    let a = &slots.nodes[0];
    assert_eq!(a.node, "a");
    assert_eq!(a.max_slot_wal_keep_size, "256MB");
    assert_eq!(a.max_slot_wal_keep_bytes, Some(256 << 20));
    let s = a
        .slots
        .iter()
        .find(|s| s.name == "fspbx_subscription_a_to_b")
        .unwrap();
    assert!(!s.active);
    assert!(s.retained_bytes.unwrap() > 64 * 1024, "{s:?}");
    assert!(
        matches!(s.wal_status.as_deref(), Some("reserved" | "extended")),
        "{s:?}"
    );
    assert!(
        s.safe_wal_size.is_some(),
        "capped: safe_wal_size is known ({s:?})"
    );
    assert!(s.inactive_since.is_some(), "PostgreSQL 17+ says since when");
    let w = slots.warnings.join("\n");
    assert!(
        w.contains("node a: slot fspbx_subscription_a_to_b is inactive since"),
        "{w}"
    );
    assert!(
        w.contains("above replication.slot_max_retained (64.0 kB)"),
        "{w}"
    );
    assert!(
        !w.contains("max_slot_wal_keep_size is -1"),
        "A is capped: {w}"
    );
    assert!(st.verdict != Verdict::Healthy);
    let text = st.render();
    assert!(text.contains("max_slot_wal_keep_size = 256MB"), "{text}");
    assert!(text.contains("invalidates"), "{text}");

    // Uncapped B: the warning says the disk can fill.
    lab.sql_a("ALTER SUBSCRIPTION fspbx_subscription_b_to_a DISABLE");
    lab.wait_for(
        lab.b(),
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'fspbx_subscription_b_to_a'",
        "f",
    );
    let st = replication::status(&pair).await.unwrap();
    let w = st.slots.as_ref().unwrap().warnings.join("\n");
    assert!(w.contains("node b: max_slot_wal_keep_size is -1"), "{w}");

    // Back on: the slots are active again and the warnings go.
    lab.sql_b("ALTER SUBSCRIPTION fspbx_subscription_a_to_b ENABLE");
    lab.sql_a("ALTER SUBSCRIPTION fspbx_subscription_b_to_a ENABLE");
    lab.wait_for(lab.b(), "SELECT count(*) FROM public.jobs", "2000");
    lab.wait_for(
        lab.a(),
        "SELECT bool_and(active) FROM pg_replication_slots",
        "t",
    );
    let mut config = config.clone();
    config.replication.slot_max_retained = ByteSize(1 << 30);
    let pair = Pair::connect(&config).await.unwrap();
    let st = replication::status(&pair).await.unwrap();
    assert!(
        st.slots.as_ref().unwrap().warnings.is_empty(),
        "{}",
        st.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_warnings_on_postgresql_17() {
    slot_warnings(PgFlavor::V17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_warnings_on_postgresql_18() {
    slot_warnings(PgFlavor::V18).await;
}
