//! `fspbx-ha sync {plan,apply,status,wait}` against the lab's two real Syncthing daemons, whose
//! APIs listen on 127.0.0.1 and are reached through the nodes' real sshd.
//!
//! The configuration is the lab's own `cluster.toml` (each node's folders under its own
//! `folder_root`), narrowed to one folder whose path holds a space, so a file written on node A
//! can be seen arriving in node B's tree.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use fspbx_ha_core::config::{ClusterConfig, FolderSpec};
use fspbx_ha_lab::cluster_toml::write_cluster_toml;
use fspbx_ha_lab::lab::{Lab, LabOptions, node_files_root};
use fspbx_ha_lab::syncthing::Syncthing;

/// The one mirrored folder (a space in it: the SSH path check must quote it).
const FOLDER: &str = "/var/lib/freeswitch/recordings dir";

fn fspbx_ha() -> Command {
    let mut c = Command::cargo_bin("fspbx-ha").unwrap();
    c.env_remove("FSPBX_HA_CONFIG").env_remove("FSPBX_HA_LOG");
    c
}

/// The lab (stopped on drop, before its directory is removed) and the configuration file.
struct SyncLab {
    lab: Lab,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl SyncLab {
    fn st(&self, i: usize) -> &Syncthing {
        let node = if i == 0 { self.lab.a() } else { self.lab.b() };
        node.syncthing.as_ref().expect("the lab runs Syncthing")
    }

    /// `FOLDER` as it is on node `name`'s disk.
    fn folder(&self, name: &str) -> PathBuf {
        node_files_root(self.lab.dir(), name).join(FOLDER.trim_start_matches('/'))
    }
}

fn lab() -> SyncLab {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(LabOptions {
        syncthing: true,
        ..LabOptions::new(dir.path().join("lab"))
    })
    .unwrap();
    let path = write_cluster_toml(&lab.topology()).unwrap();
    let mut c = ClusterConfig::load(&path).unwrap();
    for n in &mut c.nodes {
        n.ssh.connect_attempts = 1;
        let st = n
            .syncthing
            .as_ref()
            .expect("[nodes.syncthing] written by the lab");
        assert!(st.via_ssh && st.folder_root.is_some(), "{st:?}");
    }
    c.folders = vec![FolderSpec {
        path: FOLDER.into(),
        id: None,
        rescan_interval_s: 300,
    }];
    assert!(c.problems().is_empty(), "{:?}", c.problems());
    let config = dir.path().join("cluster.toml");
    std::fs::write(&config, c.to_toml()).unwrap();
    let lab = SyncLab {
        lab,
        config,
        _dir: dir,
    };
    for node in ["a", "b"] {
        std::fs::create_dir_all(lab.folder(node)).unwrap();
    }
    lab
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
    assert_eq!(plan["sync_addresses"][1], lab.st(1).listen_address());

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

    // Each node has its own tree: a file written in node A's folder must cross to node B's.
    let name = "crossed \u{2713}.wav";
    assert!(!lab.folder("b").join(name).exists());
    std::fs::write(lab.folder("a").join(name), b"from node a").unwrap();
    let wait = json(&lab.config, &["sync", "wait", "--timeout", "60s"], 0);
    assert_eq!(wait["complete"], true);
    assert_eq!(
        std::fs::read(lab.folder("b").join(name)).unwrap(),
        b"from node a",
        "the file written on node A is on node B after `sync wait`"
    );

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
    assert!(!text.contains(lab.st(0).api_key()));
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
    lab.lab.b_mut().syncthing.as_mut().unwrap().stop();
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
    assert!(!err.contains(lab.st(1).api_key()));
}
