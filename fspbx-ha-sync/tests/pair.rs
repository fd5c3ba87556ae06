//! Pairing two real Syncthing daemons through the library, and files crossing both ways.

mod common;

use std::time::{Duration, Instant};

use common::{CACHE, Duo, REC, local, noise, tree};
use fspbx_ha_sync::plan::Action;
use fspbx_ha_sync::{ApplyEvent, Error, WaitOptions};

fn write(path: &std::path::Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_then_files_cross_both_ways_and_second_apply_is_empty() {
    let duo = Duo::start(&[REC, CACHE]);
    let pair = duo.pair(&[(REC, 3600), (CACHE, 300)]);

    let plan = pair.plan().await.unwrap();
    assert_eq!(
        plan.sync_addresses,
        [duo.a.listen_address(), duo.b.listen_address()]
    );
    let t0 = Instant::now();
    let report = pair.apply().await.unwrap();
    // 2 devices + 2 folders on each side (the lab already runs hardened).
    assert_eq!(report.applied.len(), 6, "{:#?}", report.applied);

    // What the daemons hold now, read back from each.
    let (ca, cb) = (duo.client(0), duo.client(1));
    let dev_b_on_a = ca.device(&plan.device_ids[1]).await.unwrap();
    assert_eq!(dev_b_on_a.addresses(), [duo.b.listen_address()]);
    assert_eq!(dev_b_on_a.name(), "lab-b");
    let dev_a_on_b = cb.device(&plan.device_ids[0]).await.unwrap();
    assert_eq!(dev_a_on_b.addresses(), [duo.a.listen_address()]);
    for (c, st) in [(&ca, &duo.a), (&cb, &duo.b)] {
        let folders = c.folders().await.unwrap();
        assert_eq!(folders.len(), 2);
        for f in &folders {
            assert_eq!(f.folder_type(), "sendreceive");
            assert!(f.fs_watcher_enabled());
            assert_eq!(f.device_ids().len(), 2);
            let want = if f.path().ends_with("recordings") {
                3600
            } else {
                300
            };
            assert_eq!(f.rescan_interval_s(), Some(want));
            assert!(f.path().starts_with(&st.data_root().display().to_string()));
        }
    }

    let mut first_connected = None;
    let status = pair
        .wait(&WaitOptions::new(Duration::from_secs(60)), |s| {
            if s.connected() && first_connected.is_none() {
                first_connected = Some(t0.elapsed());
            }
            if std::env::var_os("SYNC_TRACE").is_some() {
                eprintln!("{:?} {}", t0.elapsed(), s.summary());
            }
        })
        .await
        .unwrap();
    let connected_after = t0.elapsed();
    assert!(status.connected(), "{}", status.summary());
    assert!(status.is_complete());
    assert_eq!(status.folders.len(), 2);
    for f in &status.folders {
        for d in &f.directions {
            assert!(d.complete && d.shared && d.connected, "{f:?}");
            assert_eq!(d.completion, 100.0);
            assert_eq!((d.need_bytes, d.need_items), (0, 0));
        }
    }
    assert_eq!(
        status.nodes[0].device_id.as_deref(),
        Some(duo.a.device_id())
    );

    // Files written on A arrive on B's filesystem, identical, by the time wait returns.
    let rec_a = local(&duo.a, REC);
    let big = noise(4 * 1024 * 1024 + 123, 7);
    write(&rec_a.join("call 2026-11-30 10.00.wav"), b"RIFF fake audio");
    write(
        &rec_a.join("Gr\u{fc}\u{df}e aus K\u{f6}ln \u{2013} \u{65e5}\u{672c}.txt"),
        "non-ASCII name".as_bytes(),
    );
    write(
        &rec_a.join("tenant one/2026/11/voicemail msg.wav"),
        b"nested",
    );
    write(&rec_a.join("big.bin"), &big);
    write(&local(&duo.a, CACHE).join("cache.json"), b"{}");
    let t1 = Instant::now();
    let mut polls = 0;
    let status = pair
        .wait(&WaitOptions::new(Duration::from_secs(60)), |_| polls += 1)
        .await
        .unwrap();
    let a_to_b = t1.elapsed();
    assert!(status.is_complete());
    assert_eq!(tree(&local(&duo.b, REC)), tree(&rec_a));
    assert_eq!(tree(&local(&duo.b, REC)).len(), 4);
    assert_eq!(tree(&local(&duo.b, REC))["big.bin"], big);
    assert_eq!(tree(&local(&duo.b, CACHE)), tree(&local(&duo.a, CACHE)));

    // And the reverse: a change and a new file on B arrive on A.
    let rec_b = local(&duo.b, REC);
    write(&rec_b.join("from b \u{e9}t\u{e9}.txt"), b"written on b");
    write(
        &rec_b.join("call 2026-11-30 10.00.wav"),
        b"RIFF edited on b",
    );
    std::fs::remove_file(rec_b.join("tenant one/2026/11/voicemail msg.wav")).unwrap();
    let t2 = Instant::now();
    pair.wait(&WaitOptions::new(Duration::from_secs(60)), |_| {})
        .await
        .unwrap();
    let b_to_a = t2.elapsed();
    let on_a = tree(&rec_a);
    assert_eq!(on_a, tree(&rec_b));
    assert_eq!(on_a["from b \u{e9}t\u{e9}.txt"], b"written on b");
    assert_eq!(on_a["call 2026-11-30 10.00.wav"], b"RIFF edited on b");
    assert!(
        !on_a.contains_key("tenant one/2026/11/voicemail msg.wav"),
        "deletion crossed"
    );

    // A second apply changes nothing.
    let t3 = Instant::now();
    let again = pair.apply().await.unwrap();
    let second_apply = t3.elapsed();
    assert!(again.applied.is_empty(), "{:#?}", again.applied);
    assert!(pair.plan().await.unwrap().is_empty());

    eprintln!(
        "MEASURE pairing->connected {first_connected:?}, ->complete {connected_after:?}; A->B files (4 MB + 4 small) {a_to_b:?} \
         ({polls} status reads); B->A {b_to_a:?}; second apply {second_apply:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_folder_path_fails_before_any_change_naming_node_and_folder() {
    let duo = Duo::start(&[REC]);
    std::fs::remove_dir_all(local(&duo.b, REC)).unwrap();
    let pair = duo.pair(&[(REC, 3600)]);
    let err = pair.apply().await.unwrap_err();
    let text = err.to_string();
    match &err {
        Error::FolderUnusable {
            node, folder, path, ..
        } => {
            assert_eq!(node, "b");
            assert_eq!(folder, &fspbx_ha_sync::stable_folder_id(REC));
            assert_eq!(path, &local(&duo.b, REC).display().to_string());
        }
        other => panic!("{other:?}"),
    }
    assert!(
        text.starts_with("node b: folder \"fspbx-") && text.contains("does not exist"),
        "{text}"
    );
    // Nothing was changed on either daemon.
    assert_eq!(duo.client(0).devices().await.unwrap().len(), 1);
    assert_eq!(duo.client(1).folders().await.unwrap().len(), 0);
    // Create it, apply again: done.
    std::fs::create_dir_all(local(&duo.b, REC)).unwrap();
    assert_eq!(pair.apply().await.unwrap().applied.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_path_that_is_a_file_is_reported_by_the_daemon() {
    let duo = Duo::start(&[REC]);
    // On B, the folder path exists but is a file: Syncthing cannot use it.
    let on_b = local(&duo.b, REC);
    std::fs::remove_dir_all(&on_b).unwrap();
    std::fs::write(&on_b, b"not a directory").unwrap();
    let err = duo.pair(&[(REC, 3600)]).apply().await.unwrap_err();
    match &err {
        Error::FolderUnusable { node, folder, .. } => {
            assert_eq!(
                (node.as_str(), folder.as_str()),
                ("b", fspbx_ha_sync::stable_folder_id(REC).as_str())
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_in_the_middle_of_apply_then_apply_again_completes() {
    let mut duo = Duo::start(&[REC, CACHE]);
    let pair = duo.pair(&[(REC, 3600), (CACHE, 300)]);
    let mut applied = 0;
    let err = pair
        .apply_with(|ev| {
            if let ApplyEvent::Applied(_) = ev {
                applied += 1;
                if applied == 1 {
                    // Node B goes down after the first step reached node A.
                    duo.b.stop();
                }
            }
        })
        .await
        .unwrap_err();
    assert_eq!(applied, 1);
    assert_eq!(err.node(), Some("b"), "{err}");
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("cannot reach Syncthing"), "{err}");

    assert!(!duo.b.is_running());
    duo.b.start_again().unwrap();
    let report = pair.apply().await.unwrap();
    // Resumed, not repeated: node A keeps the device it got before the restart; only its address
    // (held back until the peer dials in, see SyncPair::apply_with) is set now.
    let summaries: Vec<String> = report.applied.iter().map(|s| s.summary()).collect();
    assert!(
        report
            .applied
            .iter()
            .all(|s| !(s.node == "a" && matches!(s.action, Action::AddDevice { .. }))),
        "{summaries:#?}"
    );
    assert!(
        report.applied.iter().any(|s| s.node == "a"
            && matches!(&s.action, Action::UpdateDevice { patch, .. }
                if patch["addresses"] == serde_json::json!([duo.b.listen_address()]))),
        "{summaries:#?}"
    );
    assert_eq!(report.applied.len(), 6, "{summaries:#?}");
    assert!(pair.apply().await.unwrap().applied.is_empty());
    pair.wait(&WaitOptions::new(Duration::from_secs(60)), |_| {})
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardening_turns_off_relays_and_discovery() {
    let duo = Duo::start(&[]);
    let ca = duo.client(0);
    // Turned on with a loopback discovery server only: the lab never talks to the internet
    // (NAT and local discovery would send multicast, so they stay off here; the plan for them
    // is covered by the unit tests).
    ca.patch_options(&serde_json::json!({
        "relaysEnabled": true,
        "globalAnnounceEnabled": true,
        "globalAnnounceServers": ["https://127.0.0.1:9/v2/?insecure"],
    }))
    .await
    .unwrap();
    let pair = duo.pair(&[]);
    let plan = pair.plan().await.unwrap();
    let opts: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::UpdateOptions { .. }))
        .collect();
    assert_eq!(opts.len(), 1);
    assert_eq!(opts[0].node, "a");
    pair.apply().await.unwrap();
    let o = ca.options().await.unwrap();
    assert_eq!(
        (
            o["relaysEnabled"].as_bool(),
            o["globalAnnounceEnabled"].as_bool()
        ),
        (Some(false), Some(false))
    );
    assert!(pair.plan().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_with_a_daemon_down_names_it_and_wait_times_out() {
    let mut duo = Duo::start(&[REC]);
    let pair = duo.pair(&[(REC, 3600)]);
    pair.apply().await.unwrap();
    pair.wait(&WaitOptions::new(Duration::from_secs(60)), |_| {})
        .await
        .unwrap();
    duo.b.stop();
    // Status does not fail: it says which node is down and that nothing is complete.
    let status = pair.status().await.unwrap();
    assert!(!status.is_complete());
    assert!(status.nodes[0].error.is_none());
    let err_b = status.nodes[1].error.as_deref().unwrap();
    assert!(err_b.starts_with("cannot reach Syncthing at"), "{err_b}");
    assert!(!status.nodes[0].peer_connected || !status.connected());
    assert!(
        status.pending().contains("node b: cannot reach Syncthing"),
        "{}",
        status.pending()
    );
    // wait (without the rescan, which needs both daemons) gives up naming what is pending.
    let mut options = WaitOptions::new(Duration::from_secs(1));
    options.rescan = false;
    let err = pair.wait(&options, |_| {}).await.unwrap_err();
    assert!(
        matches!(&err, Error::WaitTimeout { pending, .. } if pending.contains("node b")),
        "{err}"
    );
}
