//! The controller's audit log: one JSON object per line for every decision, action and
//! outcome, appended (never rewritten) so it survives restarts and can be tailed.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When it was written (RFC 3339, UTC).
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
    /// What happened: `start`, `stop`, `record`, `round`, `health`, `decision`, `flip`,
    /// `flip_failed`, `fence`, `notify`, `notify_failed`, `preconditions`, `switchover`,
    /// `registrations`, `calls`.
    pub event: String,
    /// The node concerned, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `info`, `warning` or `critical`.
    pub level: String,
    /// A sentence an operator reads.
    pub message: String,
    /// Structured details (the action, the flip report, probe observations…).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl AuditRecord {
    /// A record written now.
    pub fn new(event: &str, level: &str, message: impl Into<String>) -> AuditRecord {
        AuditRecord {
            at: SystemTime::now(),
            event: event.to_owned(),
            node: None,
            level: level.to_owned(),
            message: message.into(),
            detail: serde_json::Value::Null,
        }
    }

    /// With the node concerned.
    pub fn node(mut self, node: impl Into<String>) -> AuditRecord {
        self.node = Some(node.into());
        self
    }

    /// With structured details (anything serializable; serialization failures leave none).
    pub fn detail(mut self, detail: impl Serialize) -> AuditRecord {
        self.detail = serde_json::to_value(detail).unwrap_or(serde_json::Value::Null);
        self
    }
}

/// An append-only JSON-lines file shared by the controller's tasks.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl AuditLog {
    /// Opens (creating it and its directory if needed) the log at `path` for appending.
    pub fn open(path: impl AsRef<Path>) -> Result<AuditLog> {
        let path = path.as_ref().to_path_buf();
        let err = |source| Error::FailoverIo {
            action: "open the audit log",
            target: path.display().to_string(),
            key: "failover.audit_log",
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(err)?;
        Ok(AuditLog {
            path,
            file: Mutex::new(file),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line (a single `write` call, so concurrent writers never
    /// interleave inside a line). Failing to write is logged, not fatal: the controller keeps
    /// deciding even on a full disk.
    pub fn write(&self, record: &AuditRecord) {
        let mut line = match serde_json::to_string(record) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize an audit record");
                return;
            }
        };
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.write_all(line.as_bytes()) {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the audit log");
        }
        match record.level.as_str() {
            "critical" => tracing::error!(event = %record.event, "{}", record.message),
            "warning" => tracing::warn!(event = %record.event, "{}", record.message),
            _ => tracing::info!(event = %record.event, "{}", record.message),
        }
    }
}

/// The last `n` records of the audit log at `path` (lines that are not records are skipped;
/// a missing file has none).
pub fn read_tail(path: impl AsRef<Path>, n: usize) -> Result<Vec<AuditRecord>> {
    let path = path.as_ref();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => {
            return Err(Error::FailoverIo {
                action: "read the audit log",
                target: path.display().to_string(),
                key: "failover.audit_log",
                source,
            });
        }
    };
    let mut tail = std::collections::VecDeque::with_capacity(n.min(4096));
    for line in std::io::BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        if let Ok(r) = serde_json::from_str::<AuditRecord>(&line) {
            if tail.len() == n {
                tail.pop_front();
            }
            if n > 0 {
                tail.push_back(r);
            }
        }
    }
    Ok(tail.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_appended_as_lines_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for i in 0..5 {
            log.write(
                &AuditRecord::new("decision", "info", format!("m{i}"))
                    .node("a")
                    .detail(serde_json::json!({ "i": i })),
            );
        }
        drop(log);
        // Reopening appends.
        AuditLog::open(&path)
            .unwrap()
            .write(&AuditRecord::new("stop", "warning", "bye"));
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"not json\n")
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 7);
        let tail = read_tail(&path, 3).unwrap();
        let msgs: Vec<_> = tail.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(msgs, ["m3", "m4", "bye"]);
        assert_eq!(tail[0].detail["i"], 3);
        assert_eq!(tail[0].node.as_deref(), Some("a"));
        assert!(read_tail(dir.path().join("none"), 3).unwrap().is_empty());
    }
}
