//! `fspbx-ha upgrade` end to end against the lab's PostgreSQL 17 pair (SSH on): replication set
//! up by the CLI, the plan without --yes, a dry run in JSON, a run that fails on node B's
//! migration (exit 3, the step, node, command, status and stderr named), a different plan
//! refused (exit 2), the fix and a resumed run that finishes. Assertions read the servers.

#[path = "../../fspbx-ha-core/tests/replication_support/mod.rs"]
mod replication_support;
#[path = "../../fspbx-ha-core/tests/upgrade_support/mod.rs"]
mod upgrade_support;

use assert_cmd::Command;
use fspbx_ha_lab::postgres::PgFlavor;
use predicates::prelude::*;
use replication_support::{LabPair, PairOptions, fspbx_schema_sql};
use upgrade_support::{BROKEN_SQL, MIGRATION_NAME, MIGRATION_SQL, Workdir};

fn fspbx_ha(config: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("fspbx-ha").unwrap();
    c.env_remove("FSPBX_HA_CONFIG").arg("--config").arg(config);
    c
}

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
        BROKEN_SQL,
    );
    let mut config = upgrade_support::config(&lab, &w);
    // The first node comes from --first (the lab runs no DNS to tell the active node).
    config.upgrade.first = "active".into();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("cluster.toml");
    std::fs::write(&cfg, config.to_toml()).unwrap();
    let state_file = cfg_dir.path().join("upgrade-state.json");

    fspbx_ha(&cfg)
        .args(["replication", "apply"])
        .assert()
        .success();

    // Without --yes: the plan, nothing runs.
    fspbx_ha(&cfg)
        .args(["upgrade", "--first", "a"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("upgrade plan: a first, then b (14 steps)")
                .and(predicate::str::contains(
                    " 9. migrate.b on b\n     run:   sh ./migrate.sh",
                ))
                .and(predicate::str::contains("not run: pass --yes")),
        );
    // --dry-run --json: every step, node and exact command.
    let out = fspbx_ha(&cfg)
        .args(["--json", "upgrade", "--dry-run", "--first", "a"])
        .assert()
        .success();
    let dry: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
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
    fspbx_ha(&cfg)
        .args(["upgrade", "--yes", "--first", "a"])
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("[9/14] migrate.b on b: sh ./migrate.sh")
                .and(predicate::str::contains(
                    "error: upgrade step migrate.b failed on node b: `sh ./migrate.sh` ended \
                     with exit status 3",
                ))
                .and(predicate::str::contains("ADD COLUM call_tag_uuid"))
                .and(predicate::str::contains("it resumes at migrate.b"))
                .and(predicate::str::contains(state_file.display().to_string())),
        );
    assert!(
        state_file.exists(),
        "the state file is next to the configuration"
    );
    assert_eq!(
        w.ran(),
        [
            "code.a",
            "code.b",
            "migrate.a",
            "delete-last-batch.b",
            "migrate.b"
        ]
    );

    // Another first node is another plan: refused, as JSON, exit 2.
    let out = fspbx_ha(&cfg)
        .args(["--json", "upgrade", "--yes", "--first", "b"])
        .assert()
        .code(2);
    let refused: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
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
    let out = fspbx_ha(&cfg)
        .args(["--json", "upgrade", "--yes"])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("resuming (8 of 14 steps recorded done)")
                .and(predicate::str::contains(
                    "precheck.replication on both: recorded done",
                ))
                .and(predicate::str::contains("[9/14] migrate.b on b")),
        );
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
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
    assert_eq!(
        w.ran(),
        [
            "code.a",
            "code.b",
            "migrate.a",
            "delete-last-batch.b",
            "migrate.b",
            "migrate.b",
            "refresh.a",
            "refresh.b"
        ]
    );

    // The servers: the table on both, in both subscriptions ready, rows crossing both ways.
    for (pg, sub) in [
        (lab.a(), "fspbx_subscription_b_to_a"),
        (lab.b(), "fspbx_subscription_a_to_b"),
    ] {
        assert_eq!(
            pg.psql(
                "fusionpbx",
                "SELECT s.subname || ':' || r.srsubstate::text
                   FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
                  WHERE r.srrelid = 'public.v_call_tags'::regclass"
            )
            .unwrap(),
            format!("{sub}:r")
        );
    }
    lab.sql_a("INSERT INTO public.v_call_tags (call_tag_name) VALUES ('from A')");
    lab.sql_b("INSERT INTO public.v_call_tags (call_tag_name) VALUES ('from B')");
    let tags =
        "SELECT string_agg(call_tag_name, ',' ORDER BY call_tag_name) FROM public.v_call_tags";
    lab.wait_for(lab.a(), tags, "from A,from B");
    lab.wait_for(lab.b(), tags, "from A,from B");
    fspbx_ha(&cfg)
        .args(["replication", "status"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("replication: healthy"));
}
