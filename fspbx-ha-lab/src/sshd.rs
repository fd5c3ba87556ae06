//! A real OpenSSH server for the lab, and client keys for it.
//!
//! [`Sshd::start`] writes a host key, an `authorized_keys` file and an `sshd_config` into a
//! directory, checks the config with `sshd -t`, runs `/usr/sbin/sshd -D -e` under a
//! [`Guard`] and waits until the port answers with an `SSH-2.0` banner. Logins are as root with
//! public keys only.
//!
//! ```no_run
//! use fspbx_ha_lab::sshd::{ClientKey, KeyKind, Sshd, SshdOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let key = ClientKey::generate(dir.path(), KeyKind::Ed25519, None).unwrap();
//! let sshd = Sshd::start(SshdOptions {
//!     authorized_keys: vec![key.public_line().to_owned()],
//!     ..SshdOptions::default()
//! })
//! .unwrap();
//! println!("ssh -i {} -p {} root@{}", key.private_path().display(), sshd.port(), sshd.ip());
//! ```

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rustix::process::{Pid, Signal};

use crate::process::{self, Daemon, Guard};
use crate::{Error, ports};

/// The OpenSSH server binary (sshd refuses to start from a relative path).
pub const SSHD: &str = "/usr/sbin/sshd";
/// Environment variable overriding [`SSHD`].
pub const SSHD_ENV: &str = "FSPBX_HA_LAB_SSHD";
/// Privilege-separation directory sshd requires.
const PRIVSEP_DIR: &str = "/run/sshd";
/// How long [`Sshd::start`] waits for the banner.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Key algorithm of a generated key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Ed25519.
    Ed25519,
    /// RSA, 3072 bits.
    Rsa,
}

impl KeyKind {
    /// The `ssh-keygen -t` name.
    pub fn keygen_type(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "ed25519",
            KeyKind::Rsa => "rsa",
        }
    }

    /// The algorithm name in public key lines (`ssh-ed25519`, `ssh-rsa`).
    pub fn algorithm(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "ssh-ed25519",
            KeyKind::Rsa => "ssh-rsa",
        }
    }

    fn keygen_args(self) -> &'static [&'static str] {
        match self {
            KeyKind::Ed25519 => &["-t", "ed25519"],
            KeyKind::Rsa => &["-t", "rsa", "-b", "3072"],
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keygen_type())
    }
}

/// A client key pair made with `ssh-keygen` (OpenSSH format), optionally passphrase-protected.
#[derive(Debug, Clone)]
pub struct ClientKey {
    kind: KeyKind,
    private_path: PathBuf,
    public_line: String,
    encrypted: bool,
}

impl ClientKey {
    /// Generates a new key in `dir` (file `id_<kind>_<random>`, mode 0600, plus `.pub`).
    ///
    /// With a passphrase, the key is first written unencrypted and then encrypted with
    /// `ssh-keygen -p`, which reads the new passphrase from its stdin (it runs in a new session
    /// without a controlling terminal, so it cannot prompt): the passphrase never appears on a
    /// command line.
    pub fn generate(
        dir: &Path,
        kind: KeyKind,
        passphrase: Option<&str>,
    ) -> Result<ClientKey, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let private_path = dir.join(format!(
            "id_{}_{}",
            kind.keygen_type(),
            ports::random_hex(8)
        ));
        keygen(&private_path, kind, "fspbx-ha-lab-client")?;
        if let Some(pass) = passphrase {
            let mut cmd = Command::new("setsid");
            cmd.arg("ssh-keygen")
                .args(["-q", "-p", "-P", "", "-f"])
                .arg(&private_path);
            let input = format!("{pass}\n{pass}\n");
            process::run_with_input(
                cmd,
                "ssh-keygen -p (encrypt lab client key)",
                input.as_bytes(),
            )?;
        }
        let pub_path = pub_path(&private_path);
        let public_line = read_trimmed(&pub_path)?;
        Ok(ClientKey {
            kind,
            private_path,
            public_line,
            encrypted: passphrase.is_some(),
        })
    }

    /// The private key file.
    pub fn private_path(&self) -> &Path {
        &self.private_path
    }

    /// The public key line (`ssh-ed25519 AAAA… comment`), for `authorized_keys`.
    pub fn public_line(&self) -> &str {
        &self.public_line
    }

    /// The key algorithm.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Whether the private key file is passphrase-protected.
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// The base64 blob of the public key (second field of [`ClientKey::public_line`]).
    pub fn public_base64(&self) -> &str {
        self.public_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
    }
}

