mod common;
use std::time::{Duration, Instant};
use fspbx_ha_lab::syncthing::{Syncthing, SyncthingOptions};
use fspbx_ha_sync::{FolderIntent, NodeIntent, PairIntent, Secret, SyncPair, SyncthingClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() {
    for round in 0..6 {
        let root = std::path::PathBuf::from(format!("/tmp/scratch-conn/{round}"));
        let _ = std::fs::remove_dir_all(&root);
        let a = Syncthing::start(SyncthingOptions { dir: Some(root.join("a")), ..SyncthingOptions::node_a() }).unwrap();
        let b = Syncthing::start(SyncthingOptions { dir: Some(root.join("b")), ..SyncthingOptions::node_b() }).unwrap();
        let ca = SyncthingClient::new("a", &a.api_url(), Secret::new(a.api_key())).unwrap();
        let cb = SyncthingClient::new("b", &b.api_url(), Secret::new(b.api_key())).unwrap();
        let pair = SyncPair::new([ca.clone(), cb.clone()], PairIntent {
            nodes: [NodeIntent::new("a", "a", Some(a.ip())), NodeIntent::new("b", "b", Some(b.ip()))],
            folders: Vec::<FolderIntent>::new(), hardening: false });
        let t = Instant::now();
        pair.apply().await.unwrap();
        loop {
            let c = ca.connections().await.unwrap();
            if c.connections.values().any(|c| c.connected) { break; }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("ROUND {round}: connected after {:?}", t.elapsed());
    }
}
