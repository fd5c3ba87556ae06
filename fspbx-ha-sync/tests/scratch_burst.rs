mod common;
use std::time::Duration;
use common::{Duo, REC, local, noise};
use fspbx_ha_sync::WaitOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() {
    let duo = Duo::start(&[REC]);
    let pair = duo.pair(&[(REC, 3600)]);
    pair.apply().await.unwrap();
    pair.wait(&WaitOptions::new(Duration::from_secs(60)), |_| {}).await.unwrap();
    let (ca, cb) = (duo.client(0), duo.client(1));
    let id = fspbx_ha_sync::stable_folder_id(REC);
    for tag in 0..8u64 {
        let root = local(&duo.a, REC);
        for i in 0..100 {
            let d = root.join(format!("tenant-{tag}/{:02}", i % 50));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("call {i:05}.wav")), noise(32 * 1024, tag * 1000 + i)).unwrap();
        }
        std::fs::write(root.join(format!("large-{tag}.wav")), noise(4 << 20, tag)).unwrap();
        let mut reads = Vec::new();
        pair.wait(&WaitOptions::new(Duration::from_secs(60)), |s| reads.push(s.summary())).await.unwrap();
        let ok = local(&duo.b, REC).join(format!("large-{tag}.wav")).exists();
        eprintln!("TAG {tag}: ok={ok} reads={}", reads.len());
        if !ok {
            eprintln!("A status {:?}", ca.folder_status(&id).await.unwrap());
            eprintln!("B status {:?}", cb.folder_status(&id).await.unwrap());
            eprintln!("A view of B {:?}", ca.completion(&id, Some(&cb.my_id().await.unwrap())).await.unwrap());
            eprintln!("reads {reads:#?}");
        }
    }
}
