//! `fspbx-ha sync {plan,apply,status,wait}` against two real Syncthing daemons whose APIs
//! listen on 127.0.0.1 and are reached through the nodes' real sshd.
//!
//! The two lab nodes share one filesystem, so both daemons are given the same folder path
//! here (the configuration has one path per folder, the same on both nodes); files crossing
//! between two trees is proven by fspbx-ha-sync's and fspbx-ha-core's tests.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use fspbx_ha_core::SecretRef;
use fspbx_ha_core::config::{ClusterConfig, FolderSpec, SyncthingSpec};
use fspbx_ha_lab::sshd::{ClientKey, KeyKind, Sshd, SshdOptions, write_known_hosts};
use fspbx_ha_lab::syncthing::{Syncthing, SyncthingOptions};

fn fspbx_ha() -> Command {
    let mut c = Command::cargo_bin("fspbx-ha").unwrap();
    c.env_remove("FSPBX_HA_CONFIG").env_remove("FSPBX_HA_LOG");
    c
}

struct Lab {
    _dir: tempfile::TempDir,
    _sshd: [Sshd; 2],
    st: [Syncthing; 2],
    config: PathBuf,
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let key = ClientKey::generate(dir.path(), KeyKind::Ed25519, None).unwrap();
    let sshd = [fspbx_ha_lab::NODE_A_IP, fspbx_ha_lab::NODE_B_IP].map(|ip| {
        Sshd::start(SshdOptions {
            ip,
            authorized_keys: vec![key.public_line().to_owned()],
            ..SshdOptions::default()
        })
        .unwrap()
    });
    let loopback = Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let st = [SyncthingOptions::node_a(), SyncthingOptions::node_b()].map(|o| {
        Syncthing::start(SyncthingOptions {
            gui_ip: loopback,
            ..o
        })
        .unwrap()
    });
    let known = dir.path().join("known_hosts");
    write_known_hosts(
        &known,
        &[sshd[0].known_hosts_line(), sshd[1].known_hosts_line()],
    )
    .unwrap();
    let shared = dir.path().join("recordings dir");
    std::fs::create_dir_all(&shared).unwrap();

    let mut c = ClusterConfig::from_toml_str(&ClusterConfig::template()).unwrap();
    for i in 0..2 {
        let n = &mut c.nodes[i];
        n.addresses = vec![sshd[i].ip()];
        n.ssh.host = sshd[i].ip().to_string();
        n.ssh.port = sshd[i].port();
        n.ssh.identity = key.private_path().to_owned();
        n.ssh.known_hosts = known.clone();
        n.ssh.connect_attempts = 1;
        n.syncthing = Some(SyncthingSpec {
            url: format!("http://127.0.0.1:{}", st[i].gui_addr().port()),
            api_key: SecretRef::file(st[i].api_key_file()),
            via_ssh: true,
            folder_root: None,
        });
    }
    c.folders = vec![FolderSpec {
        path: shared,
        id: None,
        rescan_interval_s: 300,
    }];
    let config = dir.path().join("cluster.toml");
    std::fs::write(&config, c.to_toml()).unwrap();
    Lab {
        _dir: dir,
        _sshd: sshd,
        st,
        config,
    }
}

fn json(config: &Path, args: &[&str], code: i32) -> serde_json::Value {
    let out = fspbx_ha()
        .arg("--config")
        .arg(config)
        .arg("--json")
        .args(args)
        .assert()
        .code(code)
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

#[test]
fn plan_apply_status_wait_and_a_second_apply_that_changes_nothing() {
    let lab = lab();
    let plan = json(&lab.config, &["sync", "plan"], 0);
    assert_eq!(plan["steps"].as_array().unwrap().len(), 4, "{plan:#}");
    assert_eq!(plan["sync_addresses"][1], lab.st[1].listen_address());

    // Human apply output lists the steps.
    fspbx_ha()
        .arg("--config")
        .arg(&lab.config)
        .args(["sync", "apply"])
        .assert()
        .code(0)
        .stderr(predicates::str::contains("4 step(s):"))
        .stderr(predicates::str::contains("add device"))
        .stdout(predicates::str::contains("applied 4 step(s)"));

    let wait = json(&lab.config, &["sync", "wait", "--timeout", "60s"], 0);
    assert_eq!(wait["complete"], true);

    let status = json(&lab.config, &["sync", "status"], 0);
    assert_eq!(status["complete"], true, "{status:#}");
    let nodes = status["status"]["sync"]["nodes"].as_array().unwrap();
    assert!(nodes.iter().all(|n| n["peer_connected"] == true));
    let dirs = status["status"]["sync"]["folders"][0]["directions"]
        .as_array()
        .unwrap();
    assert!(
        dirs.iter()
            .all(|d| d["completion"] == 100.0 && d["complete"] == true),
        "{status:#}"
    );
    assert_eq!(status["status"]["conflicts"][0]["count"], 0);

    fspbx_ha()
        .arg("--config")
        .arg(&lab.config)
        .args(["sync", "status"])
        .assert()
        .code(0)
        .stdout(predicates::str::contains(
            "in sync: 1 folder(s) complete both ways",
        ));

    let again = json(&lab.config, &["sync", "apply"], 0);
    assert_eq!(again["applied"].as_array().unwrap().len(), 0, "{again:#}");
    let text = std::str::from_utf8(
        &fspbx_ha()
            .arg("--config")
            .arg(&lab.config)
            .args(["sync", "plan"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .to_owned();
    assert!(text.contains("nothing to change"), "{text}");
    assert!(!text.contains(lab.st[0].api_key()));
}

#[test]
fn a_daemon_down_exits_3_naming_the_node_and_status_before_pairing_exits_1() {
    let mut lab = lab();
    let status = json(&lab.config, &["sync", "status"], 1);
    assert_eq!(status["complete"], false);
    // Not paired yet: wait gives up after its timeout with exit 1 and says what is pending.
    let out = fspbx_ha()
        .arg("--config")
        .arg(&lab.config)
        .args(["sync", "wait", "--timeout", "1s", "--no-rescan"])
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8_lossy(&out);
    assert!(
        err.contains("sync not complete after 1s") && err.contains("not shared both ways"),
        "{err}"
    );
    lab.st[1].stop();
    let out = fspbx_ha()
        .arg("--config")
        .arg(&lab.config)
        .args(["sync", "plan"])
        .assert()
        .code(3)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8_lossy(&out);
    assert!(err.contains("node b: cannot reach Syncthing"), "{err}");
    assert!(!err.contains(lab.st[1].api_key()));
}
