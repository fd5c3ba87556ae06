//! `fspbx-ha upgrade` end to end against the lab's PostgreSQL 17 pair (SSH on): replication set
//! up by the CLI, the plan without --yes, a dry run in JSON, a run that fails on node B's
//! migration (exit 3, the step, node, command, status and stderr named), a different plan
//! refused (exit 2), the fix and a resumed run that finishes. Assertions read the servers.

#[path = "../../fspbx-ha-core/tests/replication_support/mod.rs"]
mod replication_support;
#[path = "../../fspbx-ha-core/tests/upgrade_support/mod.rs"]
mod upgrade_support;

mod support;

use fspbx_ha_lab::postgres::PgFlavor;
use predicates::prelude::*;
use replication_support::{LabPair, PairOptions, fspbx_schema_sql};
use support::{contains_all, json, run};
use upgrade_support::{
    MIGRATION_NAME, MIGRATION_SQL, RAN_AFTER_RESUME, RAN_UNTIL_B_FAILED, Workdir, assert_migrated,
    assert_rows_cross, broken_sql,
};

#[test]
fn upgrade_fails_on_node_b_then_resumes_from_the_cli() {
    let lab = LabPair::start(PairOptions {
        ssh: true,
        a_via_ssh: true,
        ..PairOptions::new(PgFlavor::V17)
    });
    lab.sql_a(&fspbx_schema_sql(2_000));
    let w = Workdir::new(&lab);
    w.write(
        &format!("release-b/migrations/{MIGRATION_NAME}.sql"),
        &broken_sql(),
    );
    let mut config = upgrade_support::config(&lab, &w);
    // The first node comes from --first (the lab runs no DNS to tell the active node).
    config.upgrade.first = "active".into();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("cluster.toml");
    std::fs::write(&cfg, config.to_toml()).unwrap();
    let state_file = cfg_dir.path().join("upgrade-state.json");

    run(&cfg, &["replication", "apply"], 0);

    // Without --yes: the plan, nothing runs.
    run(&cfg, &["upgrade", "--first", "a"], 0).stdout(contains_all(&[
        "upgrade plan: a first, then b (14 steps)",
        " 9. migrate.b on b\n     run:   sh ./migrate.sh",
        "not run: pass --yes",
    ]));
    // --dry-run --json: every step, node and exact command.
    let out = run(&cfg, &["--json", "upgrade", "--dry-run", "--first", "a"], 0);
    let dry = json(&out);
    assert_eq!(dry["dry_run"], true);
    let steps = dry["plan"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 14);
    assert_eq!(steps[3]["id"], "code.a");
    assert_eq!(steps[3]["node"], "a");
    assert_eq!(steps[8]["action"]["kind"], "command");
    assert!(
        steps[8]["action"]["sent"]
            .as_str()
            .unwrap()
            .ends_with("FSPBX_HA_STEP=migrate.b && {\nsh ./migrate.sh\n}")
    );
    assert_eq!(steps[12]["action"]["check"], "tables_ready");
    assert!(w.ran().is_empty() && !state_file.exists(), "nothing ran");

    // The run stops at node B's migration.
    run(&cfg, &["upgrade", "--yes", "--first", "a"], 3).stderr(contains_all(&[
        "[9/14] migrate.b on b: sh ./migrate.sh",
        "error: upgrade step migrate.b failed on node b: `sh ./migrate.sh` ended with exit \
             status 3",
        "ADD COLUM call_tag_uuid",
        "it resumes at migrate.b",
        &state_file.display().to_string(),
    ]));
    assert!(
        state_file.exists(),
        "the state file is next to the configuration"
    );
    assert_eq!(w.ran(), RAN_UNTIL_B_FAILED);

    // Another first node is another plan: refused, as JSON, exit 2.
    let out = run(&cfg, &["--json", "upgrade", "--yes", "--first", "b"], 2);
    let refused = json(&out);
    assert_eq!(refused["ok"], false);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("unfinished upgrade of a different plan"),
        "{refused}"
    );
    assert_eq!(w.ran().len(), 5, "the refused run ran nothing");

    // Fix the deployed file on node B; run again without --first: it resumes the recorded run.
    w.write(
        &format!("code-b/migrations/{MIGRATION_NAME}.sql"),
        MIGRATION_SQL,
    );
    let out = run(&cfg, &["--json", "upgrade", "--yes"], 0).stderr(contains_all(&[
        "resuming (8 of 14 steps recorded done)",
        "precheck.replication on both: recorded done",
        "[9/14] migrate.b on b",
    ]));
    let report = json(&out);
    assert_eq!(report["finished"], true);
    assert_eq!(report["resumed"], true);
    assert_eq!(
        report["new_tables"],
        serde_json::json!(["public.v_call_tags"])
    );
    let results: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["result"].as_str().unwrap())
        .collect();
    assert_eq!(&results[..8], ["already_done"; 8]);
    assert_eq!(&results[8..], ["executed"; 6]);
    assert_eq!(w.ran(), RAN_AFTER_RESUME);

    // The servers: the table and column on both, in both subscriptions ready, the migration
    // recorded once, rows crossing both ways.
    assert_migrated(&lab);
    assert_rows_cross(&lab);
    run(&cfg, &["replication", "status"], 0)
        .stdout(predicate::str::starts_with("replication: healthy"));
}
