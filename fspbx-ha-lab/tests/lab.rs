//! The two-node lab and the `fspbx-ha-lab` binary, against the real servers.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use fspbx_ha_lab::lab::{self, Component, Lab, LabOptions, LabStatus, LabTopology, NodeTopology};
use fspbx_ha_lab::postgres::PgFlavor;
use fspbx_ha_lab::process::{self, StopSignal};

const BIN: &str = env!("CARGO_BIN_EXE_fspbx-ha-lab");

/// Runs the flavor's psql over TCP as `fusionpbx`, the password coming from a 0600 passfile
/// (never argv): proves listen address, port, pg_hba and the role's password.
fn psql_tcp(node: &NodeTopology, sql: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let pass = std::fs::read_to_string(&node.pg.password_file).unwrap();
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!(
            "{}:{}:{}:{}:{}\n",
            node.ip,
            node.pg.port,
            node.pg.database,
            node.pg.user,
            pass.trim_end()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &passfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let out = Command::new(node.pg.bin_dir.join("psql"))
        .args([
            "-X",
            "-At",
            "-w",
            "-h",
            &node.ip.to_string(),
            "-p",
            &node.pg.port.to_string(),
        ])
        .args(["-U", &node.pg.user, "-d", &node.pg.database, "-c", sql])
        .env("PGPASSFILE", &passfile)
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `echo` over SSH with the system client, strict host key checking against the lab's
/// known_hosts only.
fn ssh_echo(
    key: &Path,
    known_hosts: &Path,
    node: &NodeTopology,
    word: &str,
) -> Result<String, String> {
    let out = Command::new("ssh")
        .arg("-i")
        .arg(key)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=5",
            "-F",
            "/dev/null",
        ])
        .args(["-p", &node.ssh.port.to_string()])
        .arg(format!("{}@{}", node.ssh.user, node.ip))
        .arg(format!("echo {word}"))
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn lab_starts_two_reachable_nodes_and_drop_stops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(LabOptions::new(dir.path())).unwrap();
    let t = lab.topology();
    assert_eq!(
        LabTopology::read(dir.path()).unwrap().as_ref(),
        Some(&t),
        "lab.json matches"
    );
    let (a, b) = (t.node("a").unwrap(), t.node("b").unwrap());
    assert_eq!(a.ip.to_string(), "127.0.0.2");
    assert_eq!(b.ip.to_string(), "127.0.0.3");
    assert_eq!(
        (a.pg.user.as_str(), a.pg.database.as_str()),
        ("fusionpbx", "fusionpbx")
    );
    assert_eq!(a.ssh.user, "root");
    assert_eq!(t.processes.len(), 4);
    assert!(t.all_alive());

    // PostgreSQL: each node answers on its own address with password auth.
    assert_eq!(
        psql_tcp(a, "SELECT inet_server_addr()::text").unwrap(),
        "127.0.0.2/32"
    );
    assert_eq!(psql_tcp(b, "SHOW wal_level").unwrap(), "logical");
    assert_eq!(psql_tcp(b, "SELECT current_user").unwrap(), "fusionpbx");
    // The wrong node's password is refused.
    let swapped = NodeTopology {
        pg: lab::PgTopology {
            password_file: b.pg.password_file.clone(),
            ..a.pg.clone()
        },
        ..a.clone()
    };
    let err = psql_tcp(&swapped, "SELECT 1").unwrap_err();
    assert!(err.contains("password authentication failed"), "{err}");

    // SSH: the operator key reaches both nodes; each node key reaches only the peer.
    let kh = &t.known_hosts;
    let kh_text = std::fs::read_to_string(kh).unwrap();
    assert!(
        kh_text.contains(&format!("[127.0.0.2]:{} ssh-ed25519 ", a.ssh.port)),
        "{kh_text}"
    );
    assert!(
        kh_text.contains(&format!("[127.0.0.3]:{} ssh-ed25519 ", b.ssh.port)),
        "{kh_text}"
    );
    assert_eq!(ssh_echo(&t.operator_key, kh, a, "op-a").unwrap(), "op-a");
    assert_eq!(ssh_echo(&t.operator_key, kh, b, "op-b").unwrap(), "op-b");
    assert_eq!(
        ssh_echo(&a.ssh.peer_key, kh, b, "a-to-b").unwrap(),
        "a-to-b"
    );
    assert_eq!(
        ssh_echo(&b.ssh.peer_key, kh, a, "b-to-a").unwrap(),
        "b-to-a"
    );
    assert!(
        ssh_echo(&a.ssh.peer_key, kh, a, "a-to-a")
            .unwrap_err()
            .contains("Permission denied")
    );
    assert!(
        ssh_echo(&b.ssh.peer_key, kh, b, "b-to-b")
            .unwrap_err()
            .contains("Permission denied")
    );

    drop(lab);
    for p in &t.processes {
        assert!(
            !p.is_alive(),
            "{:?} of node {} (pid {}) outlived the lab",
            p.component,
            p.node,
            p.pid
        );
    }
    assert!(
        !dir.path().join(lab::LAB_JSON).exists(),
        "lab.json of a stopped lab is removed"
    );
}

