//! `fspbx-ha replication sequences | drift | refresh` against real PostgreSQL 17 and 18 pairs
//! from the lab: exit codes (0 ok, 1 drift / not compliant / refused, 2 usage), human and JSON
//! output, dry runs that change nothing (checked on the servers) and the real runs.

#[path = "../../fspbx-ha-core/tests/replication_support/mod.rs"]
mod replication_support;

mod support;

use std::path::{Path, PathBuf};

use fspbx_ha_core::config::SequenceStrategy;
use fspbx_ha_lab::postgres::PgFlavor;
use predicates::prelude::*;
use replication_support::{LabPair, PairOptions};
use support::{contains_all, json, run};

const SCHEMA: &str = "
CREATE TABLE public.jobs (id bigserial PRIMARY KEY, queue text NOT NULL);
CREATE TABLE public.v_users (user_uuid uuid PRIMARY KEY, username text);";

/// The lab's configuration with `strategy`, written next to the lab.
fn config_with(lab: &LabPair, strategy: SequenceStrategy, dir: &Path) -> PathBuf {
    let mut c = lab.config("");
    c.replication.sequences.strategy = strategy;
    let p = dir.join(format!("cluster-{}.toml", strategy.as_str()));
    std::fs::write(&p, c.to_toml()).unwrap();
    p
}

fn schema_commands(flavor: PgFlavor) {
    let lab = LabPair::start(PairOptions::new(flavor));
    lab.sql_a(SCHEMA);
    lab.sql_a("INSERT INTO public.jobs (queue) SELECT 'q' FROM generate_series(1, 500)");
    lab.sql_b(SCHEMA);
    let dir = tempfile::tempdir().unwrap();
    let sync = config_with(&lab, SequenceStrategy::Sync, dir.path());
    let inter = config_with(&lab, SequenceStrategy::Interleave, dir.path());
    run(&sync, &["replication", "apply"], 0);

    // --- sequences, strategy sync: compliant, interleave refused as a usage error.
    run(&sync, &["replication", "sequences"], 0).stdout(contains_all(&[
        "public.jobs.id",
        "strategy sync (moved at a switchover, margin 1000)",
        "compliant",
    ]));
    run(&sync, &["replication", "sequences", "--apply", "--yes"], 2)
        .stderr(predicate::str::contains("replication.sequences.strategy"));
    run(&sync, &["replication", "sequences", "--yes"], 2);

    // --- sequences, strategy interleave: not compliant until applied.
    let a = run(&inter, &["--json", "replication", "sequences"], 1);
    let v = json(&a);
    assert_eq!(v["compliance"]["compliant"], false);
    assert_eq!(v["compliance"]["problems"].as_array().unwrap().len(), 2);
    let jobs = &v["nodes"][0]["sequences"][0];
    assert_eq!(jobs["column"], "id");
    assert_eq!(jobs["table_name"], "jobs");
    assert_eq!(jobs["column_max"], 500);
    assert_eq!(jobs["kind"], "serial");
    // Dry run: the plan, exit 1, nothing changed on B.
    run(&inter, &["replication", "sequences", "--apply"], 1).stdout(contains_all(&[
        "would restart",
        "RESTART WITH 502",
        "dry run: nothing changed",
    ]));
    let incr = |lab: &LabPair| {
        lab.sql_b(
            "SELECT seqincrement FROM pg_sequence WHERE seqrelid = 'public.jobs_id_seq'::regclass",
        )
    };
    assert_eq!(incr(&lab), "1");
    // Applied: exit 0, B draws even values.
    let a = run(
        &inter,
        &["--json", "replication", "sequences", "--apply", "--yes"],
        0,
    );
    let v = json(&a);
    assert_eq!(v["applied"], true);
    assert_eq!(incr(&lab), "2");
    assert_eq!(
        lab.sql_b("INSERT INTO public.jobs (queue) VALUES ('b') RETURNING id"),
        "502"
    );
    run(&inter, &["replication", "sequences"], 0);
    run(&inter, &["replication", "status"], 0).stdout(contains_all(&[
        "sequences: interleave (step 2, offsets [1, 2]): 1 serial/identity sequence(s); compliant",
        "schema: no drift",
        "max_slot_wal_keep_size = -1",
    ]));

    // --- drift.
    run(&inter, &["replication", "drift"], 0)
        .stdout(predicate::str::contains("have the same tables"));
    lab.sql_a("ALTER TABLE public.v_users ADD COLUMN nickname text");
    run(&inter, &["replication", "drift"], 1).stdout(predicate::str::contains(
        "\"public\".\"v_users\"\n    - column \"nickname\" (text) only on a",
    ));
    let a = run(&inter, &["--json", "replication", "drift"], 1);
    let v = json(&a);
    assert_eq!(v["tables"][0]["changes"][0]["kind"], "column_only_on");
    assert_eq!(v["tables"][0]["changes"][0]["node"], "a");
    run(&inter, &["replication", "status"], 1)
        .stdout(predicate::str::contains("schema drift in 1 table(s)"));

    // --- refresh: blocked while B lacks a table A publishes (exit 1, nothing ran).
    lab.sql_a("CREATE TABLE public.v_new (id uuid PRIMARY KEY)");
    run(&inter, &["replication", "refresh", "--yes"], 1).stderr(predicate::str::contains(
        "node b: subscription fspbx_subscription_a_to_b cannot be refreshed",
    ));
    // Both have it: dry run shows both statements and changes nothing; --yes refreshes.
    lab.sql_b("CREATE TABLE public.v_new (id uuid PRIMARY KEY)");
    run(&inter, &["replication", "refresh"], 0).stdout(contains_all(&[
        "would refresh: 1 table(s) to add (public.v_new)",
        "dry run: nothing changed",
    ]));
    let subscribed = |lab: &LabPair| {
        lab.sql_b(
            "SELECT count(*) FROM pg_subscription_rel WHERE srrelid = 'public.v_new'::regclass",
        )
    };
    assert_eq!(subscribed(&lab), "0");
    let a = run(&inter, &["--json", "replication", "refresh", "--yes"], 0);
    let v = json(&a);
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["subscriptions"][0]["done"], true);
    assert_eq!(v["subscriptions"][1]["done"], true);
    assert_eq!(subscribed(&lab), "1");
    lab.sql_b("ALTER TABLE public.v_users ADD COLUMN nickname text");
    run(&inter, &["replication", "drift"], 0);
}

#[test]
fn schema_commands_on_17() {
    schema_commands(PgFlavor::V17);
}

#[test]
fn schema_commands_on_18() {
    schema_commands(PgFlavor::V18);
}
