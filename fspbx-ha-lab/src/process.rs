//! Processes owned by the lab: started, watched and always stopped by PID.
//!
//! PID 1 on the lab machines is no init: it neither stops our processes nor reaps orphans. So
//! every process is held by a [`Guard`] that stops it when dropped, and "is it running" treats a
//! zombie as gone.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::Error;

/// How long [`Guard::stop`] waits after SIGTERM before it sends SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// How often the lab polls for readiness or exit.
pub const POLL: Duration = Duration::from_millis(50);

/// The signal that asks a process to stop (SIGKILL follows after the grace period).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum StopSignal {
    /// SIGTERM: the usual polite stop.
    #[default]
    Term,
    /// SIGINT: PostgreSQL's "fast shutdown" (SIGTERM would wait for clients to leave).
    Int,
}

impl StopSignal {
    fn signal(self) -> Signal {
        match self {
            StopSignal::Term => Signal::TERM,
            StopSignal::Int => Signal::INT,
        }
    }
}

/// A started process stopped by PID when dropped (SIGTERM, then SIGKILL after a grace period),
/// also when a test panics.
#[derive(Debug)]
pub struct Guard {
    pid: u32,
    name: String,
    /// Set when we spawned it ourselves: lets us reap it.
    child: Option<Child>,
    /// Signal the whole process group (the process leads its own group).
    group: bool,
    /// The kernel's start time of the process (guards against PID reuse).
    start_time: Option<u64>,
    grace: Duration,
    stop_signal: StopSignal,
    /// Stopped or detached: nothing left to do on drop.
    done: bool,
}

impl Guard {
    /// Spawns `cmd` with stdout+stderr appended to `log`, in its own process group.
    pub fn spawn(mut cmd: Command, name: &str, log: &Path) -> Result<Guard, Error> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io("open log", log, e))?;
        let err = out.try_clone().map_err(|e| Error::io("open log", log, e))?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            name: name.to_owned(),
            program: PathBuf::from(cmd.get_program()),
            source,
        })?;
        let pid = child.id();
        tracing::debug!(name, pid, "spawned");
        Ok(Guard {
            pid,
            name: name.to_owned(),
            child: Some(child),
            group: true,
            start_time: start_time(pid),
            grace: DEFAULT_GRACE,
            stop_signal: StopSignal::Term,
            done: false,
        })
    }

    /// Adopts an already running process (e.g. one that daemonized and wrote a pidfile).
    pub fn adopt(pid: u32, name: &str) -> Guard {
        Guard {
            pid,
            name: name.to_owned(),
            child: None,
            group: false,
            start_time: start_time(pid),
            grace: DEFAULT_GRACE,
            stop_signal: StopSignal::Term,
            done: false,
        }
    }

    /// Adopts an already running process that leads its own process group (like a postmaster
    /// started by `pg_ctl`): SIGKILL goes to the whole group, so its children go down with it.
    pub fn adopt_group(pid: u32, name: &str) -> Guard {
        let mut g = Guard::adopt(pid, name);
        g.group = true;
        g
    }

    /// Sets how long [`Guard::stop`] waits between SIGTERM and SIGKILL.
    pub fn with_grace(mut self, grace: Duration) -> Guard {
        self.grace = grace;
        self
    }

    /// Sets the signal [`Guard::stop`] sends first (default SIGTERM).
    pub fn with_stop_signal(mut self, signal: StopSignal) -> Guard {
        self.stop_signal = signal;
        self
    }

    /// Whether SIGKILL goes to the whole process group the process leads.
    pub fn signals_group(&self) -> bool {
        self.group
    }

    /// The signal [`Guard::stop`] sends first.
    pub fn stop_signal(&self) -> StopSignal {
        self.stop_signal
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Our name for the process.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel's start time of the process (clock ticks since boot), if it was readable.
    pub fn start_time(&self) -> Option<u64> {
        self.start_time
    }

    /// Sends SIGKILL now (fault tests) and reaps it.
    pub fn kill_hard(&mut self) {
        if self.done {
            return;
        }
        self.signal(Signal::KILL);
        self.wait_gone(Duration::from_secs(10));
        self.done = true;
    }

    /// Stops it now (SIGTERM, grace, SIGKILL); idempotent.
    ///
    /// The first signal (SIGTERM unless [`Guard::with_stop_signal`] chose another) goes to the
    /// process itself, so it can shut down its children in order; SIGKILL goes to the whole
    /// process group when the process leads one (spawned guards, [`Guard::adopt_group`]).
    pub fn stop(&mut self) {
        if self.done {
            return;
        }
        if self.is_running() {
            self.signal(self.stop_signal.signal());
            if !self.wait_gone(self.grace) {
                tracing::warn!(name = %self.name, pid = self.pid, "no exit after SIGTERM, sending SIGKILL");
                self.signal(Signal::KILL);
                self.wait_gone(Duration::from_secs(10));
            }
        }
        // Leftovers of the group (children that outlived their leader) go too.
        if self.group
            && let Some(pid) = to_pid(self.pid)
        {
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        }
        self.reap();
        self.done = true;
    }

    /// Leaves it running after the guard is gone (the demo's `up`), returns its PID.
    pub fn detach(mut self) -> u32 {
        self.done = true;
        // Dropping a std Child neither kills nor waits.
        self.child = None;
        self.pid
    }

    /// Whether the process still runs (a zombie counts as gone).
    pub fn is_running(&self) -> bool {
        pid_alive(self.pid, self.start_time)
    }

    fn signal(&self, sig: Signal) {
        let Some(pid) = to_pid(self.pid) else { return };
        let to_group = self.group && sig == Signal::KILL;
        if !to_group && !pid_alive(self.pid, self.start_time) {
            return;
        }
        let r = if to_group {
            rustix::process::kill_process_group(pid, sig)
                .or_else(|_| rustix::process::kill_process(pid, sig))
        } else {
            rustix::process::kill_process(pid, sig)
        };
        if let Err(e) = r {
            tracing::debug!(name = %self.name, pid = self.pid, error = %e, "signal not delivered");
        }
    }

    fn reap(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.try_wait();
        }
    }

    /// Polls until the process is gone; true when it went within `timeout`.
    fn wait_gone(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    return true;
                }
            } else if !pid_alive(self.pid, self.start_time) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A restartable daemon's process: the [`Guard`] of its current run (none before the first
