//! The Files bridge: the lab's cluster configuration and Syncthing pair, reached through SSH
//! local forwards to APIs listening only on each node's 127.0.0.1, against real sshd and
//! Syncthing. Each lab node keeps its folders under its own `folder_root`.

use std::path::PathBuf;
use std::time::Duration;

use fspbx_ha_core::config::{ClusterConfig, FolderSpec};
use fspbx_ha_core::files::{Files, FilesOptions};
use fspbx_ha_core::{Error, ErrorFamily, SecretRef};
use fspbx_ha_lab::cluster_toml::write_cluster_toml;
use fspbx_ha_lab::lab::{self, LabOptions, node_files_root};
use fspbx_ha_lab::syncthing::Syncthing;
use fspbx_ha_sync::WaitOptions;

const REC: &str = "/var/lib/freeswitch/recordings";
const STORAGE: &str = "/var/lib/freeswitch/storage";

/// The lab (stopped on drop, before its directory is removed).
struct Lab {
    lab: lab::Lab,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab::Lab::start(LabOptions {
            syncthing: true,
            ..LabOptions::new(dir.path().join("lab"))
        })
        .unwrap();
        // The lab creates FS PBX's folders under each node's root.
        for node in ["a", "b"] {
            for f in [REC, STORAGE] {
                assert!(local_in(lab.dir(), node, f).is_dir());
            }
        }
        Lab { lab, _dir: dir }
    }

    fn st(&self, i: usize) -> &Syncthing {
        let node = if i == 0 { self.lab.a() } else { self.lab.b() };
        node.syncthing.as_ref().expect("the lab runs Syncthing")
    }

    /// The lab's own cluster.toml, narrowed to two folders.
    fn config(&self) -> ClusterConfig {
        let path = write_cluster_toml(&self.lab.topology()).unwrap();
        let mut c = ClusterConfig::load(&path).unwrap();
        for n in &mut c.nodes {
            n.ssh.connect_attempts = 1;
            let st = n
                .syncthing
                .as_ref()
                .expect("[nodes.syncthing] written by the lab");
            assert!(st.via_ssh && st.folder_root.is_some(), "{st:?}");
        }
        c.folders = vec![
            FolderSpec {
                path: REC.into(),
                id: None,
                rescan_interval_s: 3600,
            },
            FolderSpec {
                path: STORAGE.into(),
                id: None,
                rescan_interval_s: 3600,
            },
        ];
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        c
    }

    /// The defaults: each node's path prefix comes from its `syncthing.folder_root`.
    fn options(&self) -> FilesOptions {
        FilesOptions::default()
    }

    /// `path` as it is on node `i`'s disk.
    fn local(&self, i: usize, path: &str) -> PathBuf {
        local_in(self.lab.dir(), ["a", "b"][i], path)
    }
}