/// How to start an [`Sshd`].
#[derive(Debug, Clone)]
pub struct SshdOptions {
    /// Address to listen on (node A: 127.0.0.2).
    pub ip: IpAddr,
    /// Port; `None` picks a free one.
    pub port: Option<u16>,
    /// Directory for keys, config, pid and log; `None` makes a temporary one removed on drop.
    pub dir: Option<PathBuf>,
    /// Lines of root's `authorized_keys`.
    pub authorized_keys: Vec<String>,
    /// Type of the host key.
    pub host_key_kind: KeyKind,
    /// Extra `sshd_config` lines, appended last (they do not override earlier ones: sshd keeps
    /// the first value of a keyword).
    pub extra_config: Vec<String>,
}

impl Default for SshdOptions {
    fn default() -> Self {
        SshdOptions {
            ip: crate::NODE_A_IP,
            port: None,
            dir: None,
            authorized_keys: Vec::new(),
            host_key_kind: KeyKind::Ed25519,
            extra_config: Vec::new(),
        }
    }
}

/// A running OpenSSH server, stopped by PID on drop.
pub struct Sshd {
    ip: IpAddr,
    port: u16,
    dir: PathBuf,
    host_key_kind: KeyKind,
    host_public: String,
    daemon: Daemon,
    /// Removed after the server is stopped (field order: dropped after `daemon`).
    _temp: Option<tempfile::TempDir>,
}

impl fmt::Debug for Sshd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sshd")
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("dir", &self.dir)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

