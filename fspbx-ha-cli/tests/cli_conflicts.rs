//! `fspbx-ha replication conflicts` and `replication resolve` against a real PostgreSQL 17 pair
//! from the lab: the same bigserial id written on both nodes while partitioned; the list (human
//! and JSON, exit 1), a dry run that changes nothing, fix-row on B and skip on A with --yes, then
//! exit 0 from conflicts, status and verify. Assertions read the servers afterwards.

#[path = "../../fspbx-ha-core/tests/replication_support/mod.rs"]
mod replication_support;

mod support;

use std::time::{Duration, Instant};

use fspbx_ha_lab::postgres::PgFlavor;
use predicates::prelude::*;
use replication_support::{LabPair, PairOptions};
use support::{contains_all, fspbx_ha, json, run, stdout};

const A_TO_B: &str = "fspbx_subscription_a_to_b";
const B_TO_A: &str = "fspbx_subscription_b_to_a";

#[test]
fn conflicts_listed_and_resolved_from_the_cli() {
    let lab = LabPair::start(PairOptions {
        ssh: true,
        ..PairOptions::new(PgFlavor::V17)
    });
    let schema = "SET ROLE fusionpbx; \
        CREATE TABLE public.jobs (id bigserial PRIMARY KEY, queue text NOT NULL, payload text NOT NULL); \
        RESET ROLE; ALTER SYSTEM SET wal_retrieve_retry_interval = '300ms'; SELECT pg_reload_conf();";
    lab.sql_a(schema);
    lab.sql_b(schema);
    let config = lab.config_file("");
    run(&config, &["replication", "apply"], 0);
    run(&config, &["replication", "conflicts"], 0)
        .stdout(predicate::str::starts_with("conflicts: none"));

    // Partition, the same id on both nodes, reconnect.
    lab.sql_b(&format!("ALTER SUBSCRIPTION {A_TO_B} DISABLE"));
    lab.sql_a(&format!("ALTER SUBSCRIPTION {B_TO_A} DISABLE"));
    std::thread::sleep(Duration::from_millis(500));
    lab.sql_a("INSERT INTO public.jobs (queue, payload) VALUES ('default', 'job from a')");
    lab.sql_b("INSERT INTO public.jobs (queue, payload) VALUES ('default', 'job from b')");
    lab.sql_b(&format!("ALTER SUBSCRIPTION {A_TO_B} ENABLE"));
    lab.sql_a(&format!("ALTER SUBSCRIPTION {B_TO_A} ENABLE"));

    // Listed, with key, table and both rows; exit 1.
    let started = Instant::now();
    let listed = loop {
        let out = fspbx_ha(&config)
            .args(["--json", "replication", "conflicts"])
            .assert();
        let text = stdout(&out);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let dirs = v["directions"].as_array().unwrap();
        if dirs.iter().all(|d| d["error"].is_object()) {
            assert_eq!(out.get_output().status.code(), Some(1));
            break v;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{text}");
    };
    let d = &listed["directions"][0];
    assert_eq!(d["subscription"], A_TO_B);
    assert_eq!(d["state"], "failing");
    assert_eq!(d["error"]["relation"], "public.jobs");
    assert_eq!(d["error"]["key"]["text"], "(id)=(1)");
    assert!(d["error"]["finish_lsn"].as_str().unwrap().contains('/'));
    assert!(
        d["rows"]["subscriber_row"]
            .as_str()
            .unwrap()
            .contains("job from b")
    );
    assert!(
        d["rows"]["publisher_row"]
            .as_str()
            .unwrap()
            .contains("job from a")
    );
    run(&config, &["replication", "conflicts"], 1).stdout(contains_all(&[
        "key: (id)=(1)",
        "job from b",
        "resolve --subscription",
    ]));

    // `replication resolve --subscription <args>`, exit `code`.
    let resolve = |args: &[&str], code: i32| {
        let all: Vec<&str> = ["replication", "resolve", "--subscription"]
            .iter()
            .chain(args)
            .copied()
            .collect();
        run(&config, &all, code)
    };

    // Dry run: the plan with node, SQL and consequence; nothing changes.
    resolve(&[A_TO_B, "--fix-row"], 0).stdout(contains_all(&[
        "DELETE FROM \"public\".\"jobs\" WHERE \"id\" = '1'",
        "consequence:",
        "job from b",
        "dry run",
    ]));
    assert_eq!(lab.sql_b("SELECT payload FROM public.jobs"), "job from b");

    // A remedy must be chosen; an unknown subscription is a usage error.
    resolve(&[A_TO_B], 2);
    resolve(&["nope", "--skip"], 2).stderr(predicate::str::contains(A_TO_B));

    resolve(&[A_TO_B, "--fix-row", "--yes"], 0).stdout(predicate::str::contains("resolved:"));
    assert_eq!(lab.sql_b("SELECT payload FROM public.jobs"), "job from a");
    let out = run(
        &config,
        &[
            "--json",
            "replication",
            "resolve",
            "--subscription",
            B_TO_A,
            "--skip",
            "--yes",
        ],
        0,
    );
    let v = json(&out);
    assert_eq!(v["resolved"], true);
    assert!(
        v["plan"]["steps"][0]["sql"]
            .as_str()
            .unwrap()
            .contains("SKIP (lsn = '")
    );

    run(&config, &["replication", "conflicts"], 0);
    run(&config, &["replication", "status"], 0)
        .stdout(predicate::str::starts_with("replication: healthy"));
    run(&config, &["replication", "verify"], 0);
    assert_eq!(lab.sql_a("SELECT payload FROM public.jobs"), "job from a");
}
