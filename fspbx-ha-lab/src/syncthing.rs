//! A real Syncthing daemon (Debian's 1.19, or a 2.x on `$FSPBX_HA_LAB_SYNCTHING`) for the lab.
//!
//! [`Syncthing::start`] runs `syncthing generate`, edits `config.xml` for a private lab (GUI/REST
//! and one sync listener on the node's address with free ports; global and local discovery,
//! relays, NAT, crash reporting, usage reporting and upgrades off; the device named), starts
//! `syncthing serve` in its own process group under a [`Guard`] and waits for
//! `/rest/noauth/health`. With `STNORESTART`/`--no-restart` there is no monitor process, and the
//! guard signals the whole group anyway, so nothing survives a stop.
//!
//! The API key is available as a value (for tests) and as a file of mode 0600 (for `file:`
//! secret references, so it never reaches an argv).
//!
//! ```no_run
//! use fspbx_ha_lab::syncthing::{Syncthing, SyncthingOptions};
//! let a = Syncthing::start(SyncthingOptions::node_a()).unwrap();
//! println!("{} {} {}", a.api_url(), a.device_id(), a.listen_address());
//! ```

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::paths;
use crate::ports::free_port;
use crate::process::{self, Daemon, Guard, wait_until};

/// Default location of the Syncthing binary.
pub const SYNCTHING: &str = "/usr/bin/syncthing";
/// Environment variable overriding [`SYNCTHING`].
pub const SYNCTHING_ENV: &str = "FSPBX_HA_LAB_SYNCTHING";
/// How long [`Syncthing::start`] waits for the REST API.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a [`Syncthing`].
#[derive(Debug, Clone)]
pub struct SyncthingOptions {
    /// The node's address: the sync listener binds here (node A: 127.0.0.2).
    pub ip: IpAddr,
    /// Where the GUI/REST API listens; `None` uses [`SyncthingOptions::ip`]. Use 127.0.0.1 to
    /// model FS PBX's "API only on the node's loopback, reach it through SSH".
    pub gui_ip: Option<IpAddr>,
    /// Device name announced to the peer.
    pub name: String,
    /// Directory for home and data; `None` makes a temporary one removed on drop.
    pub dir: Option<PathBuf>,
}

impl SyncthingOptions {
    /// Node A (127.0.0.2), named `lab-a`.
    pub fn node_a() -> Self {
        SyncthingOptions {
            ip: crate::NODE_A_IP,
            gui_ip: None,
            name: "lab-a".into(),
            dir: None,
        }
    }

    /// Node B (127.0.0.3), named `lab-b`.
    pub fn node_b() -> Self {
        SyncthingOptions {
            ip: crate::NODE_B_IP,
            gui_ip: None,
            name: "lab-b".into(),
            dir: None,
        }
    }
}

/// A lab daemon as a configuration (and lab.json) needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncthingTopology {
    /// Device name.
    pub name: String,
    /// Device ID.
    pub device_id: String,
    /// Base URL of the REST API (`http://ip:port`).
    pub api_url: String,
    /// 0600 file holding the API key (for a `file:` secret reference).
    pub api_key_file: PathBuf,
    /// The sync listener (`tcp://ip:port`).
    pub listen_address: String,
    /// Syncthing's home.
    pub home: PathBuf,
    /// Where test folders live.
    pub data_root: PathBuf,
    /// The daemon's log.
    pub log_file: PathBuf,
}