#[test]
fn node_b_can_run_another_flavor_and_wal_level() {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Lab::start(LabOptions {
        pg: PgFlavor::V18,
        node_b_pg: Some(PgFlavor::Debian15),
        wal_level_b: Some("replica".into()),
        pg_settings_b: vec![("max_replication_slots".into(), "0".into())],
        ..LabOptions::new(dir.path())
    })
    .unwrap();
    assert_eq!(lab.a().pg.version_num() / 10000, 18);
    assert_eq!(lab.b().pg.version_num() / 10000, 15);
    assert_eq!(
        lab.a().pg.psql("postgres", "SHOW wal_level").unwrap(),
        "logical"
    );
    assert_eq!(
        lab.b().pg.psql("postgres", "SHOW wal_level").unwrap(),
        "replica"
    );
    assert_eq!(
        lab.b()
            .pg
            .psql("postgres", "SHOW max_replication_slots")
            .unwrap(),
        "0"
    );
    let t = lab.topology();
    assert_eq!(t.node("b").unwrap().pg.flavor, PgFlavor::Debian15);

    // Node loss and return: lab.json follows the new postmaster PID.
    let old = lab.b().pg.pid().unwrap();
    lab.b_mut().pg.kill_hard();
    assert!(!process::pid_alive(old, None));
    lab.b_mut().pg.start_again().unwrap();
    lab.write_topology().unwrap();
    let t2 = LabTopology::read(dir.path()).unwrap().unwrap();
    let rec = t2
        .processes
        .iter()
        .find(|p| p.node == "b" && p.component == Component::Postgres)
        .unwrap();
    assert_ne!(rec.pid, old);
    assert!(rec.is_alive());
    assert_eq!(
        rec.stop_signal,
        StopSignal::Int,
        "postgres stops with a fast shutdown"
    );
}

#[test]
fn a_second_lab_in_a_running_lab_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _lab = Lab::start(LabOptions::new(dir.path())).unwrap();
    let err = Lab::start(LabOptions::new(dir.path())).unwrap_err();
    assert!(
        matches!(err, fspbx_ha_lab::Error::LabRunning { .. }),
        "{err}"
    );
}

/// Runs `fspbx-ha-lab down` on drop, so a failing assertion never leaves a detached lab running.
struct DownOnDrop(std::path::PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .arg("down")
            .arg("--dir")
            .arg(&self.0)
            .output();
    }
}

