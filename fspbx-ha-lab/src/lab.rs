//! The two-node lab: node A on 127.0.0.2 and node B on 127.0.0.3, each with a PostgreSQL
//! server and an OpenSSH server, plus the SSH keys and the known_hosts file a cluster config
//! needs.
//!
//! [`Lab::start`] brings both nodes up in parallel and writes `<dir>/lab.json` (a
//! [`LabTopology`]). Dropping the [`Lab`] stops every process by PID; [`Lab::detach`] leaves them
//! running (the demo's `up`) and [`down`] stops them later from lab.json alone.
//!
//! Layout of `<dir>`:
//! ```text
//! lab.json                 the topology (no secrets: passwords are referenced by file)
//! known_hosts              both sshd host keys as `[ip]:port type key`
//! keys/                    the operator's client key (authorized on both nodes)
//! a/sshd/                  node A's sshd: host key, sshd_config, authorized_keys, sshd.log
//! a/keys/                  node A's own client key, authorized on node B
//! b/...                    the same for node B
//! ```
//! PostgreSQL keeps its files in a scratch directory on tmpfs ([`paths::scratch_root`], four
//! times faster than disk here), recorded in [`LabTopology::scratch`]:
//! `<scratch>/a/` holds node A's `data/`, `run/` (socket), `postgresql.log` and `password`.
//! With [`LabOptions::sip`] each node also runs Kamailio answering SIP OPTIONS (`a/sip/`), the
//! stand-in for FreeSWITCH that the SIP probe and the failover controller watch.
//! Further components (Syncthing, Knot, ...) slot in as another per-node field of [`LabNode`]
//! and [`NodeTopology`] and another [`Component`].

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cluster_toml::{LAB_ZONE, LabDns};
use crate::kamailio::{Kamailio, KamailioOptions};
use crate::knot::{Knot, KnotOptions};
use crate::paths;
use crate::postgres::{FUSIONPBX, PgFlavor, PgOptions, PgServer};
use crate::process::{self, Guard, StopSignal};
use crate::sshd::{ClientKey, KeyKind, Sshd, SshdOptions};
use crate::syncthing::{Syncthing, SyncthingOptions, SyncthingTopology};
use crate::{Error, NODE_A_IP, NODE_B_IP};

/// File name of the topology inside the lab directory.
pub const LAB_JSON: &str = "lab.json";

/// How to start a [`Lab`]. Build with struct update syntax over [`LabOptions::new`].
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The lab directory (created; must be reachable by the lab user, e.g. under /tmp).
    pub dir: PathBuf,
    /// PostgreSQL build of node A (and of node B unless `node_b_pg` says otherwise).
    pub pg: PgFlavor,
    /// PostgreSQL build of node B, e.g. `Debian15` for the "server too old" test.
    pub node_b_pg: Option<PgFlavor>,
    /// `wal_level` of node A (default "logical").
    pub wal_level_a: Option<String>,
    /// `wal_level` of node B (default "logical"; "replica" for the bad-setting tests).
    pub wal_level_b: Option<String>,
    /// Further `postgresql.conf` settings of node A (override the defaults by name).
    pub pg_settings_a: Vec<(String, String)>,
    /// Further `postgresql.conf` settings of node B.
    pub pg_settings_b: Vec<(String, String)>,
    /// Also run the zone's authoritative DNS: Knot on 127.0.0.53 taking TSIG-signed RFC 2136
    /// updates, and a secondary on 127.0.0.54 fed by NOTIFY + zone transfer.
    pub dns: bool,
    /// Also run a SIP OPTIONS responder (Kamailio) on each node, standing in for FreeSWITCH.
    pub sip: bool,
    /// Also run a Syncthing daemon on each node (GUI/REST on 127.0.0.1 only, reached through
    /// SSH), with FS PBX's media folders created under the node's `files/` root.
    pub syncthing: bool,
}

