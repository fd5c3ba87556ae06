//! After a flip, the controller verifies what the HA guide says to verify: phones registering
//! on the new active node and calls being served there. In the lab, node B's Kamailio stands
//! in for FreeSWITCH: a registrar (sipsak clients register to it) and a call server (a SIPp
//! UAC places calls through it to a SIPp UAS; Kamailio's dialog module tracks them).
//! `failover.registrations_command` and `failover.calls_command` read its counts over SSH,
//! printed as `N total.` like `fs_cli -x 'show registrations'` / `fs_cli -x 'show calls
//! count'`. Node A is SIGKILLed; after the flip both counts on B must rise from 0 to 3 in the
//! audit log, with the calls placed to the node the floating name answers, and `failover
//! status` must report the samples.

mod failover_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use failover_support::{
    INTERVAL, Running, answers, config_for, floating_on_a, kill_node, start_lab,
};
use fspbx_ha_core::failover::counts::{CountKind, CountSample, samples_in};
use fspbx_ha_core::failover::{read_tail, status_report};
use fspbx_ha_lab::sipp::{SippCalls, SippUas};

const USERS: [&str; 3] = ["u100", "u101", "u102"];
const CALLS: u32 = 3;

/// The samples of `kind` in the audit log, oldest first.
fn samples(audit: &Path, kind: CountKind) -> Vec<CountSample> {
    samples_in(&read_tail(audit, 100_000).unwrap(), kind)
}

async fn wait_for_sample(
    audit: &Path,
    kind: CountKind,
    limit: Duration,
    want: impl Fn(&CountSample) -> bool,
) -> bool {
    failover_support::wait_until(limit, || {
        let hit = samples(audit, kind).iter().any(&want);
        async move { hit }
    })
    .await
}

/// The samples of `kind` are all on b, taken over time, never falling, and end at `last`.
fn assert_rising_on_b(audit: &Path, kind: CountKind, last: u64) {
    let all = samples(audit, kind);
    for s in &all {
        println!(
            "{kind} on {} at +{:.1} s: {:?}",
            s.node, s.seconds_since_flip, s.count
        );
    }
    assert!(
        all.iter().all(|s| s.node == "b"),
        "only b is sampled: {all:#?}"
    );
    let counts: Vec<u64> = all.iter().filter_map(|s| s.count).collect();
    assert_eq!(counts.first(), Some(&0), "{kind} start at 0: {counts:?}");
    assert_eq!(counts.last(), Some(&last), "{kind}: {counts:?}");
    assert!(
        counts.windows(2).all(|w| w[0] <= w[1]),
        "{kind} only rise: {counts:?}"
    );
    assert!(
        all.windows(2)
            .all(|w| w[0].seconds_since_flip < w[1].seconds_since_flip),
        "samples are taken over time: {all:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_and_calls_on_the_new_active_node_are_counted_after_a_flip() {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = start_lab(dir.path(), false);
    // On node B: the endpoint answering calls, and Kamailio as registrar and call server.
    let uas = SippUas::start(fspbx_ha_lab::NODE_B_IP, None).unwrap();
    let sip_b = lab.b_mut().sip.as_mut().unwrap();
    sip_b.set_registrar(true).unwrap();
    sip_b.set_calls(Some(uas.addr())).unwrap();
    let (sip_b_addr, registrations_command, calls_command) = (
        sip_b.addr(),
        sip_b.registrations_command(),
        sip_b.calls_command(),
    );
    let mut config = config_for(&lab);
    config.failover.registrations_command = registrations_command;
    config.failover.calls_command = calls_command;
    for (watch, interval) in [
        (
            &mut config.failover.registrations_watch,
            &mut config.failover.registrations_interval,
        ),
        (
            &mut config.failover.calls_watch,
            &mut config.failover.calls_interval,
        ),
    ] {
        *watch = Duration::from_secs(30);
        *interval = Duration::from_millis(500);
    }
    let audit = config.failover.audit_log.clone();
    let (_floating, checker) = floating_on_a(&config).await;

    let run = Running::start(&config).await;
    // Both nodes come up (rise rounds) before A dies.
    tokio::time::sleep(INTERVAL * 6).await;
    for kind in CountKind::ALL {
        assert!(samples(&audit, kind).is_empty(), "no flip, no {kind}");
    }
    kill_node(&mut lab, "a");

    // The flip to B is followed by first samples: nobody registered or calling there yet.
    for kind in CountKind::ALL {
        assert!(
            wait_for_sample(&audit, kind, Duration::from_secs(20), |s| s.node == "b"
                && s.count == Some(0))
            .await,
            "a sample of 0 {kind} on b after the flip: {:#?}",
            samples(&audit, kind)
        );
    }

    // Phones follow the floating name: it now answers B's address, where B's Kamailio listens.
    let name = config.floating.name.clone();
    let answered = answers(&checker, &name).await;
    let ip = answered[0].as_ref().expect("the floating name answers")[0];
    assert!(
        answered.iter().all(|a| a.as_deref() == Some(&[ip][..])),
        "{answered:?}"
    );
    assert_eq!(ip, sip_b_addr.ip(), "the floating name points at B");
    let served_by = SocketAddr::new(ip, sip_b_addr.port());
    for (i, user) in USERS.iter().enumerate() {
        let out = Command::new("sipsak")
            .args(["-U", "-i", "-x", "60", "-C"])
            .arg(format!("sip:{user}@127.0.0.1:{}", 5070 + i))
            .arg("-s")
            .arg(format!("sip:{user}@{served_by}"))
            .output()
            .expect("sipsak runs");
        assert!(
            out.status.success(),
            "sipsak registers {user}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Calls placed to that node, held long enough to be counted.
    let calls = SippCalls::place(
        served_by,
        "127.0.0.1".parse().unwrap(),
        CALLS,
        Duration::from_secs(20),
    )
    .unwrap();
    for (kind, n) in [
        (CountKind::Registrations, USERS.len() as u64),
        (CountKind::Calls, u64::from(CALLS)),
    ] {
        assert!(
            wait_for_sample(&audit, kind, Duration::from_secs(10), |s| s.node == "b"
                && s.count == Some(n))
            .await,
            "a sample of {n} {kind} on b: {:#?}\nSIPp: {}",
            samples(&audit, kind),
            calls.log_tail()
        );
    }
    assert!(calls.is_running(), "the calls are still held");
    assert_rising_on_b(&audit, CountKind::Registrations, USERS.len() as u64);
    assert_rising_on_b(&audit, CountKind::Calls, u64::from(CALLS));

    let report = status_report(&config, 5).await.unwrap();
    assert_eq!(report.active_node.as_deref(), Some("b"));
    for (got, n) in [
        (&report.registrations, USERS.len() as u64),
        (&report.calls, u64::from(CALLS)),
    ] {
        let last = got.last().expect("status reports samples");
        assert_eq!((last.node.as_str(), last.count), ("b", Some(n)));
        assert!(got.iter().any(|s| s.count == Some(0)));
    }
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["calls"].as_array().is_some_and(|a| !a.is_empty()));

    let status = run.stop().await;
    assert_eq!(status.flips_ok, 1, "{status:#?}");
    drop(calls);
    drop(uas);
}
