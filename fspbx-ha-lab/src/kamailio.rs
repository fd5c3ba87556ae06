//! Kamailio (5.6) as the lab's SIP responder: it stands in for FreeSWITCH answering SIP OPTIONS
//! on a node.
//!
//! [`Kamailio::start`] writes a minimal configuration listening on UDP **and** TCP on the node's
//! address and a free port, checks it with `kamailio -c`, runs `kamailio -DD -E` in the
//! foreground under a [`Guard`] (its own process group: the main process and its workers) and
//! waits until an OPTIONS request gets a `200`.
//!
//! How OPTIONS is answered is chosen by [`OptionsReply`]: `200 OK` (a healthy node), another
//! status (e.g. `403`: the SIP stack is alive but refuses), or no answer at all (a hung stack).
//! Readiness is checked with an OPTIONS carrying the `X-Lab-Ready` header, which is always
//! answered `200`, so even a silent responder is known to be up before a test starts.
//! [`Kamailio::pause`] / [`Kamailio::resume`] SIGSTOP / SIGCONT the whole process group for blip
//! tests.
//!
//! With [`KamailioOptions::registrar`] it is also a registrar (it stands in for FreeSWITCH's
//! registrations after a failover): `REGISTER` is saved to an in-memory `location` table, and
//! [`Kamailio::registrations_command`] is a shell command printing `N total.` (like
//! `fs_cli -x 'show registrations'`) from its control socket.
//!
//! With [`KamailioOptions::calls`] it also serves calls (it stands in for FreeSWITCH's calls
//! after a failover): `INVITE` dialogs are proxied (record-routed) to a user agent answering
//! them — a SIPp UAS, see [`crate::sipp`] — and tracked by Kamailio's `dialog` module;
//! [`Kamailio::calls_command`] prints `N total.` (like `fs_cli -x 'show calls count'`), N the
//! dialogs confirmed and not yet ended.
//!
//! ```no_run
//! use fspbx_ha_lab::kamailio::{Kamailio, KamailioOptions};
//! let sip = Kamailio::start(KamailioOptions::default()).unwrap();
//! println!("sipsak -s sip:ping@{}", sip.addr());
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{self, Daemon, Guard};
use crate::{Error, paths, ports};

/// The Kamailio binary.
pub const KAMAILIO: &str = "/usr/sbin/kamailio";
/// Kamailio's RPC client (reads a registrar's statistics).
pub const KAMCMD: &str = "/usr/sbin/kamcmd";
/// Environment variable overriding [`KAMAILIO`].
pub const KAMAILIO_ENV: &str = "FSPBX_HA_LAB_KAMAILIO";
/// Environment variable overriding [`MODULES_DIR`].
pub const MODULES_ENV: &str = "FSPBX_HA_LAB_KAMAILIO_MODULES";
/// Where Debian installs Kamailio's modules.
pub const MODULES_DIR: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";
/// How long [`Kamailio::start`] waits for the first `200`.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// The header that makes the lab's Kamailio answer `200` whatever [`OptionsReply`] says
/// (readiness checks).
pub const READY_HEADER: &str = "X-Lab-Ready";

/// How the responder answers SIP OPTIONS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OptionsReply {
    /// `200 OK`: a healthy SIP stack.
    #[default]
    Ok,
    /// Another final status with its reason phrase, e.g. `(403, "Forbidden")`.
    Status(u16, String),
    /// No answer at all (the request is dropped): a hung SIP stack.
    Silent,
}

