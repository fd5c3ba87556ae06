//! Syncthing convergence against two real lab daemons (node A 127.0.0.2, node B 127.0.0.3):
//!
//! - `converge/pair_tree`: fresh daemons, node A holding a recordings-like tree (1,000 files of
//!   16 KiB in 50 directories, and 3 files of 8 MiB); time from `apply` until `wait` says every
//!   folder is complete both ways (the tree is on B).
//! - `converge/burst_events` and `converge/burst_poll`: on a paired set, 100 new 32 KiB files
//!   and one 4 MiB file written on A; time until `wait` returns, event-driven (default) versus
//!   sleeping 200 ms between status reads.
//! - `converge/status_read`: one status read of a paired set with one folder (the per-read cost
//!   of `wait`: 4 REST calls per node plus 3 per folder and node).
//!
//! Run: `cargo bench -p fspbx-ha-sync --bench converge`.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fspbx_ha_lab::syncthing::{Syncthing, SyncthingOptions};
use fspbx_ha_sync::{
    FolderIntent, NodeIntent, PairIntent, Secret, SyncPair, SyncthingClient, WaitOptions,
};

const REC: &str = "/var/lib/freeswitch/recordings";

struct Duo {
    a: Syncthing,
    b: Syncthing,
    pair: SyncPair,
}

fn duo() -> Duo {
    let a = Syncthing::start(SyncthingOptions::node_a()).expect("syncthing a");
    let b = Syncthing::start(SyncthingOptions::node_b()).expect("syncthing b");
    for st in [&a, &b] {
        std::fs::create_dir_all(dir(st)).unwrap();
    }
    let node = |name: &str, st: &Syncthing| NodeIntent {
        path_prefix: Some(st.data_root().display().to_string()),
        ..NodeIntent::new(name, name, Some(st.ip()))
    };
    let client = |name: &str, st: &Syncthing| {
        SyncthingClient::new(name, &st.api_url(), Secret::new(st.api_key())).unwrap()
    };
    let pair = SyncPair::new(
        [client("a", &a), client("b", &b)],
        PairIntent {
            nodes: [node("a", &a), node("b", &b)],
            folders: vec![FolderIntent {
                path: REC.into(),
                id: None,
                rescan_interval_s: 3600,
            }],
            hardening: true,
        },
    );
    Duo { a, b, pair }
}

fn dir(st: &Syncthing) -> std::path::PathBuf {
    st.data_root().join(REC.trim_start_matches('/'))
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn write_tree(
    root: &Path,
    small: usize,
    small_len: usize,
    large: usize,
    large_len: usize,
    tag: u64,
) {
    for i in 0..small {
        let d = root.join(format!("tenant-{tag}/{:02}", i % 50));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(format!("call {i:05}.wav")),
            noise(small_len, tag * 100_000 + i as u64),
        )
        .unwrap();
    }
    for i in 0..large {
        std::fs::write(
            root.join(format!("large-{tag}-{i}.wav")),
            noise(large_len, tag * 7 + i as u64),
        )
        .unwrap();
    }
}

fn wait_options(events: bool) -> WaitOptions {
    let mut o = WaitOptions::new(Duration::from_secs(300));
    if !events {
        o.events = false;
        o.poll = Duration::from_millis(200);
    }
    o
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("converge");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_millis(1));

    g.bench_function("pair_tree", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let d = duo();
                write_tree(&dir(&d.a), 1000, 16 * 1024, 3, 8 * 1024 * 1024, 1);
                let t = Instant::now();
                rt.block_on(async {
                    d.pair.apply().await.unwrap();
                    d.pair.wait(&wait_options(true), |_| {}).await.unwrap();
                });
                total += t.elapsed();
                assert_eq!(
                    std::fs::read_dir(dir(&d.b)).unwrap().count(),
                    std::fs::read_dir(dir(&d.a)).unwrap().count()
                );
            }
            total
        })
    });

    let d = duo();
    rt.block_on(async {
        d.pair.apply().await.unwrap();
        d.pair.wait(&wait_options(true), |_| {}).await.unwrap();
    });
    let mut tag = 100;
    for (name, events) in [("burst_events", true), ("burst_poll", false)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    tag += 1;
                    write_tree(&dir(&d.a), 100, 32 * 1024, 1, 4 * 1024 * 1024, tag);
                    let t = Instant::now();
                    rt.block_on(d.pair.wait(&wait_options(events), |_| {}))
                        .unwrap();
                    total += t.elapsed();
                    assert!(dir(&d.b).join(format!("large-{tag}-0.wav")).exists());
                }
                total
            })
        });
    }
    g.bench_function("status_read", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(rt.block_on(d.pair.status()).unwrap());
            }
            t.elapsed()
        })
    });
    g.finish();
    drop(d.b);
}

criterion_group!(benches, bench);
criterion_main!(benches);