impl LabOptions {
    /// Options for a lab in `dir` with PostgreSQL 17 on both nodes and default settings.
    pub fn new(dir: impl Into<PathBuf>) -> LabOptions {
        LabOptions {
            dir: dir.into(),
            pg: PgFlavor::V17,
            node_b_pg: None,
            wal_level_a: None,
            wal_level_b: None,
            pg_settings_a: Vec::new(),
            pg_settings_b: Vec::new(),
            dns: false,
            sip: false,
            syncthing: false,
        }
    }
}

/// What a lab process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Component {
    /// A PostgreSQL postmaster.
    Postgres,
    /// An OpenSSH server.
    Sshd,
    /// An authoritative DNS server (knotd).
    Knot,
    /// A SIP OPTIONS responder (Kamailio) standing in for FreeSWITCH.
    Kamailio,
    /// A Syncthing daemon.
    Syncthing,
}

/// One process the lab started, enough to stop it by PID later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// The node it belongs to ("a", "b").
    pub node: String,
    /// What it is.
    pub component: Component,
    /// Its PID.
    pub pid: u32,
    /// The kernel's start time of the process, so a reused PID is never mistaken for it.
    pub start_time: Option<u64>,
    /// Whether it leads a process group that SIGKILL takes down as a whole.
    pub group: bool,
    /// The signal that asks it to stop.
    pub stop_signal: StopSignal,
}

impl ProcessRecord {
    fn from_guard(node: &str, component: Component, g: &Guard) -> ProcessRecord {
        ProcessRecord {
            node: node.to_owned(),
            component,
            pid: g.pid(),
            start_time: g.start_time(),
            group: g.signals_group(),
            stop_signal: g.stop_signal(),
        }
    }

    /// Whether the process still runs (same PID and start time, not a zombie).
    pub fn is_alive(&self) -> bool {
        process::pid_alive(self.pid, self.start_time)
    }

    /// SIGKILLs it now (its whole process group when it leads one) and its direct children
    /// outside that group (sshd's per-connection processes, Syncthing's monitored child): node
    /// loss for the failover demo. True when it was running.
    pub fn kill(&self) -> bool {
        if !self.is_alive() {
            return false;
        }
        // Listed first: once the parent is gone they are no longer its children.
        let children = crate::sshd::children_of(self.pid);
        let mut g = if self.group {
            Guard::adopt_group(self.pid, "lab process")
        } else {
            Guard::adopt(self.pid, "lab process")
        };
        g.kill_hard();
        for child in children {
            Guard::adopt(child, "lab child process").kill_hard();
        }
        true
    }

    /// Stops it (its stop signal, a grace period, then SIGKILL); true when it was running.
    pub fn stop(&self, grace: Duration) -> bool {
        process::stop_pid(
            self.pid,
            self.start_time,
            self.group,
            self.stop_signal,
            grace,
        )
    }
}

/// A node's PostgreSQL as a config needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgTopology {
    /// The build.
    pub flavor: PgFlavor,
    /// `server_version_num`.
    pub version_num: u32,
    /// TCP port on the node's IP.
    pub port: u16,
    /// Login role (`fusionpbx`, superuser).
    pub user: String,
    /// Database (`fusionpbx`).
    pub database: String,
    /// 0600 file holding the role's password (for a `file:` secret reference).
    pub password_file: PathBuf,
    /// Directory of the unix socket (local `postgres` login, trust).
    pub socket_dir: PathBuf,
    /// Data directory.
    pub data_dir: PathBuf,
    /// The build's `bin` directory (psql, pg_ctl).
    pub bin_dir: PathBuf,
    /// The server log.
    pub log_file: PathBuf,
}

/// A node's OpenSSH server and keys as a config needs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshTopology {
    /// TCP port on the node's IP.
    pub port: u16,
    /// Login user (`root`, key only).
    pub user: String,
    /// The operator's private key (authorized on both nodes).
    pub operator_key: PathBuf,
    /// This node's private key for reaching its peer (authorized on the peer only).
    pub peer_key: PathBuf,
    /// The lab's known_hosts file (both nodes' host keys).
    pub known_hosts: PathBuf,
    /// This node's `[ip]:port type key` known_hosts line.
    pub known_hosts_line: String,
    /// sshd's log.
    pub log_file: PathBuf,
}

