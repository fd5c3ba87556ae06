//! Replication against real PostgreSQL pairs started by the lab (node A 127.0.0.2, node B
//! 127.0.0.3): plan, apply, status, row round trips, verify, idempotence and teardown on 17 and
//! 18, and every refusal and fault of issue 3. Assertions read what the servers say afterwards.

mod replication_support;

use std::sync::Mutex;
use std::time::Duration;

use fspbx_ha_core::Error;
use fspbx_ha_core::replication::{
    self, Action, ApplyObserver, CopyProgress, Intent, NoProgress, Pair, ReplicationPlan, Step,
    StepOutcome, StepResult, Verdict,
};
use fspbx_ha_lab::postgres::PgFlavor;
use replication_support::{LabPair, PairOptions, fspbx_schema_sql};

/// Records what apply reports.
#[derive(Default)]
struct Recorder {
    started: Mutex<Vec<String>>,
    finished: Mutex<Vec<(String, StepResult)>>,
    progress: Mutex<Vec<CopyProgress>>,
}

impl ApplyObserver for Recorder {
    fn step_started(&self, step: &Step, _index: usize, _total: usize) {
        self.started.lock().unwrap().push(step.id.clone());
    }
    fn step_finished(&self, _step: &Step, outcome: &StepOutcome) {
        self.finished
            .lock()
            .unwrap()
            .push((outcome.id.clone(), outcome.result));
    }
    fn copy_progress(&self, p: &CopyProgress) {
        self.progress.lock().unwrap().push(p.clone());
    }
}

fn ids(plan: &ReplicationPlan) -> Vec<String> {
    plan.steps.iter().map(|s| s.id.clone()).collect()
}

const CDR_ROWS: u32 = 300_000;