fn local_in(dir: &std::path::Path, node: &str, path: &str) -> PathBuf {
    node_files_root(dir, node).join(path.trim_start_matches('/'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_through_ssh_forwards_sync_and_count_conflicts() {
    let lab = Lab::start();
    // The API is not reachable on the node's address, only on its loopback.
    let gui_port = lab.st(0).gui_addr().port();
    assert!(std::net::TcpStream::connect((fspbx_ha_lab::NODE_A_IP, gui_port)).is_err());

    let files = Files::connect(&lab.config(), lab.options()).await.unwrap();
    for c in files.pair().clients() {
        assert_eq!(c.base_url().host_str(), Some("127.0.0.1"));
        assert_ne!(
            c.base_url().port(),
            Some(lab.st(0).gui_addr().port()),
            "a forward's local port"
        );
    }
    let plan = files.plan().await.unwrap();
    // Node names, host names as device names, and the peer addresses from the configuration.
    assert_eq!(
        plan.sync_addresses,
        [lab.st(0).listen_address(), lab.st(1).listen_address()]
    );
    let report = files.apply().await.unwrap();
    assert_eq!(report.applied.len(), 6);
    let dev = files.pair().clients()[1]
        .device(&plan.device_ids[0])
        .await
        .unwrap();
    assert_eq!(dev.name(), "server1.example.test");

    std::fs::write(lab.local(0, REC).join("via ssh \u{2713}.wav"), b"tunnelled").unwrap();
    let status = files
        .wait(&WaitOptions::new(Duration::from_secs(60)), |_| {})
        .await
        .unwrap();
    assert!(
        status.is_complete() && status.connected(),
        "{}",
        status.summary()
    );
    assert_eq!(
        std::fs::read(lab.local(1, REC).join("via ssh \u{2713}.wav")).unwrap(),
        b"tunnelled"
    );

    // A conflict copy on B is counted there over SSH (and not on A before it syncs).
    let conflict = "greeting.sync-conflict-20261130-010203-ABCDEFG.wav";
    std::fs::write(lab.local(1, STORAGE).join(conflict), b"older").unwrap();
    let st = files.status().await.unwrap();
    assert_eq!(st.conflicts[1].count, Some(1), "{:?}", st.conflicts);
    assert_eq!(st.conflicts[0].count, Some(0), "{:?}", st.conflicts);
    files
        .wait(&WaitOptions::new(Duration::from_secs(60)), |_| {})
        .await
        .unwrap();
    let st = files.status().await.unwrap();
    assert_eq!(
        [st.conflicts[0].count, st.conflicts[1].count],
        [Some(1), Some(1)]
    );
    let json = serde_json::to_string(&st).unwrap();
    assert!(!json.contains(lab.st(0).api_key()) && !json.contains(lab.st(1).api_key()));

    assert!(
        files.apply().await.unwrap().applied.is_empty(),
        "second apply changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_or_missing_folder_is_named_before_any_change() {
    let lab = Lab::start();
    std::fs::remove_dir_all(lab.local(1, STORAGE)).unwrap();
    let files = Files::connect(&lab.config(), lab.options()).await.unwrap();
    let err = files.apply().await.unwrap_err();
    assert_eq!(err.family(), ErrorFamily::Sync);
    let text = err.to_string();
    assert!(
        matches!(&err, Error::Sync { node: Some(n), source } if n == "b"
            && matches!(&**source, fspbx_ha_sync::Error::FolderUnusable { folder, .. }
                if *folder == fspbx_ha_sync::stable_folder_id(STORAGE))),
        "{err:?}"
    );
    assert!(
        text.starts_with("node b: folder") && text.contains("checked over SSH"),
        "{text}"
    );
    assert_eq!(
        files.pair().clients()[0].devices().await.unwrap().len(),
        1,
        "nothing changed on a"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_and_missing_section_are_clear() {
    let lab = Lab::start();
    let mut config = lab.config();
    let wrong = lab.lab.dir().join("wrong_key");
    std::fs::write(&wrong, "wrong-key-value-2718").unwrap();
    config.nodes[0].syncthing.as_mut().unwrap().api_key = SecretRef::file(&wrong);
    let files = Files::connect(&config, lab.options()).await.unwrap();
    let err = files.plan().await.unwrap_err();
    assert_eq!(err.family(), ErrorFamily::Sync);
    assert!(
        matches!(&err, Error::Sync { node: Some(n), source } if n == "a"
            && matches!(**source, fspbx_ha_sync::Error::Unauthorized { .. })),
        "{err:?}"
    );
    assert!(!err.to_string().contains("2718"));

    config.nodes[1].syncthing = None;
    let err = Files::connect(&config, lab.options()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "node b: nodes[1].syncthing is not set; add url and api_key (and via_ssh) for the node's Syncthing REST API"
    );
    assert_eq!(err.family(), ErrorFamily::Config);
}

/// A read-only bind mount of a directory onto itself, undone on drop (also when a test fails).
struct ReadOnly(PathBuf);

impl ReadOnly {
    fn mount(dir: &std::path::Path) -> ReadOnly {
        let run = |args: &[&str]| {
            let st = std::process::Command::new("mount")
                .args(args)
                .arg(dir)
                .arg(dir)
                .status()
                .unwrap();
            assert!(st.success(), "mount {args:?} failed");
        };
        run(&["--bind"]);
        let guard = ReadOnly(dir.to_owned());
        let st = std::process::Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "remount ro failed");
        guard
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_folder_is_named_by_the_ssh_check_and_by_the_daemon() {
    let lab = Lab::start();
    let ro = lab.local(1, REC);
    let _guard = ReadOnly::mount(&ro);
    assert!(
        std::fs::write(ro.join("probe"), b"x").is_err(),
        "the bind mount is read-only"
    );

    // Over SSH: refused before any change.
    let files = Files::connect(&lab.config(), lab.options()).await.unwrap();
    let err = files.apply().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("node b: folder")
            && text.contains("is not writable by root (checked over SSH)"),
        "{text}"
    );
    assert_eq!(
        files.pair().clients()[1].devices().await.unwrap().len(),
        1,
        "nothing changed on b"
    );

    // Without SSH the daemon itself reports the folder unusable after the change.
    let options = FilesOptions {
        ssh: false,
        ..lab.options()
    };
    // The APIs listen on 127.0.0.1 of the (shared) machine: reach them directly this time.
    let mut config = lab.config();
    for n in &mut config.nodes {
        n.syncthing.as_mut().unwrap().via_ssh = false;
    }
    let direct = Files::connect(&config, options).await.unwrap();
    let err = direct.apply().await.unwrap_err();
    assert!(
        matches!(&err, Error::Sync { node: Some(n), source } if n == "b"
            && matches!(&**source, fspbx_ha_sync::Error::FolderUnusable { folder, .. }
                if *folder == fspbx_ha_sync::stable_folder_id(REC))),
        "{err:?}"
    );
    eprintln!("daemon says: {err}");
}