/// How to start a [`Kamailio`]. Build with struct update syntax over [`Default`].
#[derive(Debug, Clone)]
pub struct KamailioOptions {
    /// The address it listens on, UDP and TCP (node A 127.0.0.2, node B 127.0.0.3).
    pub ip: IpAddr,
    /// Its port (the same for UDP and TCP); `None` picks a free one.
    pub port: Option<u16>,
    /// How OPTIONS is answered.
    pub reply: OptionsReply,
    /// Our name for it in logs and errors (`sip-a`).
    pub name: String,
    /// Directory for config, log and runtime files; `None` uses a temporary directory removed
    /// on drop.
    pub dir: Option<PathBuf>,
    /// Also a registrar: `REGISTER` saved to `location` (usrloc in memory), counted over the
    /// `ctl` socket (see [`Kamailio::registrations_command`]).
    pub registrar: bool,
    /// Also serves calls: `INVITE` dialogs proxied to this user agent (a SIPp UAS) and tracked
    /// by the `dialog` module (see [`Kamailio::calls_command`]).
    pub calls: Option<SocketAddr>,
}

impl Default for KamailioOptions {
    fn default() -> Self {
        KamailioOptions {
            ip: crate::NODE_A_IP,
            port: None,
            reply: OptionsReply::Ok,
            name: "sip".to_owned(),
            dir: None,
            registrar: false,
            calls: None,
        }
    }
}

impl KamailioOptions {
    /// Node A (127.0.0.2), named `sip-a`.
    pub fn node_a() -> Self {
        KamailioOptions {
            name: "sip-a".to_owned(),
            ..KamailioOptions::default()
        }
    }

    /// Node B (127.0.0.3), named `sip-b`.
    pub fn node_b() -> Self {
        KamailioOptions {
            ip: crate::NODE_B_IP,
            name: "sip-b".to_owned(),
            ..KamailioOptions::default()
        }
    }
}

/// A running Kamailio, stopped by PID (its whole process group) on drop.
pub struct Kamailio {
    ip: IpAddr,
    port: u16,
    name: String,
    reply: OptionsReply,
    registrar: bool,
    calls: Option<SocketAddr>,
    dir: PathBuf,
    daemon: Daemon,
    /// Removed after the server is stopped (field order: dropped after `daemon`).
    _temp: Option<tempfile::TempDir>,
}