/// The whole of issue 3's "done when", on one PostgreSQL build.
async fn full_cycle(flavor: PgFlavor) {
    let lab = LabPair::start(PairOptions {
        ssh: true,
        a_via_ssh: true,
        ..PairOptions::new(flavor)
    });
    lab.sql_a(&fspbx_schema_sql(CDR_ROWS));
    let config = lab.config("");
    let mut pair = Pair::connect(&config)
        .await
        .expect("both nodes reachable (A through SSH)");

    // plan: everything, in FS PBX's order; nothing changes yet.
    let plan = pair.plan(&Intent::default()).await.unwrap();
    let steps = ids(&plan);
    for id in [
        "hba.a",
        "hba.b",
        "role.a",
        "role.b",
        "identity.a.public.device_phonebook",
        "schema.b",
        "heartbeat.a",
        "heartbeat.b",
        "publication.a",
        "publication.b",
        "subscription.b",
        "copy.b",
        "sequences.b",
        "subscription.a",
    ] {
        assert!(
            steps.contains(&id.to_string()),
            "{id} missing from {steps:?}"
        );
    }
    let pos = |id: &str| steps.iter().position(|s| s == id).unwrap();
    assert!(pos("subscription.b") < pos("copy.b") && pos("copy.b") < pos("sequences.b"));
    assert!(
        pos("sequences.b") < pos("subscription.a"),
        "A subscribes to B only after the copy"
    );
    let json = serde_json::to_string(&plan).unwrap();
    let human = plan.render();
    for text in [&json, &human] {
        assert!(
            !text.contains(&lab.repl_password),
            "the password leaked into the plan"
        );
        assert!(!text.contains(lab.a().password()) && !text.contains(lab.b().password()));
    }
    assert!(human.contains("password=<redacted>"), "{human}");
    assert_eq!(LabPair::leftovers(lab.a()), "0|0|0", "plan changes nothing");
    assert_eq!(
        lab.sql_b("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
        "0"
    );

    // apply, with progress.
    let rec = Recorder::default();
    let report = replication::apply(&mut pair, &plan, &rec)
        .await
        .expect("apply succeeds");
    // Every step ran but B's replica identity: the schema copy already carried it.
    let skipped: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| s.result == StepResult::AlreadyDone)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(
        skipped,
        ["identity.b.public.device_phonebook"],
        "{report:#?}"
    );
    let progress = rec.progress.lock().unwrap().clone();
    let last = progress.last().expect("copy progress was reported");
    assert_eq!(last.tables_done, last.tables_total);
    assert!(last.tables_total >= 57, "{last:?}");
    assert!(last.rows_total >= u64::from(CDR_ROWS), "{last:?}");
    assert!(last.bytes_total > 10_000_000, "{last:?}");
    // The server says: B has A's schema and rows, pg_hba has our block, B's sequences moved.
    assert_eq!(
        lab.sql_b("SELECT count(*) FROM public.v_xml_cdr"),
        CDR_ROWS.to_string()
    );
    assert_eq!(
        lab.sql_b(r#"SELECT count(*) FROM "Billing Data"."Call ""Detail"" Records""#),
        "500"
    );
    assert_eq!(
        lab.sql_b(
            "SELECT relreplident FROM pg_class WHERE oid = 'public.device_phonebook'::regclass"
        ),
        "f"
    );
    assert_eq!(
        lab.sql_b("SELECT last_value FROM public.jobs_id_seq"),
        "1000"
    );
    assert_eq!(
        lab.sql_b("SELECT last_value FROM public.invoice_number_seq"),
        "5000"
    );
    let hba = std::fs::read_to_string(lab.a().data_dir().join("pg_hba.conf")).unwrap();
    assert!(hba.starts_with("# BEGIN fspbx-ha\n"), "{hba}");
    assert!(
        hba.contains("host    fusionpbx    fspbx_replicator    127.0.0.3/32    scram-sha-256"),
        "{hba}"
    );
    assert_eq!(
        lab.sql_b("SELECT subname || ':' || suborigin || ':' || subenabled FROM pg_subscription"),
        "fspbx_subscription_a_to_b:none:true"
    );
    assert_eq!(
        lab.sql_a("SELECT subname || ':' || suborigin FROM pg_subscription"),
        "fspbx_subscription_b_to_a:none"
    );
    // The password is in neither server log.
    for pg in [lab.a(), lab.b()] {
        let log = std::fs::read_to_string(pg.log_file()).unwrap();
        assert!(
            !log.contains(&lab.repl_password),
            "{} logged the replication password",
            pg.name()
        );
    }

    // status: healthy both ways, with a heartbeat that crossed.
    let st = replication::status(&pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Healthy, "{}", st.render());
    assert_eq!(st.directions.len(), 2);
    for d in &st.directions {
        assert!(d.enabled && d.worker_running, "{d:?}");
        assert_eq!(d.tables_ready, d.tables_total);
        assert!(d.heartbeat_lag_s.is_some_and(|s| s < 5.0), "{d:?}");
        assert!(d.slot.as_ref().is_some_and(|s| s.active));
        let c = d.conninfo.as_deref().unwrap();
        assert!(
            c.contains("password=<redacted>") && !c.contains(&lab.repl_password),
            "{c}"
        );
        if flavor == PgFlavor::V18 {
            assert!(
                d.conflicts.contains_key("confl_insert_exists"),
                "PG 18 counters: {d:?}"
            );
        }
    }
    assert!(
        !serde_json::to_string(&st)
            .unwrap()
            .contains(&lab.repl_password)
    );

    // A row written on A is read on B, one written on B is read on A.
    lab.sql_a("INSERT INTO public.v_extensions (extensions_name) VALUES ('written on A')");
    lab.wait_for(
        lab.b(),
        "SELECT count(*) FROM public.v_extensions WHERE extensions_name = 'written on A'",
        "1",
    );
    lab.sql_b(r#"INSERT INTO "Billing Data"."it's a table" VALUES (1000, 'written on B')"#);
    lab.wait_for(
        lab.a(),
        r#"SELECT v FROM "Billing Data"."it's a table" WHERE k = 1000"#,
        "written on B",
    );
    // B's first insert into a bigserial table does not collide with a copied id.
    assert_eq!(
        lab.sql_b("INSERT INTO public.jobs (queue, payload, attempts, available_at, created_at) VALUES ('default', '{}', 0, 1, 1) RETURNING id"),
        "1001"
    );
    lab.wait_for(
        lab.a(),
        "SELECT count(*) FROM public.jobs WHERE id = 1001",
        "1",
    );
    // No loop: each row exists once on each side.
    assert_eq!(
        lab.sql_a(
            "SELECT count(*) FROM public.v_extensions WHERE extensions_name = 'written on A'"
        ),
        "1"
    );

    // verify: clean.
    let v = replication::verify(&pair).await.unwrap();
    assert!(v.clean(), "{}", v.render());
    assert!(v.caught_up);
    assert!(v.rows_compared > i64::from(CDR_ROWS), "{}", v.rows_compared);
    assert!(
        v.tables
            .iter()
            .any(|t| t.table == r#""Billing Data"."Call ""Detail"" Records""#)
    );

    // A second apply changes nothing.
    let again = pair.plan(&Intent::default()).await.unwrap();
    assert!(again.is_empty(), "{}", again.render());
    assert_eq!(again.adopted.len(), 4, "{:?}", again.adopted);
    let report = replication::apply(&mut pair, &again, &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.executed(), 0);
    // Re-running the first plan skips every step: each postcondition already holds.
    let rec = Recorder::default();
    let report = replication::apply(&mut pair, &plan, &rec).await.unwrap();
    assert_eq!(report.executed(), 0, "{report:#?}");
    assert!(
        rec.finished
            .lock()
            .unwrap()
            .iter()
            .all(|(_, r)| *r == StepResult::AlreadyDone)
    );

    // verify names a table that differs: a row deleted on B only (under a replication origin,
    // which the A<-B subscription with origin = none does not forward).
    lab.sql_b(
        "SELECT pg_replication_origin_create('fspbx_test_local');
         SELECT pg_replication_origin_session_setup('fspbx_test_local');
         DELETE FROM public.v_gateways WHERE gateways_description = 'row 7';",
    );
    let v = replication::verify(&pair).await.unwrap();
    assert_eq!(v.differing, [r#""public"."v_gateways""#], "{}", v.render());
    let t = v.tables.iter().find(|t| !t.equal).unwrap();
    assert_eq!((t.rows_a, t.rows_b), (Some(50), Some(49)));
    lab.sql_b("SELECT pg_replication_origin_drop('fspbx_test_local')");

    // teardown: dry run (the plan) first, then apply; nothing is left; a second one is empty.
    let down = pair.teardown_plan().await.unwrap();
    assert!(down.is_destructive());
    assert_eq!(
        LabPair::leftovers(lab.a()),
        "1|1|1",
        "the dry run changed nothing"
    );
    let report = replication::apply(&mut pair, &down, &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.executed(), down.steps.len());
    assert_eq!(LabPair::leftovers(lab.a()), "0|0|0");
    assert_eq!(LabPair::leftovers(lab.b()), "0|0|0");
    assert_eq!(
        lab.sql_a("SELECT count(*) FROM pg_namespace WHERE nspname = 'fspbx_ha'"),
        "0"
    );
    assert!(pair.teardown_plan().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cycle_on_postgresql_17() {
    full_cycle(PgFlavor::V17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cycle_on_postgresql_18() {
    full_cycle(PgFlavor::V18).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_15_is_refused() {
    let lab = LabPair::start(PairOptions {
        flavor_b: PgFlavor::Debian15,
        ..PairOptions::new(PgFlavor::V17)
    });
    let pair = Pair::connect(&lab.config("")).await.unwrap();
    let err = pair.plan(&Intent::default()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::ReplicationServerTooOld { ref node, needed: 16, .. } if node == "b"),
        "{err:?}"
    );
    assert!(
        text.contains("origin = none") && text.contains("PostgreSQL 16 or newer"),
        "{text}"
    );
    assert!(text.contains("PostgreSQL 15."), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_level_replica_is_refused_without_consent() {
    let lab = LabPair::start(PairOptions {
        wal_level_a: "replica".into(),
        ..PairOptions::new(PgFlavor::V17)
    });
    let pair = Pair::connect(&lab.config("")).await.unwrap();
    let err = pair.plan(&Intent::default()).await.unwrap_err();
    assert!(
        matches!(&err, Error::ReplicationRestartNeeded { node, step, .. } if node == "a" && step == "settings.a"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("wal_level = replica (needs logical)"),
        "{err}"
    );
    assert!(err.to_string().contains("--allow-restart"), "{err}");
    // With consent the plan sets it and restarts A, and changes nothing before apply.
    let mut intent = Intent::default();
    intent.allow_restart = true;
    let plan = pair.plan(&intent).await.unwrap();
    assert_eq!(&ids(&plan)[..2], ["settings.a", "restart.a"]);
    assert_eq!(lab.sql_a("SHOW wal_level"), "replica");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_names_the_node() {
    let lab = LabPair::start(PairOptions::new(PgFlavor::V17));
    let bad = lab.a().base_dir().join("wrong-password");
    std::fs::write(&bad, "not-the-password\n").unwrap();
    let mut config = lab.config("");
    config.nodes[1].postgres.password = fspbx_ha_core::SecretRef::file(&bad);
    let err = Pair::connect(&config).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("node b: cannot connect to PostgreSQL at fusionpbx@127.0.0.3"),
        "{text}"
    );
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("not-the-password"));
}

/// A step fails midway (node B cannot reach node A: wrong peer address), the error names node,
/// step and fix, the pair keeps what was done, and the next apply resumes and finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_failing_midway_then_apply_resumes() {
    let lab = LabPair::with_same_schema(PairOptions::new(PgFlavor::V17), 2_000);
    let mut config = lab.config("");
    config.nodes[0].peer_address = Some("127.0.0.9".parse().unwrap()); // nothing listens there
    let mut pair = Pair::connect(&config).await.unwrap();
    let plan = pair.plan(&Intent::default()).await.unwrap();
    let err = replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, Error::ReplicationStep { node, step, .. } if node == "b" && step == "subscription.b"),
        "{err:?}"
    );
    assert!(
        text.contains("could not connect to the publisher"),
        "{text}"
    );
    assert!(text.contains("apply again"), "{text}");
    assert!(!text.contains(&lab.repl_password));
    // What ran before stays: publications, heartbeat tables, the role; no subscription yet.
    assert_eq!(LabPair::leftovers(lab.a()), "0|1|0");
    assert_eq!(LabPair::leftovers(lab.b()), "0|1|0");

    // Fixed configuration: the new plan starts at the failed step.
    let config = lab.config("");
    let mut pair = Pair::connect(&config).await.unwrap();
    let plan = pair.plan(&Intent::default()).await.unwrap();
    assert_eq!(
        ids(&plan),
        ["subscription.b", "copy.b", "sequences.b", "subscription.a"]
    );
    let report = replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .unwrap();
    let ran: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| s.result == StepResult::Executed)
        .map(|s| s.id.as_str())
        .collect();
    // B's sequences were already at A's values (B ran the same inserts before its truncate).
    assert_eq!(
        ran,
        ["subscription.b", "copy.b", "subscription.a"],
        "{report:#?}"
    );
    let st = replication::status(&pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Healthy, "{}", st.render());
    assert!(replication::verify(&pair).await.unwrap().clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_subscription_with_other_options_is_reported() {
    let lab = LabPair::with_same_schema(PairOptions::new(PgFlavor::V17), 2_000);
    lab.sql_a("CREATE PUBLICATION fspbx_publication_a FOR ALL TABLES");
    lab.sql_b(&format!(
        "CREATE SUBSCRIPTION fspbx_subscription_a_to_b CONNECTION 'host=127.0.0.2 port={} dbname=fusionpbx user=postgres password={}' \
         PUBLICATION fspbx_publication_a WITH (copy_data = false, origin = any)",
        lab.a().port(),
        lab.a().password()
    ));
    let pair = Pair::connect(&lab.config("")).await.unwrap();
    let err = pair.plan(&Intent::default()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("node b: step subscription.b: subscription \"fspbx_subscription_a_to_b\" exists with other settings (origin = any"), "{text}");
    assert!(text.contains("SET (origin = none)"), "{text}");
    assert!(!text.contains(lab.a().password()), "{text}");
    // Fixing it as told makes it adoptable.
    lab.sql_b("ALTER SUBSCRIPTION fspbx_subscription_a_to_b SET (origin = none)");
    let plan = pair.plan(&Intent::default()).await.unwrap();
    assert!(
        plan.adopted
            .iter()
            .any(|a| a.starts_with("subscription fspbx_subscription_a_to_b on b")),
        "{:?}",
        plan.adopted
    );
    assert!(!ids(&plan).contains(&"subscription.b".to_string()));
}

/// A pair set up exactly as FS PBX's script does it (its names, its user, its options) is
/// recognized: nothing is recreated, the heartbeat is added and both subscriptions refreshed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fspbx_script_pair_is_adopted() {
    let lab = LabPair::with_same_schema(PairOptions::new(PgFlavor::V17), 2_000);
    lab.script_setup(Duration::from_secs(10));

    let mut pair = Pair::connect(&lab.config("")).await.unwrap();
    let plan = pair.plan(&Intent::default()).await.unwrap();
    assert_eq!(plan.adopted.len(), 4, "{:?}", plan.adopted);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("logs in as fusionpbx")),
        "{:?}",
        plan.notes
    );
    let steps = ids(&plan);
    assert!(
        !steps
            .iter()
            .any(|s| s.starts_with("subscription.") || s.starts_with("publication.")),
        "{steps:?}"
    );
    assert!(
        steps.contains(&"refresh.b".to_string()) && steps.contains(&"refresh.a".to_string()),
        "{steps:?}"
    );
    assert!(
        plan.render().contains("password=<redacted>")
            && !plan.render().contains(lab.a().password())
    );
    let oids_before = lab.sql_b("SELECT oid FROM pg_subscription");
    replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        lab.sql_b("SELECT oid FROM pg_subscription"),
        oids_before,
        "never recreated"
    );
    let st = replication::status(&pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Healthy, "{}", st.render());
    assert!(pair.plan(&Intent::default()).await.unwrap().is_empty());
    // The teardown plan of an adopted pair drops FS PBX's objects too, slots included.
    let down = pair.teardown_plan().await.unwrap();
    assert!(down.steps.iter().any(
        |s| matches!(&s.action, Action::DropSlot { slot } if slot == "fspbx_subscription_a_to_b")
    ));
}

/// Stops a postmaster that `pg_ctl restart` started behind the lab's back (its guard only
/// knows the old PID), also when the test fails.
struct RestartedServer {
    pg_ctl: std::path::PathBuf,
    data: std::path::PathBuf,
}

impl Drop for RestartedServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", fspbx_ha_lab::paths::LAB_USER, "--"])
            .arg(&self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "-s", "stop"])
            .status();
    }
}

/// With consent, `wal_level = replica` is set to logical and node A restarted over SSH with
/// the configured command; replication then comes up healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_level_replica_with_consent_restarts_and_replicates() {
    let lab = LabPair::start(PairOptions {
        wal_level_a: "replica".into(),
        ssh: true,
        ..PairOptions::new(PgFlavor::V17)
    });
    let _cleanup = RestartedServer {
        pg_ctl: lab.a().bin_dir().join("pg_ctl"),
        data: lab.a().data_dir(),
    };
    lab.sql_a(&fspbx_schema_sql(2_000));
    let restart = format!(
        "runuser -u {} -- {} -D {} -l {} -m fast -w -t 60 restart",
        fspbx_ha_lab::paths::LAB_USER,
        lab.a().bin_dir().join("pg_ctl").display(),
        lab.a().data_dir().display(),
        lab.a().log_file().display()
    );
    let config = lab.config(&format!("restart_command = {restart:?}"));
    let mut pair = Pair::connect(&config).await.unwrap();
    let mut intent = Intent::default();
    intent.allow_restart = true;
    let plan = pair.plan(&intent).await.unwrap();
    assert_eq!(&ids(&plan)[..2], ["settings.a", "restart.a"]);
    let report = replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .unwrap();
    assert_eq!(report.steps[1].result, StepResult::Executed);
    assert_eq!(lab.sql_a("SHOW wal_level"), "logical");
    let st = replication::status(&pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Healthy, "{}", st.render());
    assert!(pair.plan(&intent).await.unwrap().is_empty());
}

/// Node B holds rows (its own FS PBX install): refused without --destructive; with it, B's
/// tables are truncated before the copy. And a B whose schema differs gets A's schema (old
/// schemas dropped, over SSH) only with --destructive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_or_another_schema_on_b_need_the_destructive_flag() {
    let lab = LabPair::start(PairOptions {
        ssh: true,
        ..PairOptions::new(PgFlavor::V17)
    });
    let schema = fspbx_schema_sql(3_000);
    lab.sql_a(&schema);
    lab.sql_b(&schema); // same schema, and rows of its own
    lab.sql_b("CREATE TABLE public.b_only_table (id int PRIMARY KEY); INSERT INTO public.b_only_table VALUES (1)");
    let mut pair = Pair::connect(&lab.config("")).await.unwrap();

    // Another schema on B (one table more): refused, naming the table.
    let err = pair.plan(&Intent::default()).await.unwrap_err();
    assert!(
        matches!(&err, Error::ReplicationSchemaDiffers { node, step, .. } if node == "b" && step == "schema.b"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("1 table(s) only on b: public.b_only_table"),
        "{err}"
    );
    assert!(err.to_string().contains("--destructive"));

    // Same schema but rows on B: refused, naming how many tables.
    lab.sql_b("DROP TABLE public.b_only_table");
    let err = pair.plan(&Intent::default()).await.unwrap_err();
    assert!(
        matches!(&err, Error::ReplicationTargetHasData { node, count, .. } if node == "b" && *count >= 55),
        "{err:?}"
    );
    assert_eq!(
        lab.sql_b("SELECT count(*) FROM public.v_xml_cdr"),
        "3000",
        "refusal changed nothing"
    );

    // With consent: truncated, then copied; B's own rows are gone, A's are there.
    lab.sql_b("UPDATE public.v_domains SET domains_description = 'B''s own' WHERE domains_description = 'row 1'");
    let mut intent = Intent::default();
    intent.destructive = true;
    let plan = pair.plan(&intent).await.unwrap();
    assert!(
        plan.steps
            .iter()
            .any(|s| s.id == "truncate.b" && s.destructive)
    );
    replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        lab.sql_b("SELECT count(*) FROM public.v_domains WHERE domains_description = 'B''s own'"),
        "0"
    );
    assert!(replication::verify(&pair).await.unwrap().clean());
    let down = pair.teardown_plan().await.unwrap();
    replication::apply(&mut pair, &down, &NoProgress)
        .await
        .unwrap();

    // Different schema on B with rows: replaced by A's over SSH with --destructive.
    lab.sql_b(
        "CREATE SCHEMA legacy; CREATE TABLE legacy.old_cdr (id int PRIMARY KEY); INSERT INTO legacy.old_cdr VALUES (1);
         ALTER TABLE public.v_fax ADD COLUMN b_only text;",
    );
    let plan = pair.plan(&intent).await.unwrap();
    let step = plan
        .steps
        .iter()
        .find(|s| s.id == "schema.b")
        .expect("schema copy planned");
    assert!(step.destructive);
    let Action::CopySchema { drop_schemas, .. } = &step.action else {
        panic!("{step:?}")
    };
    assert_eq!(drop_schemas, &["Billing Data", "legacy", "public"]);
    replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .unwrap();
    assert_eq!(
        lab.sql_b("SELECT count(*) FROM pg_namespace WHERE nspname = 'legacy'"),
        "0"
    );
    assert_eq!(
        lab.sql_b("SELECT count(*) FROM information_schema.columns WHERE table_name = 'v_fax' AND column_name = 'b_only'"),
        "0"
    );
    assert_eq!(lab.sql_b("SELECT count(*) FROM public.v_xml_cdr"), "3000");
    let st = replication::status(&pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Healthy, "{}", st.render());
    assert!(replication::verify(&pair).await.unwrap().clean());
}
