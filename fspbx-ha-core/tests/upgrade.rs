//! `fspbx-ha upgrade` against the lab's real pair (node A 127.0.0.2, node B 127.0.0.3, both
//! directions replicating, SSH on). The FS PBX commands are replaced by the lab's: a small
//! Laravel-like migrator in shell that runs SQL migration files with the node's own psql over
//! SSH and records each in the replicated `migrations` table, `delete-last-batch` deleting the
//! last batch's records, and `ALTER SUBSCRIPTION … REFRESH PUBLICATION` for every subscription.
//! Every command appends its step id to `ran.log`, which proves what ran and how often.
//! Assertions read what the servers say afterwards.

mod replication_support;
mod upgrade_support;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use fspbx_ha_core::Error;
use fspbx_ha_core::config::{ClusterConfig, UpgradeCommand};
use fspbx_ha_core::floating::{FlipOptions, Floating};
use fspbx_ha_core::replication::{self, Pair};
use fspbx_ha_core::upgrade::{
    self, CommandFailure, NoUpgradeProgress, UpgradeObserver, UpgradeOptions, UpgradeReport,
    UpgradeState, UpgradeStep, UpgradeStepOutcome, UpgradeStepResult,
};
use fspbx_ha_lab::cluster_toml::write_cluster_toml;
use fspbx_ha_lab::lab::{Lab, LabOptions};
use fspbx_ha_lab::postgres::PgFlavor;
use replication_support::{LabPair, PairOptions, fspbx_schema_sql, replicate_both_ways};
use upgrade_support::{
    MIGRATION_NAME, MIGRATION_SQL, RAN_AFTER_RESUME, RAN_UNTIL_B_FAILED, Workdir, assert_migrated,
    assert_rows_cross, broken_sql, config, has_call_tags, migration_record,
};

/// Starts the pair with an FS PBX-like schema and sets replication up both ways.
async fn replicating_pair(flavor: PgFlavor) -> LabPair {
    let lab = LabPair::start(PairOptions {
        ssh: true,
        a_via_ssh: true,
        ..PairOptions::new(flavor)
    });
    lab.sql_a(&fspbx_schema_sql(2_000));
    replicate_both_ways(&lab.config("")).await;
    lab
}

/// Records the observer's events.
#[derive(Default)]
struct Recorder {
    started: Mutex<Vec<String>>,
    finished: Mutex<Vec<(String, UpgradeStepResult)>>,
    plan_done: Mutex<Vec<String>>,
}

impl UpgradeObserver for Recorder {
    fn plan_ready(&self, _plan: &upgrade::UpgradePlan, done: &[String]) {
        *self.plan_done.lock().unwrap() = done.to_vec();
    }
    fn step_started(&self, step: &UpgradeStep, _index: usize, _total: usize) {
        self.started.lock().unwrap().push(step.id.clone());
    }
    fn step_finished(&self, _step: &UpgradeStep, outcome: &UpgradeStepOutcome) {
        self.finished
            .lock()
            .unwrap()
            .push((outcome.id.clone(), outcome.result));
    }
}

const ALL_STEPS: [&str; 14] = [
    "precheck.conflicts",
    "precheck.replication",
    "precheck.schema",
    "code.a",
    "code.b",
    "migrate.a",
    "caughtup.b",
    "delete-last-batch.b",
    "migrate.b",
    "refresh.a",
    "refresh.b",
    "postcheck.schema",
    "postcheck.tables",
    "postcheck.heartbeat",
];

fn all_steps() -> Vec<&'static str> {
    ALL_STEPS.to_vec()
}

/// Runs the upgrade with `opts`, unobserved.
async fn run(config: &ClusterConfig, opts: &UpgradeOptions) -> Result<UpgradeReport, Error> {
    upgrade::upgrade(config, opts, &NoUpgradeProgress).await
}

/// A dry run with `state_file`.
fn dry_run(state_file: &Path) -> UpgradeOptions {
    UpgradeOptions {
        dry_run: true,
        ..UpgradeOptions::new(state_file)
    }
}

/// The command failure `err` carries; asserts it is step `step` on node `node`.
fn command_failure<'e>(err: &'e Error, step: &str, node: &str) -> &'e CommandFailure {
    let Error::UpgradeCommandFailed { failure } = err else {
        panic!("expected UpgradeCommandFailed, got {err}")
    };
    assert_eq!(
        (failure.step.as_str(), failure.node.as_str()),
        (step, node),
        "{err}"
    );
    failure
}