impl fmt::Debug for Kamailio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kamailio")
            .field("name", &self.name)
            .field("addr", &self.addr())
            .field("reply", &self.reply)
            .field("paused", &self.is_paused())
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Kamailio {
    /// Writes the configuration, checks it with `kamailio -c`, starts Kamailio in the
    /// foreground and waits until a readiness OPTIONS gets `200` over UDP and TCP accepts.
    pub fn start(opts: KamailioOptions) -> Result<Kamailio, Error> {
        let (dir, temp) = match &opts.dir {
            Some(d) => (
                std::path::absolute(d).map_err(|e| Error::io("resolve", d, e))?,
                None,
            ),
            None => {
                let t = paths::scratch_tempdir("fspbx-ha-kamailio-")?;
                (t.path().to_owned(), Some(t))
            }
        };
        std::fs::create_dir_all(dir.join("run"))
            .map_err(|e| Error::io("create directory", dir.join("run"), e))?;
        let port = opts.port.unwrap_or_else(|| ports::free_port(opts.ip));
        let mut k = Kamailio {
            ip: opts.ip,
            port,
            name: opts.name,
            reply: opts.reply,
            registrar: opts.registrar,
            calls: opts.calls,
            dir,
            daemon: Daemon::new(),
            _temp: temp,
        };
        k.write_and_check_config()?;
        k.start_again()?;
        Ok(k)
    }

    /// Starts it again with the same configuration and port (after [`Kamailio::stop`] or
    /// [`Kamailio::kill_hard`]); does nothing when it runs.
    pub fn start_again(&mut self) -> Result<(), Error> {
        if self.is_running() {
            return Ok(());
        }
        let program = binary()?;
        let mut cmd = Command::new(program);
        let run = self.dir.join("run");
        cmd.arg("-f")
            .arg(self.config_path())
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(&run)
            .arg("-P")
            .arg(run.join("kamailio.pid"))
            .arg("-w")
            .arg(&run);
        let name = format!("{}-{}:{}", self.name, self.ip, self.port);
        let guard = Guard::spawn(cmd, &name, &self.log_path())?.with_grace(Duration::from_secs(3));
        let (ip, addr, log) = (self.ip, self.addr(), self.log_path());
        let guard = self.daemon.run(guard);
        process::wait_started(
            guard,
            &format!("kamailio on {addr}"),
            KAMAILIO,
            &log,
            START_TIMEOUT,
            || {
                udp_ready(ip, addr.port())
                    && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            },
        )
    }

    /// Restarts it on the same port answering OPTIONS as `reply` says.
    pub fn set_reply(&mut self, reply: OptionsReply) -> Result<(), Error> {
        self.stop();
        self.reply = reply;
        self.write_and_check_config()?;
        self.start_again()
    }

    /// Restarts it on the same port, as a registrar or not (registrations are lost).
    pub fn set_registrar(&mut self, registrar: bool) -> Result<(), Error> {
        self.stop();
        self.registrar = registrar;
        self.write_and_check_config()?;
        self.start_again()
    }

    /// Whether it is a registrar.
    pub fn is_registrar(&self) -> bool {
        self.registrar
    }

    /// Restarts it on the same port, serving calls by proxying them to `uas` (or not: `None`);
    /// calls and registrations in progress are lost.
    pub fn set_calls(&mut self, uas: Option<SocketAddr>) -> Result<(), Error> {
        self.stop();
        self.calls = uas;
        self.write_and_check_config()?;
        self.start_again()
    }

    /// Where it proxies calls to, when it serves calls.
    pub fn calls_to(&self) -> Option<SocketAddr> {
        self.calls
    }

    /// A shell command printing `N total.`, N the calls in progress now (the dialogs the
    /// `dialog` module counts as ongoing, read with `kamcmd dlg.stats_active` over
    /// [`Kamailio::ctl_socket`]); it prints nothing when Kamailio does not answer.
    pub fn calls_command(&self) -> String {
        format!(
            "{KAMCMD} -s unix:{} dlg.stats_active \
             | sed -n 's/^[[:space:]]*ongoing: *\\([0-9][0-9]*\\).*/\\1 total./p'",
            self.ctl_socket().display()
        )
    }

    /// Its control socket (a registrar's or call server's; see [`Kamailio::registrations_command`]
    /// and [`Kamailio::calls_command`]).
    pub fn ctl_socket(&self) -> PathBuf {
        self.dir.join("run").join("kamailio_ctl")
    }

    /// A shell command printing `N total.`, N the users registered now (a registrar's
    /// `usrloc:registered_users` statistic read with `kamcmd` over [`Kamailio::ctl_socket`]);
    /// it prints nothing when Kamailio does not answer.
    pub fn registrations_command(&self) -> String {
        format!(
            "{KAMCMD} -s unix:{} stats.get_statistics registered_users \
             | sed -n 's/.*registered_users *= *\\([0-9][0-9]*\\).*/\\1 total./p'",
            self.ctl_socket().display()
        )
    }

    fn write_and_check_config(&self) -> Result<(), Error> {
        let modules = modules_dir();
        let config = if self.registrar || self.calls.is_some() {
            render_pbx_config(
                self.ip,
                self.port,
                &modules,
                &self.reply,
                &self.ctl_socket(),
                self.registrar,
                self.calls,
            )
        } else {
            render_config(self.ip, self.port, &modules, &self.reply)
        };
        paths::write_file(&self.config_path(), &config, None)?;
        let mut check = Command::new(binary()?);
        check.arg("-c").arg("-f").arg(self.config_path());
        process::run(check, &format!("kamailio -c (check {})", self.name))?;
        Ok(())
    }

    /// SIGSTOPs the main process and every worker: nothing answers, sockets stay bound (a hung
    /// node, or a blip). Undo with [`Kamailio::resume`].
    pub fn pause(&mut self) {
        self.daemon.pause();
    }

    /// SIGCONTs the process group after [`Kamailio::pause`].
    pub fn resume(&mut self) {
        self.daemon.resume();
    }

    /// Whether it is paused.
    pub fn is_paused(&self) -> bool {
        self.daemon.is_paused()
    }

    /// Stops it (resumed first if paused, so it can shut down its workers).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// SIGKILLs the whole process group (node-loss tests).
    pub fn kill_hard(&mut self) {
        self.daemon.kill_hard();
    }

    /// Listening address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Listening port (UDP and TCP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ip:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    /// How OPTIONS is answered.
    pub fn reply(&self) -> &OptionsReply {
        &self.reply
    }

    /// Our name for it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory holding its files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("kamailio.cfg")
    }

    /// Its log (stderr with `-E`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("kamailio.log")
    }

    /// PID of the main process, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// Whether it runs (paused counts as running).
    pub fn is_running(&self) -> bool {
        self.daemon.is_running()
    }

    /// The guard of the main process (absent after [`Kamailio::detach`]).
    pub fn guard(&self) -> Option<&Guard> {
        self.daemon.guard()
    }

    /// Leaves it running after this value is dropped (the demo); returns its PID. The
    /// directory is kept even if it was temporary.
    pub fn detach(mut self) -> Option<u32> {
        if let Some(t) = self._temp.take() {
            let _ = t.keep();
        }
        self.daemon.detach()
    }
}

