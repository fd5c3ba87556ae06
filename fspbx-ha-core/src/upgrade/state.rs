//! The state file: which steps of which plan are done, and where a run failed. Written
//! atomically (temporary file in the same directory, fsync, rename) after every step.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::{ClusterConfig, DEFAULT_STATE_FILE};
use crate::{Error, Result};

/// Format version of the state file.
pub const STATE_VERSION: u32 = 1;

/// A step recorded done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoneStep {
    /// Step id.
    pub id: String,
    /// Node name (or `both`).
    pub node: String,
    /// When it finished (Unix seconds).
    pub finished_at: u64,
    /// How long it took, in seconds.
    pub elapsed_s: f64,
}

/// Where a run stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedStep {
    /// Step id.
    pub id: String,
    /// Node name (or `both`).
    pub node: String,
    /// The command as configured, for command steps.
    pub command: Option<String>,
    /// `exit status 1`, `timed out after 600 s`, or the failed check's findings.
    pub status: String,
    /// The last lines of the command's stderr (stdout when stderr was empty).
    pub stderr_tail: String,
    /// When (Unix seconds).
    pub at: u64,
}

/// The whole state of one upgrade run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpgradeState {
    /// [`STATE_VERSION`].
    pub version: u32,
    /// The plan's fingerprint.
    pub fingerprint: String,
    /// The node migrated first.
    pub first: String,
    /// When the run started (Unix seconds).
    pub started_at: u64,
    /// When the file was last written.
    pub updated_at: u64,
    /// Every step passed.
    pub finished: bool,
    /// Steps done, in order.
    pub done: Vec<DoneStep>,
    /// The last failure, cleared when that step passes.
    pub failed: Option<FailedStep>,
    /// User tables of the first node before its migration (`schema.table`), to tell the tables
    /// the migration added.
    #[serde(default)]
    pub tables_before: Option<Vec<String>>,
    /// The first node's last migration batch before its migration (`upgrade.migrations_table`).
    #[serde(default)]
    pub batch_before: Option<i64>,
    /// The first node's migrate started no new batch: delete-last-batch and migrate on the
    /// second node are not needed (and would undo a real batch there).
    #[serde(default)]
    pub no_new_batch: bool,
}

/// Unix seconds now.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl UpgradeState {
    /// A fresh state for a plan.
    pub fn new(fingerprint: &str, first: &str) -> UpgradeState {
        UpgradeState {
            version: STATE_VERSION,
            fingerprint: fingerprint.to_string(),
            first: first.to_string(),
            started_at: now(),
            updated_at: now(),
            finished: false,
            done: Vec::new(),
            failed: None,
            tables_before: None,
            batch_before: None,
            no_new_batch: false,
        }
    }

    /// Whether step `id` is recorded done.
    pub fn is_done(&self, id: &str) -> bool {
        self.done.iter().any(|d| d.id == id)
    }

    /// Ids of the steps done.
    pub fn done_ids(&self) -> Vec<String> {
        self.done.iter().map(|d| d.id.clone()).collect()
    }

    /// Reads the state file; `None` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<UpgradeState>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::UpgradeState {
                    path: path.to_path_buf(),
                    reason: format!("cannot read it: {e}"),
                    fix: "check the file's permissions (upgrade.state_file)".into(),
                });
            }
        };
        let state: UpgradeState = serde_json::from_str(&text).map_err(|e| Error::UpgradeState {
            path: path.to_path_buf(),
            reason: format!("not an upgrade state file: {e}"),
            fix: "move it away, or pass --restart to replace it".into(),
        })?;
        if state.version != STATE_VERSION {
            return Err(Error::UpgradeState {
                path: path.to_path_buf(),
                reason: format!(
                    "format version {} (this tool writes {STATE_VERSION})",
                    state.version
                ),
                fix: "finish the run with the tool that started it, or pass --restart".into(),
            });
        }
        Ok(Some(state))
    }

    /// Writes the state atomically: a temporary file in the same directory, flushed to disk,
    /// renamed over `path`.
    pub fn save(&mut self, path: &Path) -> Result<()> {
        self.updated_at = now();
        let io = |e: std::io::Error| Error::UpgradeState {
            path: path.to_path_buf(),
            reason: format!("cannot write it: {e}"),
            fix: "check that its directory is writable (upgrade.state_file)".into(),
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::UpgradeState {
            path: path.to_path_buf(),
            reason: format!("cannot encode it: {e}"),
            fix: "report this as a bug".into(),
        })?;
        let file_name = path.file_name().map_or_else(
            || "upgrade-state".into(),
            |n| n.to_string_lossy().into_owned(),
        );
        let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
        let written = (|| {
            std::fs::create_dir_all(dir)?;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            // The rename itself reaches the disk with the directory.
            std::fs::File::open(dir)?.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
        Ok(())
    }
}

/// How a run starts, given what the state file holds (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// From the first step, with a new state.
    Fresh,
    /// Continuing the recorded run; its done steps are skipped.
    Resume,
}

