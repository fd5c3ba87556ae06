//! `fspbx-ha replication …` against real PostgreSQL 17 and 18 pairs from the lab: plan (JSON, no
//! password), apply, status, verify, a second apply that does nothing, teardown dry run and
//! teardown; and a refusal's exit code and message.

#[path = "../../fspbx-ha-core/tests/replication_support/mod.rs"]
mod replication_support;

use assert_cmd::Command;
use fspbx_ha_lab::postgres::PgFlavor;
use predicates::prelude::*;
use replication_support::{LabPair, PairOptions, fspbx_schema_sql};

fn fspbx_ha(config: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("fspbx-ha").unwrap();
    c.env_remove("FSPBX_HA_CONFIG").arg("--config").arg(config);
    c
}

#[test]
fn replication_from_plan_to_teardown_on_17() {
    from_plan_to_teardown(PgFlavor::V17);
}

#[test]
fn replication_from_plan_to_teardown_on_18() {
    from_plan_to_teardown(PgFlavor::V18);
}

fn from_plan_to_teardown(flavor: PgFlavor) {
    let lab = LabPair::start(PairOptions::new(flavor));
    let schema = fspbx_schema_sql(5_000);
    lab.sql_a(&schema);
    lab.sql_b(&schema);
    let tables = lab.sql_b(
        "SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') FROM pg_tables
          WHERE schemaname IN ('public', 'Billing Data')",
    );
    lab.sql_b(&format!("TRUNCATE {tables}"));
    let config = lab.config_file("");

    let out = fspbx_ha(&config)
        .args(["--json", "replication", "plan"])
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(!stdout.contains(&lab.repl_password) && !stdout.contains(lab.a().password()));
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let ids: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.last(), Some(&"subscription.a"), "{ids:?}");
    assert!(stdout.contains("password=<redacted>"));
    assert_eq!(LabPair::leftovers(lab.a()), "0|0|0", "plan changes nothing");

    fspbx_ha(&config)
        .args(["replication", "apply"])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("copy: ").and(predicate::str::contains("subscription.b on b")),
        )
        .stdout(predicate::str::contains("applied:"));
    assert_eq!(lab.sql_b("SELECT count(*) FROM public.v_xml_cdr"), "5000");

    fspbx_ha(&config)
        .args(["replication", "status"])
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("replication: healthy")
                .and(predicate::str::contains("password=<redacted>")),
        );
    let out = fspbx_ha(&config)
        .args(["--json", "replication", "status"])
        .assert()
        .success();
    let st: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(st["verdict"], "healthy");
    assert!(!String::from_utf8_lossy(&out.get_output().stdout).contains(&lab.repl_password));

    lab.sql_a("INSERT INTO public.v_domains (domains_name) VALUES ('from the CLI test')");
    lab.wait_for(
        lab.b(),
        "SELECT count(*) FROM public.v_domains WHERE domains_name = 'from the CLI test'",
        "1",
    );
    fspbx_ha(&config)
        .args(["replication", "verify"])
        .assert()
        .success()
        .stdout(predicate::str::contains("identical"));

    fspbx_ha(&config)
        .args(["replication", "apply"])
        .assert()
        .success()
        .stdout(predicate::str::contains("applied: 0 step(s) run"));

    fspbx_ha(&config)
        .args(["replication", "teardown"])
        .assert()
        .success()
        .stdout(predicate::str::contains("dry run"));
    assert_eq!(LabPair::leftovers(lab.a()), "1|1|1");
    fspbx_ha(&config)
        .args(["replication", "teardown", "--yes"])
        .assert()
        .success();
    assert_eq!(LabPair::leftovers(lab.a()), "0|0|0");
    assert_eq!(LabPair::leftovers(lab.b()), "0|0|0");
    // Broken now: status exits 1 and says why.
    fspbx_ha(&config)
        .args(["replication", "status"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("broken").and(predicate::str::contains("does not exist")));
}

#[test]
fn a_refusal_names_node_step_and_fix() {
    let lab = LabPair::start(PairOptions {
        wal_level_a: "replica".into(),
        ..PairOptions::new(PgFlavor::V17)
    });
    let config = lab.config_file("");
    fspbx_ha(&config)
        .args(["replication", "apply"])
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains(
                "node a: step settings.a: wal_level = replica (needs logical)",
            )
            .and(predicate::str::contains("--allow-restart")),
        );
    assert_eq!(LabPair::leftovers(lab.a()), "0|0|0");
}