fn binary() -> Result<PathBuf, Error> {
    paths::program("Kamailio", KAMAILIO_ENV, Path::new(KAMAILIO))
}

fn modules_dir() -> PathBuf {
    std::env::var_os(MODULES_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(MODULES_DIR))
}

/// The configuration text: UDP and TCP listeners on `ip:port`, OPTIONS answered per `reply`,
/// readiness OPTIONS (with [`READY_HEADER`]) always `200`, anything else `403`.
pub fn render_config(ip: IpAddr, port: u16, modules: &Path, reply: &OptionsReply) -> String {
    let host = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let options = match reply {
        OptionsReply::Ok => "sl_send_reply(\"200\", \"OK\");".to_owned(),
        OptionsReply::Status(code, reason) => {
            let reason: String = reason.chars().filter(|c| *c != '"' && *c != '\\').collect();
            format!("sl_send_reply(\"{code}\", \"{reason}\");")
        }
        OptionsReply::Silent => "drop;".to_owned(),
    };
    format!(
        "#!KAMAILIO\n\
         # fspbx-ha-lab SIP OPTIONS responder\n\
         debug=2\n\
         log_stderror=yes\n\
         fork=yes\n\
         children=1\n\
         tcp_children=1\n\
         auto_aliases=no\n\
         dns=no\n\
         rev_dns=no\n\
         listen=udp:{host}:{port}\n\
         listen=tcp:{host}:{port}\n\
         mpath=\"{modules}/\"\n\
         loadmodule \"sl.so\"\n\
         loadmodule \"pv.so\"\n\
         loadmodule \"xlog.so\"\n\
         loadmodule \"textops.so\"\n\
         request_route {{\n\
         \x20   if (is_method(\"OPTIONS\")) {{\n\
         \x20       if (is_present_hf(\"{READY_HEADER}\")) {{ sl_send_reply(\"200\", \"ready\"); exit; }}\n\
         \x20       {options}\n\
         \x20       exit;\n\
         \x20   }}\n\
         \x20   sl_send_reply(\"403\", \"only OPTIONS\");\n\
         \x20   exit;\n\
         }}\n",
        modules = modules.display(),
    )
}

/// The registrar variant of [`render_config`]: the same OPTIONS answers, plus `REGISTER`
/// saved to an in-memory `location` table (`tm`, `usrloc`, `registrar`) and a `ctl` + `kex`
/// control socket at `ctl` (for `kamcmd`); other requests still get `403`.
pub fn render_registrar_config(
    ip: IpAddr,
    port: u16,
    modules: &Path,
    reply: &OptionsReply,
    ctl: &Path,
) -> String {
    render_pbx_config(ip, port, modules, reply, ctl, true, None)
}

