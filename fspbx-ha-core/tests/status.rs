//! `status::pair_status` against the full lab: Knot, replication, Syncthing through SSH.

use std::time::Duration;

use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::files::{Files, FilesOptions};
use fspbx_ha_core::floating::{DEFAULT_NODE_TTL, Floating};
use fspbx_ha_core::replication::{self, Intent, NoProgress, Pair, Verdict};
use fspbx_ha_core::status::{Part, pair_status};
use fspbx_ha_lab::cluster_toml::write_cluster_toml;
use fspbx_ha_lab::lab::{Lab, LabOptions};

#[tokio::test]
async fn a_set_up_pair_is_healthy_and_a_dead_database_breaks_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Lab::start(LabOptions {
        dns: true,
        syncthing: true,
        ..LabOptions::new(dir.path().join("lab"))
    })
    .unwrap();
    let config = ClusterConfig::load(write_cluster_toml(&lab.topology()).unwrap()).unwrap();

    // Nothing set up yet: the floating record is absent and replication does not flow.
    let before = pair_status(&config).await;
    assert_eq!(before.verdict, Verdict::Broken, "{}", before.render());
    assert!(
        before.reasons.iter().any(|r| r.contains("is absent")),
        "{:?}",
        before.reasons
    );

    // Set everything up through the libraries.
    let floating = Floating::new(&config).unwrap();
    floating.apply(DEFAULT_NODE_TTL).await.unwrap();
    floating
        .verify(None, Duration::from_secs(30))
        .await
        .unwrap();
    let mut pair = Pair::connect(&config).await.unwrap();
    let plan = pair.plan(&Intent::default()).await.unwrap();
    replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .unwrap();
    let files = Files::connect(&config, FilesOptions::default())
        .await
        .unwrap();
    files.apply().await.unwrap();
    files
        .wait(
            &fspbx_ha_sync::WaitOptions::new(Duration::from_secs(60)),
            |_| {},
        )
        .await
        .unwrap();

    let healthy = pair_status(&config).await;
    assert_eq!(healthy.verdict, Verdict::Healthy, "{}", healthy.render());
    let Part::Ok { value: f } = &healthy.floating else {
        panic!("floating unreadable: {}", healthy.render())
    };
    assert_eq!(f.active_node.as_deref(), Some("a"));
    assert_eq!(f.servers.len(), 2, "primary and secondary were asked");
    let Part::Ok {
        value: files_status,
    } = &healthy.files
    else {
        panic!("files unreadable: {}", healthy.render())
    };
    assert!(files_status.sync.is_complete() && files_status.sync.connected());
    let text = healthy.render();
    assert!(text.starts_with("pair: healthy"), "{text}");

    // Node B's database dies: replication cannot be read, the pair is broken and says why.
    lab.b_mut().pg.kill_hard();
    let broken = pair_status(&config).await;
    assert_eq!(broken.verdict, Verdict::Broken, "{}", broken.render());
    assert!(
        broken
            .reasons
            .iter()
            .any(|r| r.starts_with("replication:") && r.contains("node b")),
        "{:?}",
        broken.reasons
    );
    // The other parts are still read.
    assert!(matches!(broken.floating, Part::Ok { .. }));
    // And node A's slots, read on their own: the slot B consumes is inactive now, and A keeps
    // WAL for it; the status says so.
    let slots = broken
        .reachable_slots
        .as_ref()
        .unwrap_or_else(|| panic!("no reachable slots: {}", broken.render()));
    assert_eq!(slots.nodes.len(), 1, "only node a answers");
    assert_eq!(slots.nodes[0].node, "a");
    let subscribed = slots.nodes[0]
        .slots
        .iter()
        .find(|s| s.name == config.replication.subscription_a_to_b)
        .unwrap_or_else(|| panic!("{slots:?}"));
    assert!(subscribed.retained_bytes.is_some(), "{subscribed:?}");
    let inactive_seen = |s: &fspbx_ha_core::status::PairStatus| {
        s.reasons
            .iter()
            .any(|r| r.starts_with("slots:") && r.contains("inactive"))
    };
    // The walsender may need a moment to notice its peer is gone.
    let mut now = broken;
    for _ in 0..40 {
        if inactive_seen(&now) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        now = pair_status(&config).await;
    }
    assert!(inactive_seen(&now), "{}", now.render());
    assert!(now.render().contains("  slots        "), "{}", now.render());
}
