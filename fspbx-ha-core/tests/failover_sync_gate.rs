//! The "Syncthing complete" precondition, fed to the policy from a real observation: the
//! controller asks both Syncthing daemons (through SSH forwards, as the lab's cluster.toml
//! says) whether every shared folder is complete in the direction into each node.
//!
//! With `failover.sync = "hard"` and the pair not mirrored yet (the folder is not shared, so B
//! is not complete), node A's SIP stack dies: no flip, one critical alert naming the gate.
//! Then the folders are paired and synced: the next measurement finds B complete and the
//! controller fails over to B by itself.
//!
//! With `failover.sync = "soft"` in the same situation the flip happens at once, and the unmet
//! gate is said loudly: a warning decision in the audit log and a notification.

mod failover_support;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_dns::propagation::Checker;
use fspbx_ha_lab::lab::Lab;

use failover_support::{
    INTERVAL, Running, all_answer, config_for, events, floating_on_a, start_lab, wait_until,
};
use fspbx_ha_core::config::FolderSpec;
use fspbx_ha_core::failover::Requirement;
use fspbx_ha_core::files::{Files, FilesOptions};
use fspbx_ha_sync::WaitOptions;

/// The CI settings with the Syncthing gate as `sync`, measured every second, on one folder.
fn gated(lab: &Lab, sync: Requirement) -> ClusterConfig {
    let mut config = config_for(lab);
    config.failover.sync = sync;
    config.failover.preconditions_interval = Duration::from_secs(1);
    config.folders = vec![FolderSpec {
        path: "/var/lib/freeswitch/recordings".into(),
        id: None,
        rescan_interval_s: 3600,
    }];
    config
}

/// Starts the controller and waits until both nodes are up and Syncthing is measured (B: the
/// folder is not shared, so not complete), then a few rounds more.
async fn start_measured(config: &ClusterConfig) -> Running {
    let audit = config.failover.audit_log.as_path();
    let run = Running::start(config).await;
    let measured = wait_until(Duration::from_secs(10), || async move {
        events(audit, "preconditions")
            .iter()
            .any(|r| r.detail.to_string().contains("SyncComplete"))
    })
    .await;
    assert!(measured, "{:#?}", events(audit, "preconditions"));
    tokio::time::sleep(INTERVAL * 3).await;
    run
}

/// Whether every authoritative server came to answer `addr` for `name` (within 15 s), and
/// whether the controller then recorded its flip (it does once every server answers, a moment
/// after we see it; 5 s more).
async fn moved_and_recorded(
    checker: &Checker,
    name: &str,
    addr: &[IpAddr],
    audit: &Path,
) -> (bool, bool) {
    let moved = wait_until(Duration::from_secs(15), || all_answer(checker, name, addr)).await;
    let recorded = wait_until(Duration::from_secs(5), || async move {
        !events(audit, "flip").is_empty()
    })
    .await;
    (moved, recorded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_sync_gate_blocks_until_syncthing_reports_the_standby_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = start_lab(dir.path(), true);
    let config = gated(&lab, Requirement::Hard);
    let audit = config.failover.audit_log.clone();
    let (_floating, checker) = floating_on_a(&config).await;
    let name = config.floating.name.clone();
    let (addr_a, addr_b) = (
        config.nodes[0].addresses.clone(),
        config.nodes[1].addresses.clone(),
    );

    let run = start_measured(&config).await;
    // A's SIP stack dies; its Syncthing (and the rest) still answer.
    lab.a_mut().sip.as_mut().unwrap().kill_hard();
    let blocked = |r: &fspbx_ha_core::failover::AuditRecord| {
        r.level == "critical" && r.message.contains("failover to B is blocked")
    };
    let alerted = wait_until(Duration::from_secs(10), || async {
        events(&audit, "decision").iter().any(blocked)
    })
    .await;
    assert!(alerted, "{:#?}", events(&audit, "decision"));
    // Still blocked a while later, still one alert, the record still on A.
    tokio::time::sleep(INTERVAL * 8).await;
    let alerts: Vec<_> = events(&audit, "decision")
        .into_iter()
        .filter(|r| blocked(r))
        .collect();
    assert_eq!(alerts.len(), 1, "one alert, not one per round: {alerts:#?}");
    assert!(
        alerts[0].message.contains("Syncthing"),
        "the alert names the gate: {}",
        alerts[0].message
    );
    assert!(events(&audit, "flip").is_empty());
    assert!(all_answer(&checker, &name, &addr_a).await);

    // The folders are mirrored: once Syncthing reports B complete, the controller flips.
    let files = Files::connect(&config, FilesOptions::default())
        .await
        .unwrap();
    files.apply().await.unwrap();
    let st = files
        .wait(&WaitOptions::new(Duration::from_secs(60)), |_| {})
        .await
        .unwrap();
    assert!(st.is_complete(), "{}", st.summary());
    let (moved, recorded) = moved_and_recorded(&checker, &name, &addr_b, &audit).await;
    let status = run.stop().await;
    assert!(moved && recorded, "{:#?}", events(&audit, "preconditions"));
    assert_eq!(status.flips_ok, 1, "{status:#?}");
    let complete = events(&audit, "preconditions")
        .into_iter()
        .rev()
        .find(|r| r.level == "info")
        .expect("a measurement");
    assert!(
        complete.detail.to_string().contains(
            &serde_json::json!({"SyncComplete": {"node": "B", "complete": true}}).to_string()
        ),
        "{complete:#?}"
    );
    // The flip came without a "despite" warning: the gate held.
    assert!(
        !events(&audit, "decision")
            .iter()
            .any(|r| r.message.contains("failing over despite")),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soft_sync_gate_lets_the_flip_happen_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = start_lab(dir.path(), true);
    let mut config = gated(&lab, Requirement::Soft);
    let notes = lab.dir().join("notifications.txt");
    config.failover.notify_command = Some(format!(
        "echo \"$FSPBX_HA_LEVEL $FSPBX_HA_EVENT $FSPBX_HA_MESSAGE\" >> {}",
        notes.display()
    ));
    let audit = config.failover.audit_log.clone();
    let (_floating, checker) = floating_on_a(&config).await;
    let name = config.floating.name.clone();
    let addr_b = config.nodes[1].addresses.clone();

    let run = start_measured(&config).await;
    lab.a_mut().sip.as_mut().unwrap().kill_hard();
    let (moved, recorded) = moved_and_recorded(&checker, &name, &addr_b, &audit).await;
    let status = run.stop().await;
    assert!(moved && recorded, "{:#?}", events(&audit, "decision"));
    assert_eq!(status.flips_ok, 1, "{status:#?}");
    let despite = "failing over despite: Syncthing folders on B are not complete";
    let warned: Vec<_> = events(&audit, "decision")
        .into_iter()
        .filter(|r| r.message.contains(despite))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert_eq!(warned[0].level, "warning");
    assert!(
        warned[0].at <= events(&audit, "flip")[0].at,
        "the warning comes with the decision, before the flip"
    );
    // The notification went out too (the notify command runs in the background).
    let notified = wait_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&notes).unwrap_or_default();
        async move { text.contains(&format!("warning decision {despite}")) }
    })
    .await;
    assert!(
        notified,
        "{}",
        std::fs::read_to_string(&notes).unwrap_or_default()
    );
}
