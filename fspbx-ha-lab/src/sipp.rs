//! SIPp (Debian package `sip-tester`) as the lab's real call endpoints: a UAS answering every
//! call ([`SippUas`], its built-in `uas` scenario) and a UAC placing calls ([`SippCalls`], its
//! built-in `uac` scenario: INVITE, ACK, hold, BYE). Both run in the foreground under a
//! [`Guard`] (their own process group), stopped by PID on drop.
//!
//! In the failover tests the UAS sits behind a node's Kamailio
//! ([`crate::kamailio::KamailioOptions::calls`]), which proxies and counts the dialogs: the
//! calls are really served by the node the floating name points at.
//!
//! ```no_run
//! use std::time::Duration;
//! use fspbx_ha_lab::sipp::{SippCalls, SippUas};
//! let uas = SippUas::start(fspbx_ha_lab::NODE_B_IP, None).unwrap();
//! // ... a Kamailio proxying calls to uas.addr() on 127.0.0.3:25060 ...
//! let calls = SippCalls::place(
//!     "127.0.0.3:25060".parse().unwrap(),
//!     "127.0.0.1".parse().unwrap(),
//!     3,
//!     Duration::from_secs(20),
//! )
//! .unwrap();
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{self, Guard};
use crate::{Error, paths, ports};

/// The SIPp binary.
pub const SIPP: &str = "/usr/bin/sipp";
/// Environment variable overriding [`SIPP`].
pub const SIPP_ENV: &str = "FSPBX_HA_LAB_SIPP";
/// How long [`SippUas::start`] waits for its port to be bound.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

fn binary() -> Result<PathBuf, Error> {
    paths::program("SIPp", SIPP_ENV, Path::new(SIPP))
}

/// A SIPp process with its own scratch directory (log), stopped by PID on drop.
struct Running {
    guard: Guard,
    log: PathBuf,
    /// Removed after the process is stopped (field order: dropped after `guard`).
    _temp: tempfile::TempDir,
}

impl Running {
    fn spawn(args: &[String], name: &str) -> Result<Running, Error> {
        let temp = paths::scratch_tempdir("fspbx-ha-sipp-")?;
        let log = temp.path().join("sipp.log");
        let mut cmd = Command::new(binary()?);
        // `-nostdin`: no keyboard control (it runs without a terminal).
        cmd.args(args).arg("-nostdin").current_dir(temp.path());
        let guard = Guard::spawn(cmd, name, &log)?.with_grace(Duration::from_secs(2));
        Ok(Running {
            guard,
            log,
            _temp: temp,
        })
    }
}

/// A SIPp UAS answering every INVITE with `200 OK` (and every BYE).
pub struct SippUas {
    addr: SocketAddr,
    run: Running,
}

impl fmt::Debug for SippUas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SippUas")
            .field("addr", &self.addr)
            .field("pid", &self.run.guard.pid())
            .finish_non_exhaustive()
    }
}

impl SippUas {
    /// Starts a UAS on `ip:port` (UDP; `None` picks a free port) and waits until the port is
    /// bound.
    pub fn start(ip: IpAddr, port: Option<u16>) -> Result<SippUas, Error> {
        let port = port.unwrap_or_else(|| ports::free_port(ip));
        let addr = SocketAddr::new(ip, port);
        let args =
            ["-sn", "uas", "-i", &ip.to_string(), "-p", &port.to_string()].map(str::to_owned);
        let run = Running::spawn(&args, &format!("sipp-uas-{addr}"))?;
        // Bound by SIPp when our own bind of the same address fails.
        process::wait_started(
            &run.guard,
            &format!("sipp uas on {addr}"),
            SIPP,
            &run.log,
            START_TIMEOUT,
            || UdpSocket::bind(addr).is_err(),
        )?;
        Ok(SippUas { addr, run })
    }

    /// Where it answers (UDP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PID, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.run.guard.is_running().then(|| self.run.guard.pid())
    }

    /// Stops it.
    pub fn stop(&mut self) {
        self.run.guard.stop();
    }
}

/// A SIPp UAC placing calls through a proxy; it exits after its last call ended.
pub struct SippCalls {
    to: SocketAddr,
    calls: u32,
    run: Running,
}

impl fmt::Debug for SippCalls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SippCalls")
            .field("to", &self.to)
            .field("calls", &self.calls)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}

impl SippCalls {
    /// Places `calls` calls, all at once (10 per second, at most `calls` in progress), to
    /// `to` (a proxy, e.g. a node's Kamailio) from `local` (a free UDP port there); each call
    /// is held for `hold`, then hung up with BYE.
    pub fn place(to: SocketAddr, local: IpAddr, calls: u32, hold: Duration) -> Result<Self, Error> {
        let port = ports::free_port(local);
        let calls_s = calls.max(1).to_string();
        let args = [
            "-sn".to_owned(),
            "uac".to_owned(),
            "-i".to_owned(),
            local.to_string(),
            "-p".to_owned(),
            port.to_string(),
            "-m".to_owned(),
            calls_s.clone(),
            "-l".to_owned(),
            calls_s,
            "-r".to_owned(),
            "10".to_owned(),
            "-d".to_owned(),
            hold.as_millis().to_string(),
            to.to_string(),
        ];
        let run = Running::spawn(&args, &format!("sipp-uac-{to}"))?;
        Ok(SippCalls { to, calls, run })
    }

    /// Whether calls are still being placed or held.
    pub fn is_running(&self) -> bool {
        self.run.guard.is_running()
    }

    /// Its log's last lines (SIPp's own account of the calls).
    pub fn log_tail(&self) -> String {
        process::log_tail(&self.run.log, 30)
    }

    /// Hangs up nothing: stops the UAC at once (calls in progress stay up on the server until
    /// they time out).
    pub fn stop(&mut self) {
        self.run.guard.stop();
    }
}
