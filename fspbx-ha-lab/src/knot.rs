//! Knot DNS (3.2) as the lab's authoritative server: RFC 2136 updates signed with TSIG, and an
//! optional secondary fed by zone transfer (NOTIFY + IXFR) for propagation tests.
//!
//! The primary listens on 127.0.0.53 (the lab's DNS address), a secondary on 127.0.0.54; both on
//! free ports. The TSIG key comes from `keymgr -t` and is handed to tests as a file (mode 0600)
//! so it can be referenced as `file:` and never reaches an argv.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::Error;
use crate::paths;
use crate::ports::free_port;
use crate::process::{self, Guard};

/// The lab's DNS address (primary).
pub const DNS_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53));
/// The address of the lab's secondary DNS server.
pub const DNS2_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 54));

/// Environment variable overriding the path of `knotd`.
pub const KNOTD_ENV: &str = "FSPBX_HA_LAB_KNOTD";

/// A TSIG key as Knot's `keymgr -t` generates it.
#[derive(Clone)]
pub struct TsigMaterial {
    /// Key name (`labkey`).
    pub name: String,
    /// Algorithm (`hmac-sha256`).
    pub algorithm: String,
    /// Base64 secret.
    pub secret: String,
}

impl std::fmt::Debug for TsigMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigMaterial")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TsigMaterial {
    /// Generates a fresh key with `keymgr -t NAME hmac-sha256`.
    pub fn generate(name: &str) -> Result<TsigMaterial, Error> {
        let keymgr = paths::program(
            "keymgr",
            "FSPBX_HA_LAB_KEYMGR",
            Path::new("/usr/sbin/keymgr"),
        )?;
        let mut cmd = Command::new(keymgr);
        cmd.args(["-t", name, "hmac-sha256"]);
        let out = process::run(cmd, "keymgr -t")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let secret = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("secret:"))
            .map(|s| s.trim().to_owned())
            .ok_or_else(|| Error::Unexpected {
                what: "keymgr output (no `secret:` line)".into(),
                found: String::new(),
            })?;
        Ok(TsigMaterial {
            name: name.to_owned(),
            algorithm: "hmac-sha256".into(),
            secret,
        })
    }
}

/// How to start a Knot server.
#[derive(Debug, Clone)]
pub struct KnotOptions {
    /// Address to listen on (default [`DNS_IP`]).
    pub ip: IpAddr,
    /// The zone (default `example.test.`).
    pub zone: String,
    /// Extra zone-file lines after SOA and NS (relative names allowed). The default holds the
    /// two node records: `server1 A 127.0.0.2`, `server2 A 127.0.0.3`.
    pub records: Vec<String>,
    /// Start a secondary on [`DNS2_IP`] too, fed by NOTIFY + zone transfer.
    pub secondary: bool,
    /// Directory for configuration, zones, key and logs (kept); default: a temporary one,
    /// removed when the [`Knot`] is dropped.
    pub dir: Option<PathBuf>,
}

impl Default for KnotOptions {
    fn default() -> Self {
        KnotOptions {
            ip: DNS_IP,
            zone: "example.test.".into(),
            records: vec![
                "server1 60 A 127.0.0.2".into(),
                "server2 60 A 127.0.0.3".into(),
            ],
            secondary: false,
            dir: None,
        }
    }
}

/// One running knotd.
#[derive(Debug)]
pub struct KnotServer {
    guard: Guard,
    addr: SocketAddr,
    dir: PathBuf,
}

impl KnotServer {
    /// Where it answers (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("knotd.log")
    }

    /// Whether knotd still runs.
    /// The guard of its knotd (for the lab's process records).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Whether knotd still runs.
    pub fn is_running(&self) -> bool {
        self.guard.is_running()
    }

    /// Stops it now.
    pub fn stop(&mut self) {
        self.guard.stop();
    }

    /// Asks it with `kdig +short +norecurse` (an independent client): the answer lines.
    pub fn kdig(&self, name: &str, rtype: &str) -> Result<Vec<String>, Error> {
        let kdig = paths::program("kdig", "FSPBX_HA_LAB_KDIG", Path::new("/usr/bin/kdig"))?;
        let mut cmd = Command::new(kdig);
        cmd.arg(format!("@{}", self.addr.ip()))
            .args(["-p", &self.addr.port().to_string()])
            .args(["+short", "+norecurse", "+time=2", "+retry=0", name, rtype]);
        let out = process::run(cmd, "kdig")?;
        let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        Ok(lines)
    }
}