/// The FreeSWITCH stand-in: [`render_config`]'s OPTIONS answers and a `ctl` + `kex` control
/// socket at `ctl` (for `kamcmd`), plus
/// - with `registrar`, `REGISTER` saved to an in-memory `location` table (`usrloc`,
///   `registrar`);
/// - with `calls`, `INVITE` dialogs record-routed to that user agent and tracked by the
///   `dialog` module (`rr`, `siputils`, `dialog`); requests within a dialog follow it (matched
///   by the record-route cookie or, failing that, by Call-ID and tags), `CANCEL` and `ACK` go
///   with their transaction.
///
/// Other requests still get `403`.
pub fn render_pbx_config(
    ip: IpAddr,
    port: u16,
    modules: &Path,
    reply: &OptionsReply,
    ctl: &Path,
    registrar: bool,
    calls: Option<SocketAddr>,
) -> String {
    let base = render_config(ip, port, modules, reply);
    let mut loads = vec!["tm", "ctl", "kex"];
    let mut params = vec![format!(
        "modparam(\"ctl\", \"binrpc\", \"unix:{}\")",
        ctl.display()
    )];
    let mut routes = String::new();
    let mut serves = vec!["OPTIONS"];
    if let Some(uas) = calls {
        loads.extend(["rr", "siputils", "dialog"]);
        params.push("modparam(\"dialog\", \"dlg_match_mode\", 1)".to_owned());
        let du = format!("$du = \"sip:{uas}\";");
        routes.push_str(&format!(
            "\x20   if (has_totag()) {{\n\
             \x20       if (!loose_route()) {{ dlg_manage(); }}\n\
             \x20       {du}\n\
             \x20       t_relay();\n\
             \x20       exit;\n\
             \x20   }}\n\
             \x20   if (is_method(\"CANCEL\")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}\n\
             \x20   if (is_method(\"ACK\")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}\n\
             \x20   if (is_method(\"INVITE\")) {{\n\
             \x20       record_route();\n\
             \x20       dlg_manage();\n\
             \x20       {du}\n\
             \x20       if (!t_relay()) {{ sl_reply_error(); }}\n\
             \x20       exit;\n\
             \x20   }}\n"
        ));
        serves.push("calls");
    }
    if registrar {
        loads.extend(["usrloc", "registrar"]);
        params.push("modparam(\"usrloc\", \"db_mode\", 0)".to_owned());
        routes.push_str(
            "\x20   if (is_method(\"REGISTER\")) {\n\
             \x20       if (!save(\"location\")) { sl_reply_error(); }\n\
             \x20       exit;\n\
             \x20   }\n",
        );
        serves.push("REGISTER");
    }
    let mut head = String::new();
    for m in loads {
        head.push_str(&format!("loadmodule \"{m}.so\"\n"));
    }
    for p in params {
        head.push_str(&p);
        head.push('\n');
    }
    head.push_str("request_route {\n");
    head.push_str(&routes);
    let what = match (registrar, calls.is_some()) {
        (true, true) => "registrar and call server",
        (true, false) => "registrar",
        _ => "call server",
    };
    base.replacen(
        "# fspbx-ha-lab SIP OPTIONS responder",
        &format!("# fspbx-ha-lab SIP OPTIONS responder and {what}"),
        1,
    )
    .replacen("request_route {\n", &head, 1)
    .replacen(
        "\"403\", \"only OPTIONS\"",
        &format!("\"403\", \"only {}\"", serves.join(" and ")),
        1,
    )
}