/// What the servers say after a successful upgrade: the new table and column on both nodes,
/// the table in both subscriptions in state `r`, rows crossing both ways, the migration
/// recorded once on both, no drift, heartbeats both ways.
async fn assert_upgraded(lab: &LabPair, config: &ClusterConfig) {
    assert_migrated(lab);
    // Right after the upgrade: no drift, nothing to refresh, both directions flowing with
    // every table ready and no apply error.
    let pair = Pair::connect(config).await.unwrap();
    let drift = replication::drift(&pair).await.unwrap();
    assert!(drift.clean(), "{}", drift.render());
    let st = replication::status(&pair).await.unwrap();
    assert_flowing(&st);
    // The only conflict FS PBX's procedure causes: delete-last-batch on B deletes the batch
    // record A wrote, and A applies that delete of its own row. PostgreSQL 18 counts it
    // (resolved: the delete applied); 17 has no such counters.
    let counted = |i: usize| -> Vec<String> {
        st.directions[i]
            .conflicts
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    };
    assert!(counted(0).is_empty(), "{}", st.render());
    if lab.a().flavor().major() >= 18 {
        assert_eq!(
            counted(1),
            ["confl_delete_origin_differs=1"],
            "{}",
            st.render()
        );
    } else {
        assert!(st.directions[1].conflicts.is_empty(), "{}", st.render());
    }
    // Rows cross both ways, in the new table and in the new column.
    assert_rows_cross(lab);
    // Still flowing both ways afterwards (PostgreSQL 18 counts the update of a row the initial
    // copy wrote as `confl_update_origin_differs`, a resolved conflict).
    assert_flowing(&replication::status(&pair).await.unwrap());
}

/// Both directions: worker running, every table ready, no apply or sync error, a fresh
/// heartbeat crossed.
fn assert_flowing(st: &replication::ReplicationStatus) {
    assert_eq!(st.directions.len(), 2);
    for d in &st.directions {
        assert!(
            d.exists
                && d.worker_running
                && d.heartbeat_lag_s.is_some()
                && d.apply_error_count == 0
                && d.sync_error_count == 0
                && d.tables_total > 50
                && d.tables_ready == d.tables_total,
            "{}",
            st.render()
        );
    }
}

async fn end_to_end(flavor: PgFlavor) {
    let lab = replicating_pair(flavor).await;
    let w = Workdir::new(&lab);
    let config = config(&lab, &w);
    let state_file = w.state_file();

    // Dry run: every step with its node and exact command; nothing runs, nothing is written.
    let dry = upgrade::upgrade(&config, &dry_run(&state_file), &Recorder::default())
        .await
        .unwrap();
    let ids: Vec<&str> = dry.plan.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, all_steps());
    assert!(
        dry.steps
            .iter()
            .all(|s| s.result == UpgradeStepResult::WouldRun)
    );
    let migrate_b = dry.plan.step("migrate.b").unwrap();
    assert_eq!(migrate_b.node, "b");
    assert_eq!(
        migrate_b.sent().unwrap(),
        format!(
            "cd {} && export FSPBX_HA_NODE=b FSPBX_HA_PEER=a FSPBX_HA_STEP=migrate.b && {{\nsh ./migrate.sh\n}}",
            w.path().display()
        )
    );
    let shown = dry.render();
    for s in &dry.plan.steps {
        assert!(
            shown.contains(&format!("{} on {}", s.id, s.node)),
            "{shown}"
        );
    }
    assert!(shown.contains("run:   sh ./migrate.sh"), "{shown}");
    assert!(w.ran().is_empty(), "a dry run ran {:?}", w.ran());
    assert!(!state_file.exists(), "a dry run wrote the state file");
    assert!(!has_call_tags(lab.b()));

    // The run.
    let rec = Recorder::default();
    let report = upgrade::upgrade(&config, &UpgradeOptions::new(&state_file), &rec)
        .await
        .expect("the upgrade succeeds");
    assert!(report.finished && !report.resumed, "{report:#?}");
    assert_eq!(report.executed(), all_steps());
    assert_eq!(*rec.started.lock().unwrap(), all_steps());
    assert_eq!(report.new_tables, ["public.v_call_tags"]);
    assert_eq!(
        w.ran(),
        [
            "code.a",
            "code.b",
            "migrate.a",
            "delete-last-batch.b",
            "migrate.b",
            "refresh.a",
            "refresh.b"
        ],
        "each command ran once, in FS PBX's order"
    );
    let state = UpgradeState::load(&state_file).unwrap().unwrap();
    assert!(state.finished && state.failed.is_none());
    assert_eq!(state.done_ids(), all_steps());
    assert_eq!(state.fingerprint, report.plan.fingerprint);
    assert_upgraded(&lab, &config).await;

    // The next release brings no migration: a finished run is not resumed, everything runs
    // again except delete-last-batch and migrate on B, which would forget and re-run batch 5
    // there (the first node's migrate started no new batch).
    let again = run(&config, &UpgradeOptions::new(&state_file))
        .await
        .expect("an upgrade without migrations succeeds");
    assert!(again.finished && !again.resumed);
    let not_needed: Vec<&str> = again
        .steps
        .iter()
        .filter(|s| s.result == UpgradeStepResult::NotNeeded)
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(
        not_needed,
        ["delete-last-batch.b", "migrate.b"],
        "{again:#?}"
    );
    assert_eq!(again.executed().len(), ALL_STEPS.len() - 2);
    assert!(again.new_tables.is_empty());
    assert_eq!(
        w.ran()[7..],
        ["code.a", "code.b", "migrate.a", "refresh.a", "refresh.b"]
    );
    for pg in [lab.a(), lab.b()] {
        assert_eq!(
            migration_record(pg),
            "1/5",
            "{}: batch 5 untouched",
            pg.name()
        );
    }
    let pair = Pair::connect(&config).await.unwrap();
    assert!(replication::drift(&pair).await.unwrap().clean());
    assert_flowing(&replication::status(&pair).await.unwrap());
}