/// A running Syncthing daemon, stopped by PID on drop.
pub struct Syncthing {
    name: String,
    ip: IpAddr,
    gui: SocketAddr,
    listen_port: u16,
    api_key: String,
    device_id: String,
    dir: PathBuf,
    daemon: Daemon,
    /// Removed after the daemon is stopped (field order: dropped after `daemon`).
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Syncthing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncthing")
            .field("name", &self.name)
            .field("gui", &self.gui)
            .field("listen_port", &self.listen_port)
            .field("device_id", &self.device_id)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Syncthing {
    /// Generates keys and config, edits the config for the lab, starts the daemon and waits
    /// until its REST API answers.
    pub fn start(opts: SyncthingOptions) -> Result<Syncthing, Error> {
        let program = binary()?;
        let (dir, temp) = match &opts.dir {
            Some(d) => (
                std::path::absolute(d).map_err(|e| Error::io("resolve", d, e))?,
                None,
            ),
            None => {
                let t = tempfile::Builder::new()
                    .prefix(&format!("fspbx-ha-syncthing-{}-", opts.name))
                    .tempdir()
                    .map_err(|e| Error::io("create", std::env::temp_dir(), e))?;
                (t.path().to_owned(), Some(t))
            }
        };
        let home = dir.join("home");
        let data = dir.join("data");
        for d in [&home, &data] {
            std::fs::create_dir_all(d).map_err(|e| Error::io("create directory", d, e))?;
        }

        let mut generate = Command::new(&program);
        generate
            .arg("generate")
            .arg(format!("--home={}", home.display()))
            .arg("--no-default-folder")
            .env("STNODEFAULTFOLDER", "1")
            .env("HOME", &dir);
        process::run(generate, &format!("syncthing generate for {}", opts.name))?;

        let device_id = read_device_id(&program, &home)?;
        let config_path = home.join("config.xml");
        let xml = std::fs::read_to_string(&config_path)
            .map_err(|e| Error::io("read", &config_path, e))?;
        let api_key = section_element(&xml, "<gui", "apikey").ok_or_else(|| Error::Unexpected {
            what: format!("{} (no <gui><apikey>)", config_path.display()),
            found: String::new(),
        })?;

        let gui = SocketAddr::new(
            opts.gui_ip.unwrap_or(opts.ip),
            free_port(opts.gui_ip.unwrap_or(opts.ip)),
        );
        let listen_port = free_port(opts.ip);
        let listen = format!("tcp://{}", SocketAddr::new(opts.ip, listen_port));
        let xml = lab_config(&xml, &device_id, &opts.name, gui, &listen).map_err(|what| {
            Error::Unexpected {
                what: format!("{}: {what}", config_path.display()),
                found: String::new(),
            }
        })?;
        paths::write_file(&config_path, &xml, None)?;
        paths::write_secret_file(&dir.join("api_key"), &api_key, None)?;

        let mut st = Syncthing {
            name: opts.name,
            ip: opts.ip,
            gui,
            listen_port,
            api_key,
            device_id,
            dir,
            daemon: Daemon::new(),
            _temp: temp,
        };
        st.start_again()?;
        Ok(st)
    }

    /// Starts the daemon again with the same home and ports (after [`Syncthing::stop`] or
    /// [`Syncthing::kill_hard`]); does nothing when it runs.
    pub fn start_again(&mut self) -> Result<(), Error> {
        if self.is_running() {
            return Ok(());
        }
        let program = binary()?;
        let mut cmd = Command::new(program);
        cmd.arg("serve")
            .arg(format!("--home={}", self.home().display()))
            .args([
                "--no-browser",
                "--no-restart",
                "--no-upgrade",
                "--no-default-folder",
                "--skip-port-probing",
            ])
            .env("STNODEFAULTFOLDER", "1")
            .env("STNOUPGRADE", "1")
            .env("STNORESTART", "1")
            .env("HOME", &self.dir);
        let name = format!("syncthing-{}", self.name);
        let guard = Guard::spawn(cmd, &name, &self.log_path())?.with_grace(Duration::from_secs(10));
        let (gui, log, what) = (
            self.gui,
            self.log_path(),
            format!("syncthing {} REST API on {}", self.name, self.gui),
        );
        let key = self.api_key.clone();
        let guard = self.daemon.run(guard);
        wait_until(&what, START_TIMEOUT, Some(&log), || {
            guard.is_running() && ping_ok(gui, &key)
        })
        .map_err(|e| {
            if guard.is_running() {
                e
            } else {
                Error::CommandFailed {
                    what: format!("syncthing {}", self.name),
                    program: PathBuf::from(SYNCTHING),
                    status: "exited during startup".into(),
                    stderr: process::log_tail(&log, 20),
                }
            }
        })
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node address the sync listener binds to.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The GUI/REST listener.
    pub fn gui_addr(&self) -> SocketAddr {
        self.gui
    }

    /// Base URL of the REST API, e.g. `http://127.0.0.2:28384`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.gui)
    }

    /// The API key (tests only: configurations reference [`Syncthing::api_key_file`]).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// A file (mode 0600) holding only the API key, for `file:` secret references.
    pub fn api_key_file(&self) -> PathBuf {
        self.dir.join("api_key")
    }

    /// The device ID (`XXXXXXX-…`, 8 groups).
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The sync listener port.
    pub fn listen_port(&self) -> u16 {
        self.listen_port
    }

    /// The sync listener as Syncthing writes it: `tcp://ip:port`.
    pub fn listen_address(&self) -> String {
        format!("tcp://{}", SocketAddr::new(self.ip, self.listen_port))
    }

    /// Syncthing's home (config.xml, keys, database).
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// A directory for test folders (empty at start).
    pub fn data_root(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The daemon's log (stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("syncthing.log")
    }

    /// What a configuration needs to reach this daemon (no secret values: the key is a file).
    pub fn topology(&self) -> SyncthingTopology {
        SyncthingTopology {
            name: self.name.clone(),
            device_id: self.device_id.clone(),
            api_url: self.api_url(),
            api_key_file: self.api_key_file(),
            listen_address: self.listen_address(),
            home: self.home(),
            data_root: self.data_root(),
            log_file: self.log_path(),
        }
    }

    /// The guard of the daemon (absent after [`Syncthing::detach`]), e.g. for a lab.json
    /// process record.
    pub fn guard(&self) -> Option<&Guard> {
        self.daemon.guard()
    }

    /// PID of the daemon, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// Whether the daemon runs.
    pub fn is_running(&self) -> bool {
        self.daemon.is_running()
    }

    /// Stops the daemon (SIGTERM, SIGKILL to its process group after 10 s).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// SIGKILLs the daemon (node-loss tests).
    pub fn kill_hard(&mut self) {
        self.daemon.kill_hard();
    }

    /// Leaves the daemon running after this value is dropped (the demo); returns its PID. The
    /// directory is kept even if it was temporary.
    pub fn detach(mut self) -> Option<u32> {
        if let Some(t) = self._temp.take() {
            let _ = t.keep();
        }
        self.daemon.detach()
    }
}

fn binary() -> Result<PathBuf, Error> {
    paths::program("Syncthing", SYNCTHING_ENV, Path::new(SYNCTHING))
}

/// The device ID: `serve --device-id` (1.x), else the `device-id` subcommand (2.x).
fn read_device_id(program: &Path, home: &Path) -> Result<String, Error> {
    let mut v1 = Command::new(program);
    v1.arg("serve")
        .arg(format!("--home={}", home.display()))
        .arg("--device-id");
    let out = match process::run(v1, "syncthing serve --device-id") {
        Ok(out) => out,
        Err(_) => {
            let mut v2 = Command::new(program);
            v2.arg("device-id")
                .arg(format!("--home={}", home.display()));
            process::run(v2, "syncthing device-id")?
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or_default();
    if id.len() == 63 && id.matches('-').count() == 7 {
        Ok(id.to_owned())
    } else {
        Err(Error::Unexpected {
            what: "syncthing device id".into(),
            found: text.trim().to_owned(),
        })
    }
}

/// Rewrites a freshly generated config.xml for the lab. Returns what it could not find.
fn lab_config(
    xml: &str,
    device_id: &str,
    name: &str,
    gui: SocketAddr,
    listen: &str,
) -> Result<String, String> {
    let mut xml = xml.to_owned();
    // The device's own name.
    let marker = format!("<device id=\"{device_id}\" name=\"");
    let start = xml.find(&marker).ok_or("own <device> element")? + marker.len();
    let end = start + xml[start..].find('"').ok_or("own device name")?;
    xml.replace_range(start..end, &xml_escape(name));
    // GUI address.
    set_in_section(&mut xml, "<gui", "address", &gui.to_string())?;
    // Exactly one listen address.
    let first = xml.find("<listenAddress>").ok_or("<listenAddress>")?;
    while let Some(pos) = xml.rfind("<listenAddress>").filter(|p| *p > first) {
        let end = pos
            + xml[pos..]
                .find("</listenAddress>")
                .ok_or("</listenAddress>")?
            + "</listenAddress>".len();
        let end = end + xml[end..].len() - xml[end..].trim_start().len();
        xml.replace_range(pos..end, "");
    }
    set_in_section(&mut xml, "<options", "listenAddress", listen)?;
    for (tag, value) in [
        ("globalAnnounceEnabled", "false"),
        ("localAnnounceEnabled", "false"),
        ("relaysEnabled", "false"),
        ("natEnabled", "false"),
        ("crashReportingEnabled", "false"),
        ("announceLANAddresses", "false"),
        ("startBrowser", "false"),
        ("urAccepted", "-1"),
        ("autoUpgradeIntervalH", "0"),
    ] {
        set_in_section(&mut xml, "<options", tag, value)?;
    }
    Ok(xml)
}

/// Replaces the text of the first `<tag>` element after `section`.
fn set_in_section(xml: &mut String, section: &str, tag: &str, value: &str) -> Result<(), String> {
    let base = xml.find(section).ok_or_else(|| format!("{section}>"))?;
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = base
        + xml[base..]
            .find(&open)
            .ok_or_else(|| format!("{open} in {section}>"))?
        + open.len();
    let end = start + xml[start..].find(&close).ok_or_else(|| close.clone())?;
    xml.replace_range(start..end, &xml_escape(value));
    Ok(())
}

/// The text of the first `<tag>` element after `section`.
fn section_element(xml: &str, section: &str, tag: &str) -> Option<String> {
    let base = xml.find(section)?;
    let open = format!("<{tag}>");
    let start = base + xml[base..].find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].to_owned())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Whether `GET /rest/system/ping` answers 200 `{"ping":"pong"}` (Debian's 1.19 has no
/// `/rest/noauth/health`, and refuses requests without the key).
fn ping_ok(addr: SocketAddr, key: &str) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(1000)));
    let req = format!("GET /rest/system/ping HTTP/1.0\r\nHost: {addr}\r\nX-API-Key: {key}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.starts_with("HTTP/1.") && text.contains(" 200 ") && text.contains("pong")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERATED: &str = r#"<configuration version="36">
    <device id="AAA" name="vm" compression="metadata">
        <address>dynamic</address>
    </device>
    <gui enabled="true" tls="false" debugging="false">
        <address>127.0.0.1:8384</address>
        <apikey>k3y</apikey>
    </gui>
    <options>
        <listenAddress>default</listenAddress>
        <listenAddress>quic://0.0.0.0:22000</listenAddress>
        <globalAnnounceEnabled>true</globalAnnounceEnabled>
        <localAnnounceEnabled>true</localAnnounceEnabled>
        <relaysEnabled>true</relaysEnabled>
        <startBrowser>true</startBrowser>
        <natEnabled>true</natEnabled>
        <urAccepted>0</urAccepted>
        <autoUpgradeIntervalH>12</autoUpgradeIntervalH>
        <crashReportingEnabled>true</crashReportingEnabled>
        <announceLANAddresses>true</announceLANAddresses>
    </options>
</configuration>"#;

    #[test]
    fn lab_config_edits_what_lab_md_lists() {
        let gui: SocketAddr = "127.0.0.2:28384".parse().unwrap();
        let x = lab_config(GENERATED, "AAA", "lab-a", gui, "tcp://127.0.0.2:22001").unwrap();
        assert!(x.contains(r#"<device id="AAA" name="lab-a""#), "{x}");
        assert!(
            x.contains("<address>dynamic</address>"),
            "device address untouched: {x}"
        );
        assert!(x.contains("<address>127.0.0.2:28384</address>"), "{x}");
        assert_eq!(x.matches("<listenAddress>").count(), 1, "{x}");
        assert!(
            x.contains("<listenAddress>tcp://127.0.0.2:22001</listenAddress>"),
            "{x}"
        );
        for off in [
            "globalAnnounceEnabled",
            "localAnnounceEnabled",
            "relaysEnabled",
            "natEnabled",
            "startBrowser",
            "crashReportingEnabled",
            "announceLANAddresses",
        ] {
            assert!(x.contains(&format!("<{off}>false</{off}>")), "{off}: {x}");
        }
        assert!(x.contains("<urAccepted>-1</urAccepted>"));
        assert!(x.contains("<autoUpgradeIntervalH>0</autoUpgradeIntervalH>"));
        assert_eq!(
            section_element(&x, "<gui", "apikey").as_deref(),
            Some("k3y")
        );
    }

    #[test]
    fn lab_config_names_what_is_missing() {
        let gui: SocketAddr = "127.0.0.2:28384".parse().unwrap();
        let err = lab_config("<configuration/>", "AAA", "a", gui, "tcp://x").unwrap_err();
        assert!(err.contains("own <device>"), "{err}");
    }
}