/// A readiness OPTIONS request (with [`READY_HEADER`]) from `local` to `ip:port`.
fn ready_request(local: SocketAddr, ip: IpAddr, port: u16, transport: &str) -> String {
    let host = SocketAddr::new(ip, port);
    let id = ports::random_hex(16);
    format!(
        "OPTIONS sip:ping@{host} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK{id};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:lab@{local}>;tag={id}\r\n\
         To: <sip:ping@{host}>\r\n\
         Call-ID: {id}@fspbx-ha-lab\r\n\
         CSeq: 1 OPTIONS\r\n\
         {READY_HEADER}: 1\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// One readiness OPTIONS over UDP: true on `SIP/2.0 200`.
fn udp_ready(ip: IpAddr, port: u16) -> bool {
    let bind = SocketAddr::new(ip, 0);
    let Ok(sock) = UdpSocket::bind(bind) else {
        return false;
    };
    let Ok(local) = sock.local_addr() else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    let req = ready_request(local, ip, port, "UDP");
    if sock.send_to(req.as_bytes(), (ip, port)).is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => buf[..n].starts_with(b"SIP/2.0 200"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_listens_on_udp_and_tcp_and_answers_as_asked() {
        let m = Path::new("/m");
        let c = render_config(crate::NODE_B_IP, 25060, m, &OptionsReply::Ok);
        assert!(c.contains("listen=udp:127.0.0.3:25060\n"));
        assert!(c.contains("listen=tcp:127.0.0.3:25060\n"));
        assert!(c.contains("mpath=\"/m/\""));
        assert!(c.contains("sl_send_reply(\"200\", \"OK\");"));
        let c = render_config(
            crate::NODE_A_IP,
            1,
            m,
            &OptionsReply::Status(403, "Forb\"idden".into()),
        );
        assert!(c.contains("sl_send_reply(\"403\", \"Forbidden\");"), "{c}");
        let c = render_config(crate::NODE_A_IP, 1, m, &OptionsReply::Silent);
        assert!(c.contains("drop;"));
        assert!(c.contains("is_present_hf(\"X-Lab-Ready\")"));
        assert!(!c.contains("registrar"));
    }

    #[test]
    fn the_registrar_variant_saves_register_and_keeps_options() {
        let c = render_registrar_config(
            crate::NODE_B_IP,
            25060,
            Path::new("/m"),
            &OptionsReply::Ok,
            Path::new("/d/run/kamailio_ctl"),
        );
        for needle in [
            "loadmodule \"registrar.so\"",
            "loadmodule \"usrloc.so\"",
            "loadmodule \"tm.so\"",
            "modparam(\"ctl\", \"binrpc\", \"unix:/d/run/kamailio_ctl\")",
            "save(\"location\")",
            "sl_send_reply(\"200\", \"OK\");",
            "listen=udp:127.0.0.3:25060\n",
        ] {
            assert!(c.contains(needle), "{needle} missing in:\n{c}");
        }
        // Modules load before the one route block, which handles REGISTER first.
        assert_eq!(c.matches("request_route {").count(), 1);
        assert!(c.find("loadmodule \"kex.so\"") < c.find("request_route {"));
        assert!(c.find("save(\"location\")") < c.find("is_method(\"OPTIONS\")"));
        assert!(!c.contains("dialog"), "no calls asked for");
    }

    #[test]
    fn the_call_server_variant_proxies_and_tracks_dialogs() {
        let uas: SocketAddr = "127.0.0.3:27070".parse().unwrap();
        let c = render_pbx_config(
            crate::NODE_B_IP,
            25060,
            Path::new("/m"),
            &OptionsReply::Ok,
            Path::new("/d/run/kamailio_ctl"),
            true,
            Some(uas),
        );
        for needle in [
            "loadmodule \"dialog.so\"",
            "loadmodule \"rr.so\"",
            "loadmodule \"siputils.so\"",
            "modparam(\"dialog\", \"dlg_match_mode\", 1)",
            "record_route();",
            "dlg_manage();",
            "$du = \"sip:127.0.0.3:27070\";",
            "save(\"location\")",
            "only OPTIONS and calls and REGISTER",
        ] {
            assert!(c.contains(needle), "{needle} missing in:\n{c}");
        }
        assert_eq!(c.matches("request_route {").count(), 1);
        assert_eq!(c.matches("loadmodule \"tm.so\"").count(), 1);
        // In-dialog requests are handled before anything else.
        assert!(c.find("has_totag()") < c.find("is_method(\"INVITE\")"));
    }
}