/// Decides whether to resume: a recorded, unfinished run of the same plan is resumed; a
/// finished one, or one that did nothing yet, is replaced; `restart` always starts over; an
/// unfinished run of another plan is refused.
pub fn decide(
    state: Option<&UpgradeState>,
    fingerprint: &str,
    restart: bool,
    path: &Path,
) -> Result<Start> {
    match state {
        _ if restart => Ok(Start::Fresh),
        None => Ok(Start::Fresh),
        Some(s) if s.finished || s.done.is_empty() => Ok(Start::Fresh),
        Some(s) if s.fingerprint == fingerprint => Ok(Start::Resume),
        Some(s) => Err(Error::UpgradeStateMismatch {
            path: path.to_path_buf(),
            recorded_first: s.first.clone(),
            done: s.done.len(),
        }),
    }
}

/// The state file of a configuration: `upgrade.state_file` (relative to the configuration
/// file's directory), or `upgrade-state.json` next to the configuration file (the working
/// directory when there is no file).
pub fn state_file_for(config: &ClusterConfig, config_path: Option<&Path>) -> PathBuf {
    let base = config_path
        .and_then(Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    match &config.upgrade.state_file {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => base.join(p),
        None => base.join(DEFAULT_STATE_FILE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(id: &str) -> DoneStep {
        DoneStep {
            id: id.into(),
            node: "a".into(),
            finished_at: 1,
            elapsed_s: 0.1,
        }
    }

    #[test]
    fn resume_only_an_unfinished_run_of_the_same_plan() {
        let p = Path::new("/tmp/state.json");
        assert_eq!(decide(None, "f1", false, p).unwrap(), Start::Fresh);
        let mut s = UpgradeState::new("f1", "a");
        // Nothing done yet: nothing to protect.
        assert_eq!(decide(Some(&s), "f2", false, p).unwrap(), Start::Fresh);
        s.done.push(done("precheck.replication"));
        assert_eq!(decide(Some(&s), "f1", false, p).unwrap(), Start::Resume);
        let Err(Error::UpgradeStateMismatch {
            recorded_first,
            done,
            ..
        }) = decide(Some(&s), "f2", false, p)
        else {
            panic!("another plan must be refused")
        };
        assert_eq!((recorded_first.as_str(), done), ("a", 1));
        assert_eq!(decide(Some(&s), "f2", true, p).unwrap(), Start::Fresh);
        s.finished = true;
        assert_eq!(decide(Some(&s), "f1", false, p).unwrap(), Start::Fresh);
    }

    #[test]
    fn saves_atomically_and_loads_back() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("state");
        let path = dir.join("state.json");
        assert!(UpgradeState::load(&path).unwrap().is_none());
        let mut s = UpgradeState::new("f1", "a");
        s.done.push(done("code.a"));
        s.save(&path).unwrap();
        s.done.push(done("code.b"));
        s.save(&path).unwrap();
        let back = UpgradeState::load(&path).unwrap().unwrap();
        assert_eq!(back.done_ids(), ["code.a", "code.b"]);
        // Only the state file is left: no temporary files.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::write(&path, "{not json").unwrap();
        let e = UpgradeState::load(&path).unwrap_err();
        assert!(e.to_string().contains("--restart"), "{e}");
    }

    #[test]
    fn state_file_defaults_next_to_the_config() {
        let mut c = ClusterConfig::from_toml_str(&ClusterConfig::template()).unwrap();
        let cfg = Path::new("/etc/fspbx-ha/cluster.toml");
        assert_eq!(
            state_file_for(&c, Some(cfg)),
            Path::new("/etc/fspbx-ha/upgrade-state.json")
        );
        c.upgrade.state_file = Some("run/u.json".into());
        assert_eq!(
            state_file_for(&c, Some(cfg)),
            Path::new("/etc/fspbx-ha/run/u.json")
        );
        c.upgrade.state_file = Some("/var/lib/x.json".into());
        assert_eq!(state_file_for(&c, None), Path::new("/var/lib/x.json"));
    }
}