impl Sshd {
    /// Writes the host key, `authorized_keys` and `sshd_config`, checks the config with
    /// `sshd -t`, starts `sshd -D -e` and waits for its `SSH-2.0` banner.
    pub fn start(opts: SshdOptions) -> Result<Sshd, Error> {
        let sshd = crate::paths::program("OpenSSH server (sshd)", SSHD_ENV, Path::new(SSHD))?;
        let (dir, temp) = match &opts.dir {
            Some(d) => (
                std::path::absolute(d).map_err(|e| Error::io("resolve", d, e))?,
                None,
            ),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("fspbx-ha-sshd-")
                    .tempdir()
                    .map_err(|e| Error::io("create", std::env::temp_dir(), e))?;
                (t.path().to_owned(), Some(t))
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        std::fs::create_dir_all(PRIVSEP_DIR)
            .map_err(|e| Error::io("create directory", PRIVSEP_DIR, e))?;

        let host_key = dir.join(format!("ssh_host_{}_key", opts.host_key_kind.keygen_type()));
        if !host_key.exists() {
            keygen(&host_key, opts.host_key_kind, "fspbx-ha-lab-host")?;
        }
        let host_public = read_trimmed(&pub_path(&host_key))?;

        let mut authorized = opts.authorized_keys.join("\n");
        authorized.push('\n');
        crate::paths::write_secret_file(&dir.join("authorized_keys"), &authorized, None)?;

        let port = opts.port.unwrap_or_else(|| ports::free_port(opts.ip));
        let config = render_config(&dir, &host_key, opts.ip, port, &opts.extra_config);
        let config_path = dir.join("sshd_config");
        crate::paths::write_file(&config_path, &config, None)?;

        let mut check = Command::new(&sshd);
        check.arg("-t").arg("-f").arg(&config_path);
        process::run(check, "sshd -t (check lab sshd_config)")?;

        let mut sshd_server = Sshd {
            ip: opts.ip,
            port,
            dir,
            host_key_kind: opts.host_key_kind,
            host_public,
            daemon: Daemon::new(),
            _temp: temp,
        };
        sshd_server.start_again()?;
        Ok(sshd_server)
    }

    /// Starts the server again with the same files and port (after [`Sshd::stop`] or
    /// [`Sshd::kill_hard`]); does nothing when it runs.
    pub fn start_again(&mut self) -> Result<(), Error> {
        if self.is_running() {
            return Ok(());
        }
        let sshd = crate::paths::program("OpenSSH server (sshd)", SSHD_ENV, Path::new(SSHD))?;
        let mut cmd = Command::new(sshd);
        cmd.arg("-D").arg("-e").arg("-f").arg(self.config_path());
        let name = format!("sshd-{}:{}", self.ip, self.port);
        let guard = Guard::spawn(cmd, &name, &self.log_path())?.with_grace(Duration::from_secs(3));
        let (addr, log) = (self.addr(), self.log_path());
        let guard = self.daemon.run(guard);
        process::wait_started(
            guard,
            &format!("sshd on {addr}"),
            SSHD,
            &log,
            START_TIMEOUT,
            || banner_ok(addr),
        )
    }

    /// Replaces the host key with a freshly generated one and restarts on the same port (as if
    /// the node had been reinstalled): clients holding the old key must refuse it.
    pub fn rotate_host_key(&mut self) -> Result<(), Error> {
        self.stop();
        let host_key = self.host_key_path();
        for p in [host_key.clone(), pub_path(&host_key)] {
            std::fs::remove_file(&p).map_err(|e| Error::io("remove", &p, e))?;
        }
        keygen(&host_key, self.host_key_kind, "fspbx-ha-lab-host")?;
        self.host_public = read_trimmed(&pub_path(&host_key))?;
        self.start_again()
    }

    /// Listening address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ip:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    /// The login user (keys in `authorized_keys` log in as root).
    pub fn user(&self) -> &str {
        "root"
    }

    /// The host public key line as ssh-keygen wrote it (`ssh-ed25519 AAAA… comment`).
    pub fn host_public_key(&self) -> &str {
        &self.host_public
    }

    /// The host key's algorithm and base64 (`ssh-ed25519 AAAA…`, no comment).
    pub fn host_key_type_and_base64(&self) -> String {
        self.host_public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// This server's known_hosts line: `[ip]:port type base64`.
    pub fn known_hosts_line(&self) -> String {
        format!(
            "[{}]:{} {}",
            self.ip,
            self.port,
            self.host_key_type_and_base64()
        )
    }

    /// The directory holding the server's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host private key file.
    pub fn host_key_path(&self) -> PathBuf {
        self.dir
            .join(format!("ssh_host_{}_key", self.host_key_kind.keygen_type()))
    }

    /// The sshd_config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }

    /// sshd's log (stderr with `-e`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }

    /// The `authorized_keys` file of root.
    pub fn authorized_keys_path(&self) -> PathBuf {
        self.dir.join("authorized_keys")
    }

    /// PID of the listening sshd, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// Whether the listening sshd runs.
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// The guard of the listening sshd (absent after [`Sshd::detach`]).
    pub fn guard(&self) -> Option<&Guard> {
        self.daemon.guard()
    }

    /// Mutable access to the guard (e.g. to change its grace period).
    pub fn guard_mut(&mut self) -> Option<&mut Guard> {
        self.daemon.guard_mut()
    }

    /// Stops the server (SIGTERM to its process group, so session processes go too).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// SIGKILLs the server and every connection it serves (node-loss tests). sshd runs each
    /// connection in a process of its own session, outside the listener's process group, so
    /// those are found as the listener's children and killed first.
    pub fn kill_hard(&mut self) {
        self.signal_connections(Signal::KILL);
        self.daemon.kill_hard();
    }

    /// SIGSTOPs every per-connection sshd process: the node hangs (TCP stays up, nothing
    /// answers), which only keepalives detect. Undo with [`Sshd::resume_connections`].
    /// Returns how many processes were paused.
    pub fn pause_connections(&self) -> usize {
        self.signal_connections(Signal::STOP)
    }

    /// SIGCONTs every per-connection sshd process; returns how many.
    pub fn resume_connections(&self) -> usize {
        self.signal_connections(Signal::CONT)
    }

    /// Sends `sig` to every per-connection process; returns how many were signalled.
    fn signal_connections(&self, sig: Signal) -> usize {
        self.connection_pids()
            .into_iter()
            .filter_map(|p| i32::try_from(p).ok().and_then(Pid::from_raw))
            .filter(|pid| rustix::process::kill_process(*pid, sig).is_ok())
            .count()
    }

    /// PIDs of the per-connection sshd processes (children of the listener).
    pub fn connection_pids(&self) -> Vec<u32> {
        self.pid().map(children_of).unwrap_or_default()
    }

    /// Leaves the server running after this value is dropped (the demo); returns its PID. The
    /// directory is kept even if it was temporary.
    pub fn detach(mut self) -> Option<u32> {
        if let Some(t) = self._temp.take() {
            let _ = t.keep();
        }
        self.daemon.detach()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Connections outlive a stopped listener (own sessions): end them too, so no sshd
        // process of a finished test stays behind (paused ones included: KILL works on them).
        self.signal_connections(Signal::KILL);
        self.stop();
    }
}

/// Writes a known_hosts file from `lines` (one entry or comment per line), mode 0644.
pub fn write_known_hosts(path: &Path, lines: &[impl AsRef<str>]) -> Result<(), Error> {
    let mut text = String::new();
    for line in lines {
        text.push_str(line.as_ref());
        text.push('\n');
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io("write", path, e))
}

fn render_config(dir: &Path, host_key: &Path, ip: IpAddr, port: u16, extra: &[String]) -> String {
    let listen = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let mut c = format!(
        "# fspbx-ha-lab sshd\n\
         Port {port}\n\
         ListenAddress {listen}\n\
         HostKey {host_key}\n\
         PidFile {pid}\n\
         AuthorizedKeysFile {authorized}\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         AllowTcpForwarding yes\n\
         ClientAliveInterval 15\n\
         ClientAliveCountMax 3\n\
         PrintMotd no\n\
         LogLevel VERBOSE\n",
        host_key = host_key.display(),
        pid = dir.join("sshd.pid").display(),
        authorized = dir.join("authorized_keys").display(),
    );
    for line in extra {
        c.push_str(line);
        c.push('\n');
    }
    c
}

fn banner_ok(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < 7 {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    buf[..got].starts_with(b"SSH-2.0")
}

/// `ssh-keygen -q -t KIND -N '' -C COMMENT -f PATH`. The empty `-N ''` is not a secret; keys that
/// need a passphrase are encrypted afterwards (see [`ClientKey::generate`]).
fn keygen(path: &Path, kind: KeyKind, comment: &str) -> Result<(), Error> {
    let mut cmd = Command::new("ssh-keygen");
    cmd.arg("-q")
        .args(kind.keygen_args())
        .args(["-N", "", "-C", comment, "-f"])
        .arg(path);
    process::run(cmd, &format!("ssh-keygen -t {kind} for {}", path.display()))?;
    Ok(())
}

/// PIDs of the processes whose parent is `parent` (from /proc).
pub(crate) fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .is_some_and(|stat| {
                    // Fields after the command name (which may hold spaces): state, ppid, ...
                    stat.rfind(')')
                        .and_then(|i| stat[i + 1..].split_whitespace().nth(1)?.parse::<u32>().ok())
                        == Some(parent)
                })
        })
        .collect()
}

fn pub_path(private: &Path) -> PathBuf {
    let mut p = private.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

fn read_trimmed(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| Error::io("read", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_the_required_settings() {
        let c = render_config(
            Path::new("/tmp/x"),
            Path::new("/tmp/x/ssh_host_ed25519_key"),
            crate::NODE_B_IP,
            2222,
            &["MaxSessions 20".to_owned()],
        );
        for line in [
            "Port 2222",
            "ListenAddress 127.0.0.3",
            "HostKey /tmp/x/ssh_host_ed25519_key",
            "PidFile /tmp/x/sshd.pid",
            "AuthorizedKeysFile /tmp/x/authorized_keys",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "AllowTcpForwarding yes",
            "MaxSessions 20",
        ] {
            assert!(c.lines().any(|l| l == line), "missing {line:?} in\n{c}");
        }
    }

    #[test]
    fn pub_path_appends_suffix() {
        assert_eq!(
            pub_path(Path::new("/a/id_ed25519")),
            PathBuf::from("/a/id_ed25519.pub")
        );
    }
}
