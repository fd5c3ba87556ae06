//! Where the lab finds installed components and the unprivileged user, and how it prepares
//! directories for that user.
//!
//! Every location has a default matching `scripts/install.sh` and an environment override.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::Error;
use crate::postgres::PgFlavor;

/// The unprivileged user that runs PostgreSQL (it refuses to run as root).
pub const LAB_USER: &str = "fspbxlab";

/// Environment variable overriding where install.sh put the lab's own binaries.
pub const OPT_ENV: &str = "FSPBX_HA_LAB_OPT";

/// Default root of the lab's own binaries (see scripts/install.sh).
pub const OPT_DEFAULT: &str = "/opt/fspbx-ha-lab";

/// Environment variable overriding where servers keep scratch data (see [`scratch_root`]).
pub const SCRATCH_ENV: &str = "FSPBX_HA_LAB_SCRATCH";

/// Where servers keep data that may vanish with the machine: `$FSPBX_HA_LAB_SCRATCH`, else
/// `/dev/shm` when it is a writable directory (tmpfs: `initdb` takes 0.3 s there instead of
/// 1.2 s on this machine's disk), else the system temporary directory.
pub fn scratch_root() -> PathBuf {
    if let Some(d) = std::env::var_os(SCRATCH_ENV) {
        return PathBuf::from(d);
    }
    let shm = Path::new("/dev/shm");
    let writable = std::fs::metadata(shm)
        .map(|m| m.is_dir() && !m.permissions().readonly())
        .unwrap_or(false);
    if writable {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

/// A new, empty temporary directory under [`scratch_root`] named `<prefix><random>`, removed
/// when the returned value is dropped.
pub fn scratch_tempdir(prefix: &str) -> Result<tempfile::TempDir, Error> {
    let root = scratch_root();
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&root)
        .map_err(|e| Error::io("create a directory in", root, e))
}

/// An account on this machine, read from /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabUser {
    /// Login name.
    pub name: String,
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
}

/// Whether this process runs as root (then servers that refuse root run as [`LAB_USER`]).
pub fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Looks up [`LAB_USER`] in /etc/passwd.
pub fn lab_user() -> Result<LabUser, Error> {
    let passwd =
        std::fs::read_to_string("/etc/passwd").map_err(|e| Error::io("read", "/etc/passwd", e))?;
    passwd
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 4 && f[0] == LAB_USER).then(|| {
                Some(LabUser {
                    name: f[0].to_owned(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                })
            })?
        })
        .next()
        .ok_or_else(|| Error::MissingUser {
            user: LAB_USER.to_owned(),
        })
}

/// The user servers that refuse root should run as: [`LAB_USER`] when we are root, else none
/// (they run as ourselves).
pub fn server_user() -> Result<Option<LabUser>, Error> {
    if running_as_root() {
        lab_user().map(Some)
    } else {
        Ok(None)
    }
}

/// Root of the lab's own binaries: `$FSPBX_HA_LAB_OPT` or /opt/fspbx-ha-lab.
pub fn opt_dir() -> PathBuf {
    std::env::var_os(OPT_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(OPT_DEFAULT))
}

/// The `bin` directory of a PostgreSQL flavor: the flavor's environment variable
/// ([`PgFlavor::env_var`]) if set, else its default location. Fails naming install.sh when
/// `postgres` is not in it.
pub fn pg_bin_dir(flavor: PgFlavor) -> Result<PathBuf, Error> {
    let dir = match std::env::var_os(flavor.env_var()) {
        Some(d) => PathBuf::from(d),
        None => match flavor {
            PgFlavor::V17 => opt_dir().join("pg-17.11.0/bin"),
            PgFlavor::V18 => opt_dir().join("pg-18.6.0/bin"),
            PgFlavor::Debian15 => PathBuf::from("/usr/lib/postgresql/15/bin"),
        },
    };
    for tool in ["postgres", "initdb", "pg_ctl", "psql"] {
        if !dir.join(tool).is_file() {
            return Err(Error::MissingComponent {
                component: format!("PostgreSQL {} ({tool})", flavor.major()),
                path: dir.join(tool),
                env: flavor.env_var().to_owned(),
            });
        }
    }
    Ok(dir)
}

/// An installed program: `$env` if set, else `default`; fails naming install.sh when missing.
pub fn program(component: &str, env: &str, default: &Path) -> Result<PathBuf, Error> {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| default.to_owned());
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingComponent {
            component: component.to_owned(),
            path,
            env: env.to_owned(),
        })
    }
}

/// Creates `dir` (and parents) and, when `user` is given, hands it to that user with mode 0700.
/// Fails with [`Error::Unreachable`] when the user could not reach it through its parents.
pub fn prepare_dir(dir: &Path, user: Option<&LabUser>) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    if let Some(user) = user {
        std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))
            .map_err(|e| Error::io("chown", dir, e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("chmod", dir, e))?;
        ensure_reachable(dir, user)?;
    }
    Ok(())
}

/// Checks that `user` can traverse every parent of `dir` (others or owner execute bit).
pub fn ensure_reachable(dir: &Path, user: &LabUser) -> Result<(), Error> {
    let abs = std::path::absolute(dir).map_err(|e| Error::io("resolve", dir, e))?;
    for parent in abs.ancestors().skip(1) {
        let meta = std::fs::metadata(parent).map_err(|e| Error::io("stat", parent, e))?;
        let mode = meta.mode();
        let ok = mode & 0o001 != 0
            || (meta.uid() == user.uid && mode & 0o100 != 0)
            || (meta.gid() == user.gid && mode & 0o010 != 0);
        if !ok {
            return Err(Error::Unreachable {
                path: dir.to_owned(),
                user: user.name.clone(),
            });
        }
    }
    Ok(())
}

/// Writes a secret to `path` with mode 0600 (created with that mode, never readable by others
/// in between), owned by `user` when given.
pub fn write_secret_file(path: &Path, contents: &str, user: Option<&LabUser>) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| Error::io("write", path, e))?;
    if let Some(user) = user {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .map_err(|e| Error::io("chown", path, e))?;
    }
    Ok(())
}

/// Writes a plain file owned by `user` when given.
pub fn write_file(path: &Path, contents: &str, user: Option<&LabUser>) -> Result<(), Error> {
    std::fs::write(path, contents).map_err(|e| Error::io("write", path, e))?;
    if let Some(user) = user {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .map_err(|e| Error::io("chown", path, e))?;
    }
    Ok(())
}
