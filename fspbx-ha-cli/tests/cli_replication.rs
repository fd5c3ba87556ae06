//! `fspbx-ha replication …` against real PostgreSQL 17 and 18 pairs from the lab: plan (JSON, no
//! password), apply, status, verify, a second apply that does nothing, teardown dry run and
//! teardown; and a refusal's exit code and message.

#[path = "../../fspbx-ha-core/tests/replication_support/mod.rs"]
mod replication_support;

mod support;

use fspbx_ha_lab::postgres::PgFlavor;
use predicates::prelude::*;
use replication_support::{LabPair, PairOptions};
use support::{json, run};

#[test]
fn replication_from_plan_to_teardown_on_17() {
    from_plan_to_teardown(PgFlavor::V17);
}

#[test]
fn replication_from_plan_to_teardown_on_18() {
    from_plan_to_teardown(PgFlavor::V18);
}

fn from_plan_to_teardown(flavor: PgFlavor) {
    let lab = LabPair::with_same_schema(PairOptions::new(flavor), 5_000);
    let config = lab.config_file("");

    let out = run(&config, &["--json", "replication", "plan"], 0);
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

    run(&config, &["replication", "apply"], 0)
        .stderr(
            predicate::str::contains("copy: ").and(predicate::str::contains("subscription.b on b")),
        )
        .stdout(predicate::str::contains("applied:"));
    assert_eq!(lab.sql_b("SELECT count(*) FROM public.v_xml_cdr"), "5000");

    run(&config, &["replication", "status"], 0).stdout(
        predicate::str::starts_with("replication: healthy")
            .and(predicate::str::contains("password=<redacted>")),
    );
    let out = run(&config, &["--json", "replication", "status"], 0);
    let st = json(&out);
    assert_eq!(st["verdict"], "healthy");
    assert!(!String::from_utf8_lossy(&out.get_output().stdout).contains(&lab.repl_password));

    lab.sql_a("INSERT INTO public.v_domains (domains_name) VALUES ('from the CLI test')");
    lab.wait_for(
        lab.b(),
        "SELECT count(*) FROM public.v_domains WHERE domains_name = 'from the CLI test'",
        "1",
    );
    run(&config, &["replication", "verify"], 0).stdout(predicate::str::contains("identical"));

    run(&config, &["replication", "apply"], 0)
        .stdout(predicate::str::contains("applied: 0 step(s) run"));

    run(&config, &["replication", "teardown"], 0).stdout(predicate::str::contains("dry run"));
    assert_eq!(LabPair::leftovers(lab.a()), "1|1|1");
    run(&config, &["replication", "teardown", "--yes"], 0);
    assert_eq!(LabPair::leftovers(lab.a()), "0|0|0");
    assert_eq!(LabPair::leftovers(lab.b()), "0|0|0");
    // Broken now: status exits 1 and says why.
    run(&config, &["replication", "status"], 1)
        .stdout(predicate::str::contains("broken").and(predicate::str::contains("does not exist")));
}

#[test]
fn a_refusal_names_node_step_and_fix() {
    let lab = LabPair::start(PairOptions {
        wal_level_a: "replica".into(),
        ..PairOptions::new(PgFlavor::V17)
    });
    let config = lab.config_file("");
    run(&config, &["replication", "apply"], 3).stderr(
        predicate::str::contains("node a: step settings.a: wal_level = replica (needs logical)")
            .and(predicate::str::contains("--allow-restart")),
    );
    assert_eq!(LabPair::leftovers(lab.a()), "0|0|0");
}