/// start and after [`Daemon::take`] or [`Daemon::detach`]) and whether its process group is
/// paused. Components (sshd, Kamailio, Syncthing, PostgreSQL) hold one and keep only what is
/// specific to them; dropping it stops the process (resumed first when paused).
#[derive(Debug, Default)]
pub struct Daemon {
    guard: Option<Guard>,
    paused: bool,
}

impl Daemon {
    /// No process yet.
    pub fn new() -> Daemon {
        Daemon::default()
    }

    /// Holds `guard` as the current run (not paused) and returns it; a previous guard is
    /// dropped, which stops its process.
    pub fn run(&mut self, guard: Guard) -> &Guard {
        self.paused = false;
        self.guard.insert(guard)
    }

    /// The guard of the current run, if any.
    pub fn guard(&self) -> Option<&Guard> {
        self.guard.as_ref()
    }

    /// Mutable access to the guard of the current run (e.g. to change its grace period).
    pub fn guard_mut(&mut self) -> Option<&mut Guard> {
        self.guard.as_mut()
    }

    /// Takes the guard out (the caller stops it its own way); not paused afterwards.
    pub fn take(&mut self) -> Option<Guard> {
        self.paused = false;
        self.guard.take()
    }

    /// PID of the process, if it runs (a paused process runs; a zombie does not).
    pub fn pid(&self) -> Option<u32> {
        self.guard
            .as_ref()
            .filter(|g| g.is_running())
            .map(Guard::pid)
    }

    /// Whether the process runs.
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// SIGSTOPs the whole process group the process leads: nothing answers, sockets stay
    /// bound. Undo with [`Daemon::resume`].
    pub fn pause(&mut self) {
        if self.signal_group(Signal::STOP) {
            self.paused = true;
        }
    }

    /// SIGCONTs the process group after [`Daemon::pause`].
    pub fn resume(&mut self) {
        self.signal_group(Signal::CONT);
        self.paused = false;
    }