fn bin(args: &[&str], dir: &Path) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fspbx-ha-lab {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn binary_up_is_idempotent_and_down_leaves_nothing_behind() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("lab");
    let _down = DownOnDrop(dir.clone());
    let t: LabTopology = serde_json::from_str(&stdout(&bin(&["up", "--json"], &dir))).unwrap();
    // `up` runs everything: per node PostgreSQL, sshd, Kamailio and Syncthing; Knot twice.
    for c in [
        Component::Postgres,
        Component::Sshd,
        Component::Kamailio,
        Component::Syncthing,
        Component::Knot,
    ] {
        let n = t.processes.iter().filter(|p| p.component == c).count();
        assert_eq!(n, 2, "{c:?}: {:?}", t.processes);
    }
    assert_eq!(t.processes.len(), 10);
    // The binary has exited: its processes keep running.
    assert!(t.all_alive(), "detached processes run after `up` exited");
    assert!(matches!(lab::status(&dir).unwrap(), LabStatus::Running(_)));
    assert!(psql_tcp(t.node("a").unwrap(), "SELECT 1").is_ok());

    // Again: nothing new is started.
    let again = stdout(&bin(&["up"], &dir));
    assert!(again.contains("already running"), "{again}");
    assert_eq!(LabTopology::read(&dir).unwrap().unwrap(), t);
    assert!(stdout(&bin(&["status"], &dir)).contains("lab running"));

    // `kill`: node loss for the failover demo, by PID from lab.json.
    let sip_a = t
        .processes
        .iter()
        .find(|p| p.node == "a" && p.component == Component::Kamailio)
        .unwrap();
    let killed = stdout(&bin(
        &["kill", "--node", "a", "--component", "kamailio"],
        &dir,
    ));
    assert!(
        killed.contains(&format!("killed Kamailio of node a (pid {})", sip_a.pid)),
        "{killed}"
    );
    assert!(!sip_a.is_alive());
    assert!(stdout(&bin(&["status"], &dir)).contains("1 of 10 processes gone"));
    // Syncthing runs a monitor and a child in a session of its own: both go.
    let st_a = t
        .processes
        .iter()
        .find(|p| p.node == "a" && p.component == Component::Syncthing)
        .unwrap();
    let home = format!("{}/a/", dir.display());
    let of_a = || {
        Command::new("pgrep")
            .args(["-f", &format!("syncthing serve --home={home}")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
            .unwrap_or(0)
    };
    assert!(of_a() >= 1, "node a's Syncthing runs");
    bin(&["kill", "--node", "a", "--component", "syncthing"], &dir);
    assert!(!st_a.is_alive());
    process::wait_until(
        "node a's Syncthing gone",
        Duration::from_secs(5),
        None,
        || of_a() == 0,
    )
    .expect("no Syncthing process of node a is left");
    let wrong = Command::new(BIN)
        .args(["kill", "--node", "a", "--component", "freeswitch", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("postgres") && err.contains("sshd"), "{err}");

    let down = stdout(&bin(&["down"], &dir));
    assert!(down.contains("stopped"), "{down}");
    for p in &t.processes {
        assert!(
            !p.is_alive(),
            "{:?} of node {} (pid {}) survived `down`",
            p.component,
            p.node,
            p.pid
        );
    }
    assert!(!dir.exists(), "down removes the lab's files");
    // Idempotent.
    assert!(stdout(&bin(&["down"], &dir)).contains("nothing to stop"));
    assert!(stdout(&bin(&["status"], &dir)).contains("no lab"));
}

#[test]
fn binary_up_replaces_a_stale_lab() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("lab");
    let _down = DownOnDrop(dir.clone());
    let first: LabTopology = serde_json::from_str(&stdout(&bin(&["up", "--json"], &dir))).unwrap();
    // Node B's PostgreSQL dies.
    let victim = first
        .processes
        .iter()
        .find(|p| p.node == "b" && p.component == Component::Postgres)
        .unwrap();
    assert!(process::stop_pid(
        victim.pid,
        victim.start_time,
        true,
        StopSignal::Int,
        Duration::from_secs(10)
    ));
    let status = stdout(&bin(&["status"], &dir));
    assert!(status.contains("stale"), "{status}");

    let second: LabTopology = serde_json::from_str(&stdout(&bin(&["up", "--json"], &dir))).unwrap();
    for p in &first.processes {
        assert!(
            !p.is_alive(),
            "old {:?} of node {} (pid {}) was not cleaned up",
            p.component,
            p.node,
            p.pid
        );
    }
    assert!(second.all_alive());
    assert!(psql_tcp(second.node("b").unwrap(), "SELECT 1").is_ok());
    bin(&["down"], &dir);
    assert!(second.processes.iter().all(|p| !p.is_alive()));
}

#[test]
fn binary_names_install_sh_when_postgres_is_missing_and_recovers() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("lab");
    let _down = DownOnDrop(dir.clone());
    let out = Command::new(BIN)
        .args(["up", "--pg", "18", "--dir"])
        .arg(&dir)
        .env("FSPBX_HA_LAB_PG18", "/nonexistent/pg18/bin")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("scripts/install.sh")
            && err.contains("FSPBX_HA_LAB_PG18")
            && err.contains("/nonexistent/pg18/bin/postgres"),
        "{err}"
    );
    assert!(
        !dir.join(lab::LAB_JSON).exists(),
        "a failed start records nothing"
    );
    // The leftovers of the failed start do not stop the next one.
    let t: LabTopology =
        serde_json::from_str(&stdout(&bin(&["up", "--pg", "18", "--json"], &dir))).unwrap();
    assert_eq!(t.node("a").unwrap().pg.version_num / 10000, 18);
    bin(&["down"], &dir);
    assert!(t.processes.iter().all(|p| !p.is_alive()));
    assert!(
        t.scratch.iter().all(|d| !d.exists()),
        "down removes the scratch data"
    );
}

