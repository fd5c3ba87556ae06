//! The Files bridge: the cluster configuration's Syncthing pair, reached through SSH local
//! forwards to APIs listening only on each node's 127.0.0.1, against real sshd and Syncthing.

use std::path::PathBuf;
use std::time::Duration;

use fspbx_ha_core::config::{ClusterConfig, FolderSpec, SyncthingSpec};
use fspbx_ha_core::files::{Files, FilesOptions};
use fspbx_ha_core::{Error, ErrorFamily, SecretRef};
use fspbx_ha_lab::sshd::{ClientKey, KeyKind, Sshd, SshdOptions, write_known_hosts};
use fspbx_ha_lab::syncthing::{Syncthing, SyncthingOptions};
use fspbx_ha_sync::WaitOptions;

const REC: &str = "/var/lib/freeswitch/recordings";
const STORAGE: &str = "/var/lib/freeswitch/storage";
const LOOPBACK: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

struct Lab {
    dir: tempfile::TempDir,
    key: ClientKey,
    sshd: [Sshd; 2],
    st: [Syncthing; 2],
}

impl Lab {
    fn start() -> Lab {
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
        // The REST APIs listen on 127.0.0.1 only ("the node's loopback"); sync on the node IPs.
        let st = [SyncthingOptions::node_a(), SyncthingOptions::node_b()].map(|o| {
            Syncthing::start(SyncthingOptions {
                gui_ip: Some(LOOPBACK),
                ..o
            })
            .unwrap()
        });
        write_known_hosts(
            &dir.path().join("known_hosts"),
            &[sshd[0].known_hosts_line(), sshd[1].known_hosts_line()],
        )
        .unwrap();
        for s in &st {
            for f in [REC, STORAGE] {
                std::fs::create_dir_all(local(s, f)).unwrap();
            }
        }
        Lab { dir, key, sshd, st }
    }

    fn config(&self) -> ClusterConfig {
        let mut c = ClusterConfig::from_toml_str(&ClusterConfig::template()).unwrap();
        for i in 0..2 {
            let n = &mut c.nodes[i];
            let ip = self.sshd[i].ip();
            n.addresses = vec![ip];
            n.peer_address = Some(ip);
            n.ssh.host = ip.to_string();
            n.ssh.port = self.sshd[i].port();
            n.ssh.identity = self.key.private_path().to_owned();
            n.ssh.known_hosts = self.dir.path().join("known_hosts");
            n.ssh.connect_attempts = 1;
            n.syncthing = Some(SyncthingSpec {
                url: format!("http://127.0.0.1:{}", self.st[i].gui_addr().port()),
                api_key: SecretRef::file(self.st[i].api_key_file()),
                via_ssh: true,
                folder_root: None,
            });
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

    fn options(&self) -> FilesOptions {
        FilesOptions {
            path_prefix: [0, 1].map(|i| Some(self.st[i].data_root().display().to_string())),
            ..FilesOptions::default()
        }
    }
}

fn local(st: &Syncthing, path: &str) -> PathBuf {
    st.data_root().join(path.trim_start_matches('/'))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pair_through_ssh_forwards_sync_and_count_conflicts() {
    let lab = Lab::start();
    // The API is not reachable on the node's address, only on its loopback.
    let gui_port = lab.st[0].gui_addr().port();
    assert!(std::net::TcpStream::connect((fspbx_ha_lab::NODE_A_IP, gui_port)).is_err());

    let files = Files::connect(&lab.config(), lab.options()).await.unwrap();
    for c in files.pair().clients() {
        assert_eq!(c.base_url().host_str(), Some("127.0.0.1"));
        assert_ne!(
            c.base_url().port(),
            Some(lab.st[0].gui_addr().port()),
            "a forward's local port"
        );
    }
    let plan = files.plan().await.unwrap();
    // Node names, host names as device names, and the peer addresses from the configuration.
    assert_eq!(
        plan.sync_addresses,
        [lab.st[0].listen_address(), lab.st[1].listen_address()]
    );
    let report = files.apply().await.unwrap();
    assert_eq!(report.applied.len(), 6);
    let dev = files.pair().clients()[1]
        .device(&plan.device_ids[0])
        .await
        .unwrap();
    assert_eq!(dev.name(), "server1.example.com");

    std::fs::write(
        local(&lab.st[0], REC).join("via ssh \u{2713}.wav"),
        b"tunnelled",
    )
    .unwrap();
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
        std::fs::read(local(&lab.st[1], REC).join("via ssh \u{2713}.wav")).unwrap(),
        b"tunnelled"
    );

    // A conflict copy on B is counted there over SSH (and not on A before it syncs).
    let conflict = "greeting.sync-conflict-20261130-010203-ABCDEFG.wav";
    std::fs::write(local(&lab.st[1], STORAGE).join(conflict), b"older").unwrap();
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
    assert!(!json.contains(lab.st[0].api_key()) && !json.contains(lab.st[1].api_key()));

    assert!(
        files.apply().await.unwrap().applied.is_empty(),
        "second apply changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_or_missing_folder_is_named_before_any_change() {
    let lab = Lab::start();
    std::fs::remove_dir_all(local(&lab.st[1], STORAGE)).unwrap();
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
    let wrong = lab.dir.path().join("wrong_key");
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
    let ro = local(&lab.st[1], REC);
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
