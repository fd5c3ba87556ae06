//! Regression: after every burst of new files, `wait` returns only when they are on the other
//! node. (Syncthing 1.19 reports a peer that never announced an index as 100 % complete; the
//! status must not believe it: see `status` module docs.)

mod common;

use std::time::Duration;

use common::{Duo, REC, local, noise, tree};
use fspbx_ha_sync::WaitOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_burst_is_on_the_other_node_when_wait_returns() {
    let duo = Duo::start(&[REC]);
    let pair = duo.pair(&[(REC, 3600)]);
    pair.apply().await.unwrap();
    pair.wait(&WaitOptions::new(Duration::from_secs(60)), |_| {})
        .await
        .unwrap();
    for round in 0..5u64 {
        // Alternate the writing node, so both directions start from a peer with an empty index.
        let (from, to) = if round % 2 == 0 {
            (&duo.a, &duo.b)
        } else {
            (&duo.b, &duo.a)
        };
        let root = local(from, REC);
        for i in 0..60 {
            let d = root.join(format!("round {round}/{:02}", i % 20));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join(format!("msg {i:03}.wav")),
                noise(16 * 1024, round * 1000 + i),
            )
            .unwrap();
        }
        std::fs::write(
            root.join(format!("large {round}.wav")),
            noise(3 << 20, round),
        )
        .unwrap();
        pair.wait(&WaitOptions::new(Duration::from_secs(60)), |_| {})
            .await
            .unwrap();
        assert_eq!(
            tree(&local(to, REC)),
            tree(&root),
            "round {round}: wait returned before the burst arrived"
        );
    }
}
