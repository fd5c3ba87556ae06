//! After a flip, the controller verifies what the HA guide says to verify: phones registering
//! on the new active node. In the lab, node B's Kamailio is a registrar (it stands in for
//! FreeSWITCH's registrations), `failover.registrations_command` reads its count over SSH
//! (printed as `N total.`, like `fs_cli -x 'show registrations'`), and `sipsak` clients
//! register to B after node A is SIGKILLed. The audit log must show the count on B rising from
//! 0 to 3, and `failover status` must report those samples.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::failover::registrations::{self, RegistrationSample};
use fspbx_ha_core::failover::{Controller, Requirement, read_tail, status_report};
use fspbx_ha_core::floating::{DEFAULT_NODE_TTL, Floating};
use fspbx_ha_lab::cluster_toml::write_cluster_toml;
use fspbx_ha_lab::lab::{Lab, LabOptions};
use tokio::sync::oneshot;

const INTERVAL: Duration = Duration::from_millis(300);
const USERS: [&str; 3] = ["u100", "u101", "u102"];

fn config_for(lab: &Lab, command: String) -> ClusterConfig {
    let path = write_cluster_toml(&lab.topology()).unwrap();
    let mut c = ClusterConfig::load(&path).unwrap();
    c.policy.interval = INTERVAL;
    c.policy.fall = 3;
    c.policy.rise = 2;
    c.policy.hold_down = Duration::from_secs(60);
    for n in &mut c.nodes {
        n.probes.timeout = Duration::from_millis(250);
    }
    c.failover.lag = Requirement::Off;
    c.failover.schema = Requirement::Off;
    c.failover.sync = Requirement::Off;
    c.failover.record_refresh = Duration::from_secs(1);
    c.failover.fence_timeout = Duration::from_secs(2);
    c.failover.registrations_command = command;
    c.failover.registrations_watch = Duration::from_secs(30);
    c.failover.registrations_interval = Duration::from_millis(500);
    c
}

/// The `registrations` samples in the audit log, oldest first.
fn samples(audit: &Path) -> Vec<RegistrationSample> {
    registrations::samples_in(&read_tail(audit, 100_000).unwrap())
}

async fn wait_for_sample(
    audit: &Path,
    limit: Duration,
    want: impl Fn(&RegistrationSample) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if samples(audit).iter().any(&want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_on_the_new_active_node_are_sampled_after_a_flip() {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Lab::start(LabOptions {
        dns: true,
        sip: true,
        ..LabOptions::new(dir.path().join("lab"))
    })
    .unwrap();
    let sip_b = lab.b_mut().sip.as_mut().unwrap();
    sip_b.set_registrar(true).unwrap();
    let (b_addr, command) = (sip_b.addr(), sip_b.registrations_command());
    let config = config_for(&lab, command);
    let audit = config.failover.audit_log.clone();
    let floating = Floating::new(&config).unwrap();
    floating.apply(DEFAULT_NODE_TTL).await.unwrap();

    let controller = Controller::new(config.clone()).await.unwrap();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        controller
            .run(async {
                let _ = rx.await;
            })
            .await
            .unwrap()
    });
    // Both nodes come up (rise rounds) before A dies.
    tokio::time::sleep(INTERVAL * 6).await;
    assert!(samples(&audit).is_empty(), "no flip, no samples");
    {
        let a = lab.a_mut();
        a.pg.kill_hard();
        a.sshd.kill_hard();
        a.sip.as_mut().unwrap().kill_hard();
    }

    // The flip to B is followed by a first sample: nobody registered there yet.
    assert!(
        wait_for_sample(&audit, Duration::from_secs(20), |s| s.node == "b"
            && s.count == Some(0))
        .await,
        "a sample of 0 registrations on b after the flip: {:#?}",
        samples(&audit)
    );
    // Phones re-register to the new active node.
    for (i, user) in USERS.iter().enumerate() {
        let out = Command::new("sipsak")
            .args(["-U", "-i", "-x", "60", "-C"])
            .arg(format!("sip:{user}@127.0.0.1:{}", 5070 + i))
            .arg("-s")
            .arg(format!("sip:{user}@{b_addr}"))
            .output()
            .expect("sipsak runs");
        assert!(
            out.status.success(),
            "sipsak registers {user}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        wait_for_sample(&audit, Duration::from_secs(10), |s| s.node == "b"
            && s.count == Some(USERS.len() as u64))
        .await,
        "a sample of {} registrations on b: {:#?}",
        USERS.len(),
        samples(&audit)
    );

    let all = samples(&audit);
    for s in &all {
        println!(
            "registrations on {} at +{:.1} s: {:?}",
            s.node, s.seconds_since_flip, s.count
        );
    }
    assert!(
        all.iter().all(|s| s.node == "b"),
        "only b is sampled: {all:#?}"
    );
    let counts: Vec<u64> = all.iter().filter_map(|s| s.count).collect();
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "registrations only rise: {counts:?}"
    );
    assert!(
        all.windows(2)
            .all(|w| w[0].seconds_since_flip < w[1].seconds_since_flip),
        "samples are taken over time: {all:#?}"
    );

    let report = status_report(&config, 5).await.unwrap();
    assert_eq!(report.active_node.as_deref(), Some("b"));
    let last = report.registrations.last().expect("status reports samples");
    assert_eq!((last.node.as_str(), last.count), ("b", Some(3)));
    assert!(report.registrations.iter().any(|s| s.count == Some(0)));

    let _ = stop.send(());
    let status = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the controller stops when asked")
        .unwrap();
    assert_eq!(status.flips_ok, 1, "{status:#?}");
}