    /// Whether it is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn signal_group(&self, sig: Signal) -> bool {
        let Some(pid) = self.pid().and_then(to_pid) else {
            return false;
        };
        rustix::process::kill_process_group(pid, sig).is_ok()
    }

    /// Stops it ([`Guard::stop`]; resumed first if paused, so it can shut down in order);
    /// idempotent.
    pub fn stop(&mut self) {
        if self.paused {
            self.resume();
        }
        if let Some(g) = self.guard.as_mut() {
            g.stop();
        }
    }

    /// SIGKILLs it now ([`Guard::kill_hard`]; node-loss tests).
    pub fn kill_hard(&mut self) {
        if let Some(g) = self.guard.as_mut() {
            g.kill_hard();
        }
        self.paused = false;
    }

    /// Leaves it running (resumed if paused) after this value is dropped; returns its PID.
    pub fn detach(&mut self) -> Option<u32> {
        if self.paused {
            self.resume();
        }
        self.guard.take().map(Guard::detach)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `ready` until it returns true; fails early (naming `what`, `program` and the tail of
/// `log`) when the process of `guard` exits, and with [`Error::NotReady`] after `timeout`.
pub fn wait_started(
    guard: &Guard,
    what: &str,
    program: &str,
    log: &Path,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            tracing::debug!(what, pid = guard.pid(), "ready");
            return Ok(());
        }
        if !guard.is_running() {
            return Err(Error::CommandFailed {
                what: what.to_owned(),
                program: PathBuf::from(program),
                status: "exited during startup".to_owned(),
                stderr: log_tail(log, 20),
            });
        }
        if Instant::now() >= deadline {
            return Err(Error::NotReady {
                what: what.to_owned(),
                timeout,
                log_tail: Some(log_tail(log, 20)),
            });
        }
        std::thread::sleep(POLL);
    }
}

fn to_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid).ok().and_then(Pid::from_raw)
}

/// Reads `/proc/PID/stat`: (state, start time).
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state come ppid .. ; starttime is field 22 overall, the 20th after the state.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// The kernel's start time of `pid` (clock ticks since boot), if it runs.
pub fn start_time(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|(_, t)| t)
}

/// Whether `pid` runs and is not a zombie; with `start_time`, also that it is still the same
/// process (not a reused PID).
pub fn pid_alive(pid: u32, start_time: Option<u64>) -> bool {
    match proc_stat(pid) {
        Some((state, t)) => state != 'Z' && state != 'X' && start_time.is_none_or(|s| s == t),
        None => false,
    }
}

/// Stops a process known only by PID (e.g. from lab.json): `first` signal, up to `grace`, then
/// SIGKILL (to the whole process group it leads with `group`). Returns whether it was running
/// when called; `start_time` guards against a reused PID.
pub fn stop_pid(
    pid: u32,
    start_time: Option<u64>,
    group: bool,
    first: StopSignal,
    grace: Duration,
) -> bool {
    if !pid_alive(pid, start_time) {
        return false;
    }
    let mut g = if group {
        Guard::adopt_group(pid, "pid")
    } else {
        Guard::adopt(pid, "pid")
    };
    g.start_time = start_time;
    g.grace = grace;
    g.stop_signal = first;
    g.stop();
    true
}

/// Polls `ready` every 50 ms until it returns true or `timeout` passes; the error names `what`
/// and, if given, the tail of `log`.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    log: Option<&Path>,
    mut ready: impl FnMut() -> bool,
) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::NotReady {
                what: what.to_owned(),
                timeout,
                log_tail: log.map(|l| log_tail(l, 20)),
            });
        }
        std::thread::sleep(POLL);
    }
}

/// The last `lines` lines of a log file (empty when it cannot be read).
pub fn log_tail(log: &Path, lines: usize) -> String {
    let Ok(mut f) = std::fs::File::open(log) else {
        return String::new();
    };
    // Logs can grow large: read only the last 16 KiB.
    if let Ok(len) = f.metadata().map(|m| m.len()) {
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    tail_lines(&String::from_utf8_lossy(&buf), lines)
}

fn tail_lines(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a one-shot command to completion (stdin closed) and fails with its stderr when it exits
/// non-zero. `what` names it in the error ("initdb for pg-a").
pub fn run(mut cmd: Command, what: &str) -> Result<Output, Error> {
    let program = PathBuf::from(cmd.get_program());
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            name: what.to_owned(),
            program: program.clone(),
            source,
        })?;
    check_output(out, what, program)
}