async fn fails_on_the_second_node_and_resumes(flavor: PgFlavor) {
    let lab = replicating_pair(flavor).await;
    let w = Workdir::new(&lab);
    // Node B's release carries a broken migration.
    w.write(
        &format!("release-b/migrations/{MIGRATION_NAME}.sql"),
        &broken_sql(),
    );
    let config = config(&lab, &w);
    let state_file = w.state_file();

    // First a code update that hangs: stopped at its timeout, on node A.
    let mut hanging = config.clone();
    hanging.upgrade.update_code = UpgradeCommand {
        run: "sleep 30".into(),
        timeout: Some(Duration::from_secs(1)),
    };
    let err = run(&hanging, &UpgradeOptions::new(&state_file))
        .await
        .expect_err("the code update times out");
    let failure = command_failure(&err, "code.a", "a");
    assert!(failure.status.starts_with("a timeout after 1 s"), "{err}");
    let state = UpgradeState::load(&state_file).unwrap().unwrap();
    assert_eq!(state.done_ids(), &all_steps()[..3]);
    // The configuration changed (other commands): not the same plan, so not resumed...
    let other = run(&config, &UpgradeOptions::new(&state_file))
        .await
        .expect_err("another plan is refused");
    assert!(
        matches!(other, Error::UpgradeStateMismatch { done: 3, .. }),
        "{other}"
    );
    assert!(other.to_string().contains("--restart"), "{other}");
    assert!(w.ran().is_empty());

    // ...until --restart: the run starts over and stops at node B's broken migration.
    let restart = UpgradeOptions {
        restart: true,
        ..UpgradeOptions::new(&state_file)
    };
    let err = run(&config, &restart)
        .await
        .expect_err("the migration on node B fails");
    let failure = command_failure(&err, "migrate.b", "b");
    assert_eq!(failure.command, "sh ./migrate.sh");
    assert_eq!(
        failure.status, "exit status 3",
        "psql's status for a failed script"
    );
    assert!(
        failure.stderr_tail.contains("ERROR:  syntax error")
            && failure.stderr_tail.contains("ADD COLUM call_tag_uuid"),
        "{}",
        failure.stderr_tail
    );
    let msg = err.to_string();
    for want in [
        "upgrade step migrate.b failed on node b",
        "`sh ./migrate.sh` ended with exit status 3",
        "it resumes at migrate.b",
        "the 8 step(s) before it are recorded done",
        &state_file.display().to_string(),
    ] {
        assert!(msg.contains(want), "{want:?} missing from: {msg}");
    }
    assert!(
        !msg.contains(lab.a().password())
            && !msg.contains(lab.b().password())
            && !msg.contains(&lab.repl_password)
    );
    // The state file says where it stopped.
    let state = UpgradeState::load(&state_file).unwrap().unwrap();
    assert!(!state.finished);
    assert_eq!(
        state.done_ids(),
        &all_steps()[..8],
        "everything before migrate.b is recorded done"
    );
    let failed = state.failed.as_ref().expect("the failure is recorded");
    assert_eq!(
        (failed.id.as_str(), failed.node.as_str()),
        ("migrate.b", "b")
    );
    assert_eq!(failed.command.as_deref(), Some("sh ./migrate.sh"));
    assert!(failed.stderr_tail.contains("COLUM"), "{failed:?}");
    // The servers: node A migrated, node B not (its transaction rolled back).
    assert!(has_call_tags(lab.a()));
    assert!(!has_call_tags(lab.b()));
    assert_eq!(w.ran(), RAN_UNTIL_B_FAILED);

    // Another plan (node B first) does not resume this run.
    let b_first = UpgradeOptions {
        first: Some("b".into()),
        ..UpgradeOptions::new(&state_file)
    };
    let other = run(&config, &b_first)
        .await
        .expect_err("a different plan is refused");
    assert!(
        matches!(other, Error::UpgradeStateMismatch { ref recorded_first, done: 8, .. } if recorded_first == "a"),
        "{other}"
    );
    assert_eq!(w.ran().len(), 5, "the refused run ran nothing");

    // A dry run shows the recorded steps as done.
    let dry = run(&config, &dry_run(&state_file)).await.unwrap();
    assert!(dry.resumed);
    assert_eq!(
        dry.steps
            .iter()
            .filter(|s| s.result == UpgradeStepResult::AlreadyDone)
            .count(),
        8
    );
    assert!(
        dry.render().contains("migrate.b on b\n"),
        "{}",
        dry.render()
    );

    // The operator fixes the deployed file on node B and runs again: it resumes at migrate.b.
    w.write(
        &format!("code-b/migrations/{MIGRATION_NAME}.sql"),
        MIGRATION_SQL,
    );
    let rec = Recorder::default();
    let report = upgrade::upgrade(&config, &UpgradeOptions::new(&state_file), &rec)
        .await
        .expect("the resumed upgrade finishes");
    assert!(report.finished && report.resumed);
    assert_eq!(report.skipped(), &all_steps()[..8]);
    assert_eq!(report.executed(), &all_steps()[8..]);
    assert_eq!(*rec.plan_done.lock().unwrap(), &all_steps()[..8]);
    assert_eq!(
        *rec.started.lock().unwrap(),
        &all_steps()[8..],
        "earlier steps are not started again"
    );
    assert_eq!(w.ran(), RAN_AFTER_RESUME, "only migrate.b ran twice");
    assert_eq!(report.new_tables, ["public.v_call_tags"]);
    let state = UpgradeState::load(&state_file).unwrap().unwrap();
    assert!(state.finished && state.failed.is_none());
    assert_upgraded(&lab, &config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_end_to_end_on_postgresql_17() {
    end_to_end(PgFlavor::V17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_end_to_end_on_postgresql_18() {
    end_to_end(PgFlavor::V18).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_failing_on_the_second_node_resumes_on_postgresql_17() {
    fails_on_the_second_node_and_resumes(PgFlavor::V17).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_failing_on_the_second_node_resumes_on_postgresql_18() {
    fails_on_the_second_node_and_resumes(PgFlavor::V18).await;
}

/// `upgrade.first = "active"` (the lab writes it when it runs DNS): the node the floating
/// record points at goes first; `--first` overrides it. Dry runs: nothing else is needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_node_goes_first_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(LabOptions {
        dns: true,
        ..LabOptions::new(dir.path().join("lab"))
    })
    .unwrap();
    let config = ClusterConfig::load(write_cluster_toml(&lab.topology()).unwrap()).unwrap();
    assert_eq!(config.upgrade.first, "active");
    let state_file = dir.path().join("upgrade-state.json");
    let dry = |first: Option<&str>| UpgradeOptions {
        first: first.map(str::to_string),
        ..dry_run(&state_file)
    };
    // The lab's zone has no floating record yet: the first node cannot be told.
    let Err(e) = run(&config, &dry(None)).await else {
        panic!("no floating record: the first node is unknown")
    };
    assert!(matches!(e, Error::UpgradeFirstNode { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("upgrade.first = \"active\": pbx.example.test points at neither node")
            && text.contains("pass --first NODE or set upgrade.first to a node name (a, b)"),
        "{text}"
    );
    let floating = Floating::new(&config).unwrap();
    let mut no_wait = FlipOptions::default();
    no_wait.wait_for_servers = false;
    for (active, peer) in [("b", "a"), ("a", "b")] {
        floating
            .flip(&floating.resolve_target(active, "to").unwrap(), &no_wait)
            .await
            .unwrap();
        let r = run(&config, &dry(None)).await.unwrap();
        assert_eq!(
            (r.plan.first.as_str(), r.plan.second.as_str()),
            (active, peer)
        );
        assert_eq!(r.plan.steps[5].id, format!("migrate.{active}"));
        assert_eq!(r.plan.steps[7].id, format!("delete-last-batch.{peer}"));
        // --first wins over the floating record.
        let r = run(&config, &dry(Some(peer))).await.unwrap();
        assert_eq!(r.plan.first, peer);
    }
    let Err(e) = run(&config, &dry(Some("c"))).await else {
        panic!("an unknown node must be refused")
    };
    assert_eq!(
        e.to_string(),
        "--first = \"c\": no such node; use one of a, b"
    );
    assert!(!state_file.exists(), "dry runs write nothing");
}

/// A subscription stuck on a duplicate key: the pre-check refuses before any command runs,
/// naming the direction and the key; once the row is fixed the upgrade runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_subscription_stops_the_upgrade_before_any_command() {
    let lab = replicating_pair(PgFlavor::V17).await;
    let w = Workdir::new(&lab);
    let config = config(&lab, &w);
    let state_file = w.state_file();
    // The key on B only (under a replication origin, which A's `origin = none` subscription
    // does not take), then the same key on A: B's apply worker fails on it in a loop.
    let key = "00000000-0000-0000-0000-0000000000cc";
    lab.sql_b(&format!(
        "SELECT pg_replication_origin_create('upgrade_test');
         SELECT pg_replication_origin_session_setup('upgrade_test');
         INSERT INTO public.v_domains (domains_uuid, domains_name) VALUES ('{key}', 'on B');"
    ));
    lab.sql_a(&format!(
        "INSERT INTO public.v_domains (domains_uuid, domains_name) VALUES ('{key}', 'on A')"
    ));
    lab.wait_for(
        lab.b(),
        "SELECT apply_error_count > 0 FROM pg_stat_subscription_stats
          WHERE subname = 'fspbx_subscription_a_to_b'",
        "t",
    );

    let err = run(&config, &UpgradeOptions::new(&state_file))
        .await
        .expect_err("a stuck subscription stops the upgrade");
    let Error::UpgradeCheckFailed {
        step,
        node,
        problems,
        ..
    } = &err
    else {
        panic!("expected UpgradeCheckFailed, got {err}")
    };
    assert_eq!(
        (step.as_str(), node.as_str()),
        ("precheck.conflicts", "both")
    );
    let all = problems.join("\n");
    assert!(
        all.contains("a -> b (fspbx_subscription_a_to_b): failing") && all.contains(key),
        "{all}"
    );
    assert!(
        !all.contains("b -> a (fspbx_subscription_b_to_a): failing"),
        "{all}"
    );
    assert!(
        err.to_string()
            .contains("bring replication back to healthy first"),
        "{err}"
    );
    assert!(w.ran().is_empty(), "no command ran");
    let state = UpgradeState::load(&state_file).unwrap().unwrap();
    assert!(state.done.is_empty());
    assert_eq!(state.failed.unwrap().id, "precheck.conflicts");

    // The fix (B's copy of the row goes; A's arrives), then the upgrade runs from the start.
    lab.sql_b(&format!(
        "DELETE FROM public.v_domains WHERE domains_uuid = '{key}'"
    ));
    lab.wait_for(
        lab.b(),
        &format!("SELECT domains_name FROM public.v_domains WHERE domains_uuid = '{key}'"),
        "on A",
    );
    let report = run(&config, &UpgradeOptions::new(&state_file))
        .await
        .expect("after the fix the upgrade runs");
    assert!(report.finished && !report.resumed);
    assert_eq!(report.executed(), all_steps());
    // The pre-checks passed with the conflict's apply errors still counted (history).
    assert_eq!(
        lab.sql_b(
            "SELECT apply_error_count > 0 FROM pg_stat_subscription_stats
              WHERE subname = 'fspbx_subscription_a_to_b'"
        ),
        "t"
    );
    // Reset them, so the checks below see the upgrade's own errors (none).
    lab.sql_b("SELECT pg_stat_reset_subscription_stats(NULL)");
    assert_upgraded(&lab, &config).await;
}