/// One node of the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTopology {
    /// "a" or "b".
    pub name: String,
    /// Its loopback address.
    pub ip: IpAddr,
    /// Its PostgreSQL.
    pub pg: PgTopology,
    /// Its sshd.
    pub ssh: SshTopology,
    /// Its SIP responder, when the lab runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip: Option<SipTopology>,
    /// Its Syncthing daemon, when the lab runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syncthing: Option<SyncthingTopology>,
}

/// A node's SIP OPTIONS responder (Kamailio) as a config needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipTopology {
    /// UDP and TCP port on the node's IP.
    pub port: u16,
    /// Kamailio's log.
    pub log_file: PathBuf,
}

/// The lab's authoritative DNS (Knot): where updates go and which servers to check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsTopology {
    /// The zone (`example.test`).
    pub zone: String,
    /// The primary taking RFC 2136 updates, its TSIG key name and key file.
    pub update: LabDns,
    /// Every authoritative server (`ip:port`), primary first.
    pub servers: Vec<String>,
}

/// Everything a cluster config (and the demo) needs to reach the lab; written to lab.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabTopology {
    /// The lab directory.
    pub dir: PathBuf,
    /// The lab's known_hosts file (both sshd host keys).
    pub known_hosts: PathBuf,
    /// The operator's private key, authorized as root on both nodes.
    pub operator_key: PathBuf,
    /// Node "a" then node "b".
    pub nodes: Vec<NodeTopology>,
    /// The zone's authoritative DNS servers, when the lab runs them.
    #[serde(default)]
    pub dns: Option<DnsTopology>,
    /// Every process the lab started.
    pub processes: Vec<ProcessRecord>,
    /// Directories outside `dir` the lab created (PostgreSQL data on tmpfs); [`down`] removes
    /// them.
    pub scratch: Vec<PathBuf>,
}

impl LabTopology {
    /// The node called `name` ("a" or "b").
    pub fn node(&self, name: &str) -> Option<&NodeTopology> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Reads `<dir>/lab.json`; `None` when there is none.
    pub fn read(dir: &Path) -> Result<Option<LabTopology>, Error> {
        let path = dir.join(LAB_JSON);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| Error::LabFile { path, source })
    }

    /// Writes `<dir>/lab.json` (atomically: a temporary file renamed over it).
    pub fn write(&self) -> Result<PathBuf, Error> {
        let path = self.dir.join(LAB_JSON);
        let tmp = self.dir.join(format!(".{LAB_JSON}.tmp"));
        let text = self.to_json()?;
        std::fs::write(&tmp, text + "\n").map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))?;
        Ok(path)
    }

    /// The topology as pretty JSON.
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string_pretty(self).map_err(|source| Error::LabFile {
            path: self.dir.join(LAB_JSON),
            source,
        })
    }

    /// The recorded processes that still run.
    pub fn alive(&self) -> Vec<&ProcessRecord> {
        self.processes.iter().filter(|p| p.is_alive()).collect()
    }

    /// Whether every recorded process still runs.
    pub fn all_alive(&self) -> bool {
        !self.processes.is_empty() && self.processes.iter().all(ProcessRecord::is_alive)
    }
}

/// One running node of a [`Lab`]: its servers and its own client key.
#[derive(Debug)]
#[non_exhaustive]
pub struct LabNode {
    /// "a" or "b".
    pub name: String,
    /// Its loopback address.
    pub ip: IpAddr,
    /// Its PostgreSQL server.
    pub pg: PgServer,
    /// Its OpenSSH server.
    pub sshd: Sshd,
    /// Its client key for reaching the peer node (authorized there only).
    pub peer_key: ClientKey,
    /// Its SIP OPTIONS responder (with [`LabOptions::sip`]).
    pub sip: Option<Kamailio>,
    /// Its Syncthing daemon (with [`LabOptions::syncthing`]).
    pub syncthing: Option<Syncthing>,
}