/// Like [`run`], but feeds `input` on stdin (used for SQL and secrets: never on argv).
pub fn run_with_input(mut cmd: Command, what: &str, input: &[u8]) -> Result<Output, Error> {
    use std::io::Write;
    let program = PathBuf::from(cmd.get_program());
    let spawn_err = |source| Error::Spawn {
        name: what.to_owned(),
        program: program.clone(),
        source,
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    let mut stdin = child.stdin.take();
    let input = input.to_vec();
    // Write on a thread so a child that talks a lot before reading cannot deadlock us.
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&input);
        }
    });
    let out = child.wait_with_output().map_err(spawn_err)?;
    let _ = writer.join();
    check_output(out, what, program)
}

fn check_output(out: Output, what: &str, program: PathBuf) -> Result<Output, Error> {
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&out.stdout)
    } else {
        stderr
    };
    Err(Error::CommandFailed {
        what: what.to_owned(),
        program,
        status: out.status.to_string(),
        stderr: tail_lines(text.trim(), 20),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper(dir: &Path, name: &str) -> Guard {
        let mut cmd = Command::new("sleep");
        cmd.arg("300");
        Guard::spawn(cmd, name, &dir.join(format!("{name}.log"))).unwrap()
    }

    /// Whether `pid` is (paused) or is not (resumed) in state `T` within 2 s: signals arrive
    /// asynchronously.
    fn becomes_stopped(pid: u32, stopped: bool) -> bool {
        wait_until("state", Duration::from_secs(2), None, || {
            proc_stat(pid).is_some_and(|(s, _)| (s == 'T') == stopped)
        })
        .is_ok()
    }

    #[test]
    fn daemon_pauses_resumes_and_stops_its_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Daemon::new();
        assert_eq!(d.pid(), None);
        d.pause();
        assert!(!d.is_paused(), "nothing to pause before a run");
        let pid = d.run(sleeper(dir.path(), "daemon")).pid();
        assert_eq!(d.pid(), Some(pid));
        d.pause();
        assert!(d.is_paused());
        assert!(becomes_stopped(pid, true), "SIGSTOP reached the process");
        assert!(d.is_running(), "a paused process still runs");
        d.resume();
        assert!(!d.is_paused());
        assert!(becomes_stopped(pid, false), "SIGCONT reached the process");
        d.pause();
        d.stop();
        assert!(!d.is_paused(), "stop resumes first");
        assert!(!d.is_running());
        assert!(!pid_alive(pid, None));
        assert_eq!(d.guard().map(Guard::pid), Some(pid), "the guard stays");
    }

    #[test]
    fn daemon_kill_hard_drop_and_detach() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Daemon::new();
        let pid = d.run(sleeper(dir.path(), "killed")).pid();
        d.pause();
        d.kill_hard();
        assert!(!d.is_paused());
        assert!(!pid_alive(pid, None));

        let pid = d.run(sleeper(dir.path(), "dropped")).pid();
        d.pause();
        drop(d);
        assert!(!pid_alive(pid, None), "dropping the daemon stops it");

        let mut d = Daemon::new();
        let pid = d.run(sleeper(dir.path(), "detached")).pid();
        let start = start_time(pid);
        d.pause();
        assert_eq!(d.detach(), Some(pid));
        assert!(d.guard().is_none());
        drop(d);
        assert!(
            pid_alive(pid, start),
            "a detached process outlives the daemon"
        );
        assert!(becomes_stopped(pid, false), "detach resumes it");
        assert!(stop_pid(pid, start, true, StopSignal::Term, DEFAULT_GRACE));
        assert!(!pid_alive(pid, None));
    }

    #[test]
    fn wait_started_tells_exit_from_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let g = sleeper(dir.path(), "waiter");
        assert!(wait_started(&g, "ok", "sleep", &log, Duration::from_secs(1), || true).is_ok());
        let e = wait_started(
            &g,
            "slow",
            "sleep",
            &log,
            Duration::from_millis(100),
            || false,
        );
        assert!(
            matches!(e, Err(Error::NotReady { ref what, .. }) if what == "slow"),
            "{e:?}"
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo boom >&2"]);
        let gone = Guard::spawn(cmd, "exits", &log).unwrap();
        let e = wait_started(&gone, "exits", "sh", &log, Duration::from_secs(10), || {
            false
        });
        match e {
            Err(Error::CommandFailed { what, stderr, .. }) => {
                assert_eq!(what, "exits");
                assert!(stderr.contains("boom"), "{stderr}");
            }
            other => panic!("expected CommandFailed, got {other:?}"),
        }
    }
}