/// `sipsak` OPTIONS to `ip:port`: true when a `200` came back (sipsak exits 0 only then).
fn sip_ok(ip: std::net::IpAddr, port: u16) -> bool {
    Command::new("sipsak")
        .args(["-s", &format!("sip:ping@{ip}:{port}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn sip_lab_runs_a_responder_per_node_in_topology_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Lab::start(LabOptions {
        sip: true,
        ..LabOptions::new(dir.path())
    })
    .unwrap();
    let t = lab.topology();
    assert_eq!(
        LabTopology::read(dir.path()).unwrap().as_ref(),
        Some(&t),
        "lab.json records the SIP responders"
    );
    let sip_pids: Vec<_> = t
        .processes
        .iter()
        .filter(|p| p.component == Component::Kamailio)
        .collect();
    assert_eq!(sip_pids.len(), 2, "{:?}", t.processes);
    for n in &t.nodes {
        let sip = n.sip.as_ref().expect("sip topology");
        assert!(sip_ok(n.ip, sip.port), "node {} answers OPTIONS", n.name);
    }
    let toml = fspbx_ha_lab::cluster_toml::cluster_toml(&t);
    let a = t.node("a").unwrap();
    let line = format!(
        "sip = {{ host = \"127.0.0.2\", port = {}, transport = \"udp\" }}",
        a.sip.as_ref().unwrap().port
    );
    assert!(toml.contains(&line), "{toml}");

    // Node loss: SIGKILL takes the responder away; it comes back on the same port.
    let port_a = a.sip.as_ref().unwrap().port;
    lab.a_mut().sip.as_mut().unwrap().kill_hard();
    assert!(!sip_ok(a.ip, port_a), "a killed responder does not answer");
    lab.a_mut().sip.as_mut().unwrap().start_again().unwrap();
    assert!(sip_ok(a.ip, port_a));

    drop(lab);
    for p in &sip_pids {
        assert!(!p.is_alive(), "Kamailio pid {} outlived the lab", p.pid);
    }
}