/// The running two-node lab; dropping it stops every process by PID.
#[derive(Debug)]
pub struct Lab {
    dns: Option<Knot>,
    dir: PathBuf,
    operator_key: ClientKey,
    known_hosts: PathBuf,
    scratch: PathBuf,
    nodes: Vec<LabNode>,
    /// Set by `detach`: leave everything running.
    detached: bool,
}

impl Lab {
    /// Starts both nodes (in parallel) and writes `<dir>/lab.json`. Fails with
    /// [`Error::LabRunning`] when a lab recorded in `<dir>/lab.json` still runs.
    pub fn start(opts: LabOptions) -> Result<Lab, Error> {
        let dir = std::path::absolute(&opts.dir).map_err(|e| Error::io("resolve", &opts.dir, e))?;
        let old = LabTopology::read(&dir)?;
        if old.as_ref().is_some_and(|t| !t.alive().is_empty()) {
            return Err(Error::LabRunning { dir });
        }
        // Leftovers of a stale or failed lab would make initdb refuse its data directory.
        remove_lab_files(&dir, old.as_ref(), false)?;
        let scratch = paths::scratch_tempdir("fspbx-ha-lab-")?.keep();
        std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io("chmod", &scratch, e))?;
        // The lab user must traverse the lab and node directories to reach its data.
        for d in [dir.clone(), dir.join("a"), dir.join("b")] {
            std::fs::create_dir_all(&d).map_err(|e| Error::io("create directory", &d, e))?;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io("chmod", &d, e))?;
        }
        let operator_key = ClientKey::generate(&dir.join("keys"), KeyKind::Ed25519, None)?;
        let key_a = ClientKey::generate(&dir.join("a/keys"), KeyKind::Ed25519, None)?;
        let key_b = ClientKey::generate(&dir.join("b/keys"), KeyKind::Ed25519, None)?;

        let spec =
            |name: &str, ip, flavor, wal: &Option<String>, settings: &Vec<_>, peer: &ClientKey| {
                NodeSpec {
                    name: name.to_owned(),
                    ip,
                    node_dir: dir.join(name),
                    pg: PgOptions {
                        flavor,
                        name: format!("pg-{name}"),
                        ip,
                        wal_level: wal.clone().unwrap_or_else(|| "logical".to_owned()),
                        settings: settings.clone(),
                        dir: Some(scratch.join(name)),
                        ..PgOptions::default()
                    },
                    authorized: vec![
                        operator_key.public_line().to_owned(),
                        peer.public_line().to_owned(),
                    ],
                    sip: opts.sip,
                }
            };
        let spec_a = spec(
            "a",
            NODE_A_IP,
            opts.pg,
            &opts.wal_level_a,
            &opts.pg_settings_a,
            &key_b,
        );
        let flavor_b = opts.node_b_pg.unwrap_or(opts.pg);
        let spec_b = spec(
            "b",
            NODE_B_IP,
            flavor_b,
            &opts.wal_level_b,
            &opts.pg_settings_b,
            &key_a,
        );

        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| start_node(spec_a));
            let b = s.spawn(|| start_node(spec_b));
            (join(a), join(b))
        });
        // If one node failed, the other's servers stop as its parts are dropped here.
        let ((pg_a, sshd_a, sip_a), (pg_b, sshd_b, sip_b)) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                let _ = std::fs::remove_dir_all(&scratch);
                return Err(e);
            }
        };

        let (st_a, st_b) = if opts.syncthing {
            let (a, b) = std::thread::scope(|s| {
                let a = s.spawn(|| start_syncthing(&dir, "a", SyncthingOptions::node_a()));
                let b = s.spawn(|| start_syncthing(&dir, "b", SyncthingOptions::node_b()));
                (join(a), join(b))
            });
            (Some(a?), Some(b?))
        } else {
            (None, None)
        };
        let dns = if opts.dns {
            Some(Knot::start(KnotOptions {
                zone: format!("{LAB_ZONE}."),
                secondary: true,
                dir: Some(dir.join("dns")),
                ..KnotOptions::default()
            })?)
        } else {
            None
        };
        let known_hosts = dir.join("known_hosts");
        crate::sshd::write_known_hosts(
            &known_hosts,
            &[sshd_a.known_hosts_line(), sshd_b.known_hosts_line()],
        )?;
        let lab = Lab {
            dns,
            dir,
            operator_key,
            known_hosts,
            scratch,
            nodes: vec![
                LabNode {
                    name: "a".into(),
                    ip: NODE_A_IP,
                    pg: pg_a,
                    sshd: sshd_a,
                    peer_key: key_a,
                    sip: sip_a,
                    syncthing: st_a,
                },
                LabNode {
                    name: "b".into(),
                    ip: NODE_B_IP,
                    pg: pg_b,
                    sshd: sshd_b,
                    peer_key: key_b,
                    sip: sip_b,
                    syncthing: st_b,
                },
            ],
            detached: false,
        };
        lab.topology().write()?;
        Ok(lab)
    }

    /// The lab directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Node A (127.0.0.2).
    pub fn a(&self) -> &LabNode {
        &self.nodes[0]
    }

    /// Node B (127.0.0.3).
    pub fn b(&self) -> &LabNode {
        &self.nodes[1]
    }

    /// Node A, mutable (to stop, kill or restart its servers).
    pub fn a_mut(&mut self) -> &mut LabNode {
        &mut self.nodes[0]
    }

    /// Node B, mutable.
    pub fn b_mut(&mut self) -> &mut LabNode {
        &mut self.nodes[1]
    }

    /// The node called `name` ("a" or "b").
    pub fn node(&self, name: &str) -> Option<&LabNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The operator's client key (authorized as root on both nodes).
    pub fn operator_key(&self) -> &ClientKey {
        &self.operator_key
    }

    /// The lab's known_hosts file.
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// The current topology (PIDs as they are now: call [`Lab::write_topology`] after
    /// restarting a server so lab.json follows).
    pub fn topology(&self) -> LabTopology {
        let mut processes = Vec::new();
        let nodes = self
            .nodes
            .iter()
            .map(|n| {
                if let Some(g) = n.pg.guard().filter(|g| g.is_running()) {
                    processes.push(ProcessRecord::from_guard(&n.name, Component::Postgres, g));
                }
                if let Some(g) = n.sshd.guard().filter(|g| g.is_running()) {
                    processes.push(ProcessRecord::from_guard(&n.name, Component::Sshd, g));
                }
                let sip = n.sip.as_ref().map(|k| {
                    if let Some(g) = k.guard().filter(|g| g.is_running()) {
                        processes.push(ProcessRecord::from_guard(&n.name, Component::Kamailio, g));
                    }
                    SipTopology {
                        port: k.port(),
                        log_file: k.log_path(),
                    }
                });
                let syncthing = n.syncthing.as_ref().map(|st| {
                    if let Some(g) = st.guard().filter(|g| g.is_running()) {
                        processes.push(ProcessRecord::from_guard(&n.name, Component::Syncthing, g));
                    }
                    st.topology()
                });
                NodeTopology {
                    name: n.name.clone(),
                    ip: n.ip,
                    pg: PgTopology {
                        flavor: n.pg.flavor(),
                        version_num: n.pg.version_num(),
                        port: n.pg.port(),
                        user: FUSIONPBX.to_owned(),
                        database: FUSIONPBX.to_owned(),
                        password_file: n.pg.password_file(),
                        socket_dir: n.pg.socket_dir(),
                        data_dir: n.pg.data_dir(),
                        bin_dir: n.pg.bin_dir().to_owned(),
                        log_file: n.pg.log_file(),
                    },
                    ssh: SshTopology {
                        port: n.sshd.port(),
                        user: n.sshd.user().to_owned(),
                        operator_key: self.operator_key.private_path().to_owned(),
                        peer_key: n.peer_key.private_path().to_owned(),
                        known_hosts: self.known_hosts.clone(),
                        known_hosts_line: n.sshd.known_hosts_line(),
                        log_file: n.sshd.log_path(),
                    },
                    sip,
                    syncthing,
                }
            })
            .collect();
        let dns = self.dns.as_ref().map(|k| {
            for s in std::iter::once(&k.primary).chain(k.secondary.as_ref()) {
                processes.push(ProcessRecord::from_guard("dns", Component::Knot, s.guard()));
            }
            DnsTopology {
                zone: k.zone().trim_end_matches('.').to_owned(),
                update: k.lab_dns(),
                servers: k.servers().iter().map(|a| a.to_string()).collect(),
            }
        });
        LabTopology {
            dir: self.dir.clone(),
            known_hosts: self.known_hosts.clone(),
            operator_key: self.operator_key.private_path().to_owned(),
            nodes,
            dns,
            processes,
            scratch: vec![self.scratch.clone()],
        }
    }

    /// Rewrites `<dir>/lab.json` from the current state; returns its path.
    pub fn write_topology(&self) -> Result<PathBuf, Error> {
        self.topology().write()
    }

    /// Leaves every process running after the lab value is gone (the demo's `up`) and returns
    /// the topology (also in lab.json); stop them later with [`down`].
    pub fn detach(mut self) -> LabTopology {
        let topology = self.topology();
        self.detached = true;
        if let Some(k) = self.dns.take() {
            k.detach();
        }
        for node in self.nodes.drain(..) {
            node.pg.detach();
            node.sshd.detach();
            if let Some(k) = node.sip {
                k.detach();
            }
            if let Some(st) = node.syncthing {
                st.detach();
            }
        }
        topology
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        for node in &mut self.nodes {
            node.pg.stop();
            node.sshd.stop();
            if let Some(k) = node.sip.as_mut() {
                k.stop();
            }
            if let Some(st) = node.syncthing.as_mut() {
                st.stop();
            }
        }
        // Nothing recorded runs any more.
        let _ = std::fs::remove_file(self.dir.join(LAB_JSON));
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// What one node needs to start.
struct NodeSpec {
    name: String,
    ip: IpAddr,
    node_dir: PathBuf,
    pg: PgOptions,
    authorized: Vec<String>,
    sip: bool,
}

fn start_node(spec: NodeSpec) -> Result<(PgServer, Sshd, Option<Kamailio>), Error> {
    let t = std::time::Instant::now();
    let pg = PgServer::start(spec.pg)?;
    let sshd = Sshd::start(SshdOptions {
        ip: spec.ip,
        dir: Some(spec.node_dir.join("sshd")),
        authorized_keys: spec.authorized,
        ..SshdOptions::default()
    })?;
    let sip = if spec.sip {
        Some(Kamailio::start(KamailioOptions {
            ip: spec.ip,
            name: format!("sip-{}", spec.name),
            dir: Some(spec.node_dir.join("sip")),
            ..KamailioOptions::default()
        })?)
    } else {
        None
    };
    tracing::info!(node = %spec.name, elapsed = ?t.elapsed(), "lab node up");
    Ok((pg, sshd, sip))
}

/// FS PBX's media folders, created under each lab node's `files/` root (the root stands in for
/// `/` on that node: both lab nodes share one filesystem).
pub const FSPBX_FOLDERS: [&str; 5] = [
    "/usr/share/freeswitch/sounds/music",
    "/var/cache/fusionpbx",
    "/var/lib/freeswitch/recordings",
    "/var/lib/freeswitch/storage",
    "/var/www/fspbx/public/resources/templates/provision",
];

/// The directory standing in for `/` of `node`'s media tree (`syncthing.folder_root`).
pub fn node_files_root(dir: &Path, node: &str) -> PathBuf {
    dir.join(node).join("files")
}

fn start_syncthing(dir: &Path, node: &str, opts: SyncthingOptions) -> Result<Syncthing, Error> {
    let root = node_files_root(dir, node);
    for f in FSPBX_FOLDERS {
        let d = root.join(f.trim_start_matches('/'));
        std::fs::create_dir_all(&d).map_err(|e| Error::io("create directory", &d, e))?;
    }
    Syncthing::start(SyncthingOptions {
        gui_ip: Some(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
        dir: Some(dir.join(node).join("syncthing")),
        ..opts
    })
}

fn join<T>(h: std::thread::ScopedJoinHandle<'_, Result<T, Error>>) -> Result<T, Error> {
    h.join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// What [`down`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DownReport {
    /// Processes that ran and were stopped.
    pub stopped: Vec<ProcessRecord>,
    /// Processes recorded but already gone.
    pub already_gone: Vec<ProcessRecord>,
    /// Files and directories removed.
    pub removed: Vec<PathBuf>,
}

/// Grace period [`down`] gives each process before SIGKILL.
pub const DOWN_GRACE: Duration = Duration::from_secs(10);

/// Stops every process recorded in `<dir>/lab.json` (stop signal, grace, SIGKILL) and removes the
/// lab's files (node directories, keys, known_hosts, lab.json, cluster.toml, the scratch
/// directories); idempotent. The directory itself is removed when nothing else is left in it.
pub fn down(dir: &Path) -> Result<DownReport, Error> {
    let mut report = DownReport::default();
    let topology = LabTopology::read(dir)?;
    if let Some(topology) = &topology {
        // Stop in parallel: each may take a grace period.
        let results: Vec<(ProcessRecord, bool)> = std::thread::scope(|s| {
            let handles: Vec<_> = topology
                .processes
                .iter()
                .map(|p| s.spawn(move || (p.clone(), p.stop(DOWN_GRACE))))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (record, was_running) in results {
            if was_running {
                report.stopped.push(record);
            } else {
                report.already_gone.push(record);
            }
        }
    }
    report.removed = remove_lab_files(dir, topology.as_ref(), true)?;
    Ok(report)
}

/// Removes what a lab created in `dir` (and the scratch directories `topology` records); with
/// `dir_too`, also `dir` itself when nothing else is left in it. Returns what was removed.
fn remove_lab_files(
    dir: &Path,
    topology: Option<&LabTopology>,
    dir_too: bool,
) -> Result<Vec<PathBuf>, Error> {
    let mut removed = Vec::new();
    let mut paths: Vec<PathBuf> = [
        "a",
        "b",
        "keys",
        "known_hosts",
        "cluster.toml",
        LAB_JSON,
        crate::cluster_toml::AUDIT_LOG,
        crate::cluster_toml::FENCE_LOG,
        "replication.password",
        "dns",
        crate::upgrade::WORKDIR,
    ]
    .iter()
    .map(|name| dir.join(name))
    .collect();
    paths.extend(topology.iter().flat_map(|t| t.scratch.iter().cloned()));
    for path in paths {
        let result = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match result {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &path, e)),
        }
    }
    // Only when empty: the directory may hold the user's own files.
    if dir_too && std::fs::remove_dir(dir).is_ok() {
        removed.push(dir.to_owned());
    }
    Ok(removed)
}

/// What runs in a lab directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabStatus {
    /// No lab.json: nothing was started (or it was taken down).
    Absent,
    /// Every recorded process runs.
    Running(LabTopology),
    /// Some recorded processes are gone (e.g. killed, or the machine restarted).
    Stale {
        /// The recorded topology.
        topology: LabTopology,
        /// The processes that no longer run.
        dead: Vec<ProcessRecord>,
    },
}

/// Reads `<dir>/lab.json` and checks which of its processes still run.
pub fn status(dir: &Path) -> Result<LabStatus, Error> {
    let Some(topology) = LabTopology::read(dir)? else {
        return Ok(LabStatus::Absent);
    };
    let dead: Vec<ProcessRecord> = topology
        .processes
        .iter()
        .filter(|p| !p.is_alive())
        .cloned()
        .collect();
    if dead.is_empty() && !topology.processes.is_empty() {
        Ok(LabStatus::Running(topology))
    } else {
        Ok(LabStatus::Stale { topology, dead })
    }
}