/// The lab's authoritative DNS: a primary accepting signed updates, optionally a secondary.
#[derive(Debug)]
pub struct Knot {
    /// The primary (updates go here).
    pub primary: KnotServer,
    /// The secondary, when asked for.
    pub secondary: Option<KnotServer>,
    zone: String,
    key: TsigMaterial,
    key_file: PathBuf,
    // Dropped last: the servers stop before their directory goes.
    temp: Option<tempfile::TempDir>,
}

impl Knot {
    /// Starts Knot as described by `opts` and waits until every server answers the zone's SOA
    /// authoritatively.
    pub fn start(opts: KnotOptions) -> Result<Knot, Error> {
        let knotd = paths::program("knotd", KNOTD_ENV, Path::new("/usr/sbin/knotd"))?;
        let (temp, base) = match &opts.dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| Error::io("create directory", d, e))?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new()
                    .prefix("fspbx-knot-")
                    .tempdir()
                    .map_err(|e| Error::io("create temp dir", std::env::temp_dir(), e))?;
                let p = t.path().to_owned();
                (Some(t), p)
            }
        };
        let zone = if opts.zone.ends_with('.') {
            opts.zone.clone()
        } else {
            format!("{}.", opts.zone)
        };
        let key = TsigMaterial::generate("labkey")?;
        let key_file = base.join("tsig.secret");
        paths::write_secret_file(&key_file, &key.secret, None)?;

        let p_addr = SocketAddr::new(opts.ip, free_port(opts.ip));
        let s_addr = opts
            .secondary
            .then(|| SocketAddr::new(DNS2_IP, free_port(DNS2_IP)));

        let p_dir = base.join("primary");
        let mut zonefile = format!(
            "$ORIGIN {zone}\n$TTL 60\n@ 60 SOA ns1.{zone} hostmaster.{zone} 1 60 30 3600 5\n\
             @ 60 NS ns1.{zone}\nns1 60 A {}\n",
            p_addr.ip()
        );
        if let Some(s) = s_addr {
            zonefile.push_str(&format!("@ 60 NS ns2.{zone}\nns2 60 A {}\n", s.ip()));
        }
        for r in &opts.records {
            zonefile.push_str(r);
            zonefile.push('\n');
        }
        std::fs::create_dir_all(p_dir.join("zones")).map_err(|e| Error::io("create", &p_dir, e))?;
        paths::write_file(
            &p_dir
                .join("zones")
                .join(format!("{}.zone", zone.trim_end_matches('.'))),
            &zonefile,
            None,
        )?;
        let p_conf = config(
            &p_dir,
            p_addr,
            &zone,
            &key,
            Role::Primary { secondary: s_addr },
        );
        let primary = start_one(&knotd, &p_dir, &p_conf, p_addr, &zone, "knot-primary")?;

        let secondary = match s_addr {
            None => None,
            Some(s_addr) => {
                let s_dir = base.join("secondary");
                std::fs::create_dir_all(s_dir.join("zones"))
                    .map_err(|e| Error::io("create", &s_dir, e))?;
                let s_conf = config(
                    &s_dir,
                    s_addr,
                    &zone,
                    &key,
                    Role::Secondary { primary: p_addr },
                );
                Some(start_one(
                    &knotd,
                    &s_dir,
                    &s_conf,
                    s_addr,
                    &zone,
                    "knot-secondary",
                )?)
            }
        };
        Ok(Knot {
            primary,
            secondary,
            zone,
            key,
            key_file,
            temp,
        })
    }

    /// The zone (FQDN).
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// The TSIG key the primary accepts for updates.
    pub fn key(&self) -> &TsigMaterial {
        &self.key
    }

    /// A file (mode 0600) holding the key's base64 secret, for `file:` secret references.
    pub fn key_file(&self) -> &Path {
        &self.key_file
    }

    /// The provider settings for the lab's `cluster.toml` (server, key name, key file).
    pub fn lab_dns(&self) -> crate::cluster_toml::LabDns {
        crate::cluster_toml::LabDns {
            server: self.primary.addr().to_string(),
            key_name: self.key.name.clone(),
            key_file: self.key_file.clone(),
        }
    }

    /// Leaves the servers running after this value is gone (the demo's `up`); returns their
    /// PIDs (primary first). The directory is kept.
    pub fn detach(self) -> Vec<u32> {
        let Knot {
            primary,
            secondary,
            temp,
            ..
        } = self;
        temp.map(tempfile::TempDir::keep);
        let mut pids = vec![primary.guard.detach()];
        pids.extend(secondary.map(|s| s.guard.detach()));
        pids
    }

    /// Every authoritative server's address (primary first).
    pub fn servers(&self) -> Vec<SocketAddr> {
        let mut v = vec![self.primary.addr()];
        v.extend(self.secondary.as_ref().map(KnotServer::addr));
        v
    }
}

