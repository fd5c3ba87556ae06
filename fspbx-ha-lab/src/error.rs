//! The lab's error type.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while starting or stopping lab components.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What we tried to do ("create", "read", "write", "chown", ...).
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A program could not be started at all.
    #[error("cannot start {name} ({}): {source}", program.display())]
    Spawn {
        /// Our name for the process ("pg-a", "sshd-b", "initdb", ...).
        name: String,
        /// The program that was run.
        program: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A one-shot command ran but failed.
    #[error("{what} failed ({}, {status}): {stderr}", program.display())]
    CommandFailed {
        /// What the command was for ("initdb for pg-a", ...).
        what: String,
        /// The program that was run.
        program: PathBuf,
        /// Its exit status as text.
        status: String,
        /// The tail of its stderr (and stdout when stderr was empty).
        stderr: String,
    },
    /// A component did not become ready in time.
    #[error("{what} not ready after {timeout:?}{}", log_tail_suffix(log_tail))]
    NotReady {
        /// What we waited for.
        what: String,
        /// How long we waited.
        timeout: Duration,
        /// The last lines of the component's log, if it has one.
        log_tail: Option<String>,
    },
    /// An installed component is missing.
    #[error(
        "{component} not found at {}: run scripts/install.sh (or point {env} at it)",
        path.display()
    )]
    MissingComponent {
        /// Which component ("PostgreSQL 17 binaries", "sshd", ...).
        component: String,
        /// Where it was looked for.
        path: PathBuf,
        /// The environment variable that overrides the location.
        env: String,
    },
    /// The unprivileged lab user does not exist.
    #[error("user {user} does not exist: run scripts/install.sh (it creates it)")]
    MissingUser {
        /// The user's name.
        user: String,
    },
    /// A lab directory cannot be used by the unprivileged lab user.
    #[error(
        "{} is not reachable by user {user} (a parent directory lacks o+x, e.g. /root): \
         choose a directory under /tmp",
        path.display()
    )]
    Unreachable {
        /// The directory.
        path: PathBuf,
        /// The unprivileged user.
        user: String,
    },
    /// A component printed or wrote something we could not understand.
    #[error("unexpected {what}: {found:?}")]
    Unexpected {
        /// What we tried to read ("postmaster.pid", "server_version_num", ...).
        what: String,
        /// What we found instead.
        found: String,
    },
    /// A lab already runs in this directory.
    #[error("a lab already runs in {} (see its lab.json): run `fspbx-ha-lab down --dir {}` first", dir.display(), dir.display())]
    LabRunning {
        /// The lab directory.
        dir: PathBuf,
    },
    /// A lab.json file could not be read or written.
    #[error("lab file {}: {source}", path.display())]
    LabFile {
        /// The path of lab.json.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

fn log_tail_suffix(tail: &Option<String>) -> String {
    match tail {
        Some(t) if !t.trim().is_empty() => format!("; last log lines:\n{t}"),
        _ => String::new(),
    }
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
