//! Cost of what runs on every `fspbx-ha` invocation: parsing and validating the configuration,
//! and evaluating check results. Compare the numbers as ratios between commits, not absolutes.

#![allow(missing_docs)] // criterion_group!/criterion_main! generate undocumented items

use criterion::{Criterion, criterion_group, criterion_main};
use fspbx_ha::core::check::rules::{evaluate_server, evaluate_tables};
use fspbx_ha::core::config::ClusterConfig;
use fspbx_ha::core::pg::{ServerFacts, TableRef};

fn config(c: &mut Criterion) {
    let text = ClusterConfig::template();
    c.bench_function("config/parse_and_validate_template", |b| {
        b.iter(|| ClusterConfig::from_toml_str(std::hint::black_box(&text)).unwrap())
    });
    let parsed = ClusterConfig::from_toml_str(&text).unwrap();
    c.bench_function("config/validate_only", |b| {
        b.iter(|| std::hint::black_box(&parsed).problems())
    });
}

fn rules(c: &mut Criterion) {
    let facts = ServerFacts {
        version_num: 170011,
        version: "17.11".into(),
        wal_level: "logical".into(),
        max_replication_slots: 10,
        max_wal_senders: 10,
        max_worker_processes: 16,
        track_commit_timestamp: true,
    };
    let tables: Vec<TableRef> = (0..200)
        .map(|i| TableRef {
            schema: "public".into(),
            name: format!("Table {i}"),
        })
        .collect();
    c.bench_function("check/evaluate_server", |b| {
        b.iter(|| evaluate_server("a", std::hint::black_box(&facts)))
    });
    c.bench_function("check/evaluate_200_tables", |b| {
        b.iter(|| evaluate_tables("a", std::hint::black_box(&tables)))
    });
}

criterion_group!(benches, config, rules);
criterion_main!(benches);