enum Role {
    Primary { secondary: Option<SocketAddr> },
    Secondary { primary: SocketAddr },
}

fn config(dir: &Path, addr: SocketAddr, zone: &str, key: &TsigMaterial, role: Role) -> String {
    let d = dir.display();
    let mut c = format!(
        "server:\n    rundir: \"{d}/run\"\n    listen: {ip}@{port}\n    udp-workers: 1\n    \
         tcp-workers: 1\n    background-workers: 1\n\
         log:\n  - target: stderr\n    any: info\n\
         database:\n    storage: \"{d}/db\"\n\
         control:\n    listen: \"{d}/knot.sock\"\n\
         key:\n  - id: {kn}\n    algorithm: {ka}\n    secret: {ks}\n",
        ip = addr.ip(),
        port = addr.port(),
        kn = key.name,
        ka = key.algorithm,
        ks = key.secret,
    );
    let remote = match &role {
        Role::Primary { secondary: Some(s) } => Some(("secondary", *s)),
        Role::Primary { secondary: None } => None,
        Role::Secondary { primary } => Some(("primary", *primary)),
    };
    if let Some((id, a)) = remote {
        c.push_str(&format!(
            "remote:\n  - id: {id}\n    address: {}@{}\n    key: {}\n",
            a.ip(),
            a.port(),
            key.name
        ));
    }
    c.push_str(&format!(
        "acl:\n  - id: update_acl\n    key: {k}\n    action: update\n  - id: xfr_acl\n    key: {k}\n    \
         action: transfer\n  - id: notify_acl\n    key: {k}\n    action: notify\n\
         template:\n  - id: default\n    storage: \"{d}/zones\"\n    file: \"%s.zone\"\n    \
         zonefile-sync: 0\n    journal-content: changes\n\
         zone:\n  - domain: {zone}\n",
        k = key.name
    ));
    match role {
        Role::Primary { secondary } => {
            c.push_str("    acl: [update_acl, xfr_acl]\n");
            if secondary.is_some() {
                c.push_str("    notify: secondary\n");
            }
        }
        Role::Secondary { .. } => {
            c.push_str("    master: primary\n    acl: [notify_acl]\n");
        }
    }
    c
}

fn start_one(
    knotd: &Path,
    dir: &Path,
    conf: &str,
    addr: SocketAddr,
    zone: &str,
    name: &str,
) -> Result<KnotServer, Error> {
    for sub in ["run", "db"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| Error::io("create", dir.join(sub), e))?;
    }
    let conf_path = dir.join("knot.conf");
    // The config holds the TSIG secret: owner-only.
    paths::write_secret_file(&conf_path, conf, None)?;
    let knotc = paths::program("knotc", "FSPBX_HA_LAB_KNOTC", Path::new("/usr/sbin/knotc"))?;
    let mut check = Command::new(knotc);
    check.arg("-c").arg(&conf_path).arg("conf-check");
    process::run(check, &format!("knotc conf-check for {name}"))?;

    let log = dir.join("knotd.log");
    let mut cmd = Command::new(knotd);
    cmd.arg("-c").arg(&conf_path);
    let guard = Guard::spawn(cmd, name, &log)?.with_grace(Duration::from_secs(3));
    let server = KnotServer {
        guard,
        addr,
        dir: dir.to_owned(),
    };
    process::wait_until(
        &format!("{name} serving {zone} on {addr}"),
        Duration::from_secs(15),
        Some(&log),
        || server.is_running() && soa_authoritative(addr, zone),
    )?;
    Ok(server)
}

/// Sends a bare SOA query and checks for an authoritative NOERROR answer.
fn soa_authoritative(addr: SocketAddr, zone: &str) -> bool {
    let Ok(sock) = UdpSocket::bind(SocketAddr::new(addr.ip(), 0)) else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    let mut q = vec![0x4c, 0x61, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in zone.trim_end_matches('.').split('.') {
        q.push(u8::try_from(label.len()).unwrap_or(0));
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 6, 0, 1]);
    if sock.send_to(&q, addr).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) if n >= 12 => {
            let aa = buf[2] & 0x04 != 0;
            let rcode = buf[3] & 0x0f;
            let ancount = u16::from_be_bytes([buf[6], buf[7]]);
            buf[0] == 0x4c && buf[1] == 0x61 && aa && rcode == 0 && ancount > 0
        }
        _ => false,
    }
}
