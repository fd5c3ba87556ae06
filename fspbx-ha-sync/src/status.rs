//! Sync status of a pair: per folder and direction, computed from both daemons' answers.
//!
//! Direction X→Y of a folder is complete when the folder is shared both ways, the devices are
//! connected, X's view of Y says Y has everything (`db/completion?device=Y` 100 %, nothing
//! needed), Y itself needs nothing (`db/completion`, `db/status`), both daemons agree on the
//! global state (files, directories, bytes), both sides are `idle` with no folder error and no
//! failed items. The computation ([`compute`]) is pure.
//!
//! The global-state agreement matters: Syncthing 1.19 reports a peer that never announced an
//! index for the folder (an empty folder) as 100 % complete, and the peer itself needs nothing
//! until the new index arrives, so right after new files are scanned both completions can say
//! 100 % while the files are only on one node.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::DeviceId;
use crate::model::{Completion, Connections, FileError, FolderConfig, FolderStatus};
use crate::plan::PlannedFolder;

/// At most this many failed items are kept per direction (the count is always exact).
pub const MAX_FAILED_ITEMS: usize = 20;

/// The status of the pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncStatus {
    /// Node A and node B.
    pub nodes: [NodeSyncStatus; 2],
    /// Every configured folder.
    pub folders: Vec<FolderSyncStatus>,
}

/// One daemon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeSyncStatus {
    /// Our name for the node.
    pub node: String,
    /// Its device ID, when it answered.
    pub device_id: Option<String>,
    /// Its Syncthing version, when it answered.
    pub version: Option<String>,
    /// Why it could not be read (down, wrong key, ...).
    pub error: Option<String>,
    /// Whether it has a connection up to the peer.
    pub peer_connected: bool,
    /// The peer's address on that connection.
    pub peer_address: Option<String>,
}

/// One folder, both directions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FolderSyncStatus {
    /// Folder id.
    pub id: String,
    /// Path.
    pub path: String,
    /// A→B and B→A.
    pub directions: [DirectionStatus; 2],
}

/// One folder in one direction (what the receiver still lacks of the sender's data).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectionStatus {
    /// Sending node.
    pub from: String,
    /// Receiving node.
    pub to: String,
    /// The folder is configured on both nodes and shared with each other.
    pub shared: bool,
    /// The devices are connected.
    pub connected: bool,
    /// Percent complete (the lower of the sender's view and the receiver's own).
    pub completion: f64,
    /// Bytes the receiver still needs.
    pub need_bytes: u64,
    /// Items the receiver still needs.
    pub need_items: u64,
    /// Deletions the receiver still needs to carry out.
    pub need_deletes: u64,
    /// The sender's folder state.
    pub sender_state: String,
    /// The receiver's folder state.
    pub receiver_state: String,
    /// The receiver's folder error (path missing, ...).
    pub receiver_error: Option<String>,
    /// Both daemons have the same global state of the folder (files, directories, bytes).
    pub global_agrees: bool,
    /// Items the receiver failed to sync (at most [`MAX_FAILED_ITEMS`]).
    pub failed_items: Vec<FileError>,
    /// How many items failed.
    pub failed_count: usize,
    /// Everything above says "in sync".
    pub complete: bool,
}

impl SyncStatus {
    /// Every folder complete in both directions and both daemons readable.
    pub fn is_complete(&self) -> bool {
        self.nodes.iter().all(|n| n.error.is_none())
            && self
                .folders
                .iter()
                .all(|f| f.directions.iter().all(|d| d.complete))
    }

    /// Both daemons are connected to each other.
    pub fn connected(&self) -> bool {
        self.nodes.iter().all(|n| n.peer_connected)
    }

    /// The lowest completion over all folders and directions (100 with no folders).
    pub fn completion(&self) -> f64 {
        self.folders
            .iter()
            .flat_map(|f| f.directions.iter().map(|d| d.completion))
            .fold(100.0, f64::min)
    }

    /// Total bytes still needed over all folders and directions.
    pub fn need_bytes(&self) -> u64 {
        self.folders
            .iter()
            .flat_map(|f| f.directions.iter().map(|d| d.need_bytes))
            .sum()
    }

    /// Total items still needed over all folders and directions.
    pub fn need_items(&self) -> u64 {
        self.folders
            .iter()
            .flat_map(|f| f.directions.iter().map(|d| d.need_items))
            .sum()
    }

    /// What is not complete, one clause per problem (empty when complete).
    pub fn pending(&self) -> String {
        let mut out = Vec::new();
        for n in &self.nodes {
            if let Some(e) = &n.error {
                out.push(format!("node {}: {e}", n.node));
            } else if !n.peer_connected {
                out.push(format!("node {} not connected to its peer", n.node));
            }
        }
        for f in &self.folders {
            for d in f.directions.iter().filter(|d| !d.complete) {
                out.push(format!("{} {}", f.path, d.describe()));
            }
        }
        out.join("; ")
    }

    /// One line: `complete` or overall completion and what is pending.
    pub fn summary(&self) -> String {
        if self.is_complete() {
            format!(
                "in sync: {} folder(s) complete both ways",
                self.folders.len()
            )
        } else {
            format!(
                "{:.1}% ({} item(s), {} byte(s) to go): {}",
                self.completion(),
                self.need_items(),
                self.need_bytes(),
                self.pending()
            )
        }
    }
}

impl DirectionStatus {
    /// `a->b 97.5% (3 items, 1024 bytes, b syncing)`.
    pub fn describe(&self) -> String {
        let mut notes = Vec::new();
        if !self.shared {
            notes.push("not shared both ways".to_owned());
        }
        if !self.connected {
            notes.push("not connected".to_owned());
        }
        if self.need_items > 0 || self.need_bytes > 0 {
            notes.push(format!(
                "{} item(s), {} byte(s)",
                self.need_items, self.need_bytes
            ));
        }
        if self.need_deletes > 0 {
            notes.push(format!("{} deletion(s)", self.need_deletes));
        }
        if self.receiver_state != "idle" {
            notes.push(format!("{} {}", self.to, or_unknown(&self.receiver_state)));
        }
        if self.sender_state != "idle" {
            notes.push(format!("{} {}", self.from, or_unknown(&self.sender_state)));
        }
        if let Some(e) = &self.receiver_error {
            notes.push(format!("{}: {e}", self.to));
        }
        if !self.global_agrees {
            notes.push("global state differs".to_owned());
        }
        if self.failed_count > 0 {
            notes.push(format!("{} failed item(s)", self.failed_count));
        }
        format!(
            "{}->{} {:.1}% ({})",
            self.from,
            self.to,
            self.completion,
            notes.join(", ")
        )
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "unknown" } else { s }
}

/// What one daemon said, as collected for [`compute`].
#[derive(Debug, Clone, Default)]
pub struct NodeSnapshot {
    /// Its device ID.
    pub device_id: Option<DeviceId>,
    /// Its version string.
    pub version: String,
    /// `/rest/system/connections`.
    pub connections: Connections,
    /// Configured folders.
    pub folders: Vec<FolderConfig>,
    /// Per folder id: what it said about the folder.
    pub per_folder: BTreeMap<String, FolderSnapshot>,
}

/// One daemon's answers about one folder.
#[derive(Debug, Clone, Default)]
pub struct FolderSnapshot {
    /// `db/status`.
    pub status: FolderStatus,
    /// `db/completion` of the local device.
    pub local: Completion,
    /// `db/completion` of the peer device, as this daemon sees it.
    pub peer_view: Completion,
    /// `folder/errors`.
    pub errors: Vec<FileError>,
}

/// Computes the status from both daemons' snapshots (`Err` = the daemon could not be read).
pub fn compute(
    names: [&str; 2],
    folders: &[PlannedFolder],
    snaps: [&Result<NodeSnapshot, String>; 2],
) -> SyncStatus {
    let ids: [Option<&DeviceId>; 2] =
        [0, 1].map(|i| snaps[i].as_ref().ok().and_then(|s| s.device_id.as_ref()));
    let nodes = [0, 1].map(|i| {
        let p = 1 - i;
        match snaps[i] {
            Err(e) => NodeSyncStatus {
                node: names[i].to_owned(),
                device_id: None,
                version: None,
                error: Some(e.clone()),
                peer_connected: false,
                peer_address: None,
            },
            Ok(s) => {
                let conn = ids[p].and_then(|id| s.connections.connections.get(id.as_str()));
                NodeSyncStatus {
                    node: names[i].to_owned(),
                    device_id: s.device_id.as_ref().map(ToString::to_string),
                    version: Some(s.version.clone()),
                    error: None,
                    peer_connected: conn.is_some_and(|c| c.connected),
                    peer_address: conn.filter(|c| c.connected).map(|c| c.address.clone()),
                }
            }
        }
    });
    let folders = folders
        .iter()
        .map(|f| FolderSyncStatus {
            id: f.id.clone(),
            path: f.path.clone(),
            directions: [
                direction(names, snaps, ids, &nodes, f, 0),
                direction(names, snaps, ids, &nodes, f, 1),
            ],
        })
        .collect();
    SyncStatus { nodes, folders }
}

fn direction(
    names: [&str; 2],
    snaps: [&Result<NodeSnapshot, String>; 2],
    ids: [Option<&DeviceId>; 2],
    nodes: &[NodeSyncStatus; 2],
    f: &PlannedFolder,
    from: usize,
) -> DirectionStatus {
    let to = 1 - from;
    let shared_on = |i: usize| -> bool {
        let (Ok(s), Some(peer)) = (snaps[i], ids[1 - i]) else {
            return false;
        };
        s.folders
            .iter()
            .any(|c| c.id() == f.id && c.device_ids().iter().any(|d| d == peer.as_str()))
    };
    let shared = shared_on(0) && shared_on(1);
    let connected = nodes[0].peer_connected || nodes[1].peer_connected;
    let sender = snaps[from]
        .as_ref()
        .ok()
        .and_then(|s| s.per_folder.get(&f.id));
    let receiver = snaps[to]
        .as_ref()
        .ok()
        .and_then(|s| s.per_folder.get(&f.id));
    let mut d = DirectionStatus {
        from: names[from].to_owned(),
        to: names[to].to_owned(),
        shared,
        connected,
        completion: 0.0,
        need_bytes: 0,
        need_items: 0,
        need_deletes: 0,
        sender_state: sender.map(|s| s.status.state.clone()).unwrap_or_default(),
        receiver_state: receiver.map(|s| s.status.state.clone()).unwrap_or_default(),
        receiver_error: receiver
            .map(|s| s.status.error.clone())
            .filter(|e| !e.is_empty()),
        failed_items: receiver
            .map(|s| s.errors.iter().take(MAX_FAILED_ITEMS).cloned().collect())
            .unwrap_or_default(),
        failed_count: receiver.map_or(0, |s| s.errors.len()),
        global_agrees: false,
        complete: false,
    };
    if let (Some(s), Some(r)) = (sender, receiver) {
        let remote = &s.peer_view;
        d.completion = remote.completion.min(r.local.completion).clamp(0.0, 100.0);
        d.need_bytes = remote
            .need_bytes
            .max(r.local.need_bytes)
            .max(r.status.need_bytes);
        d.need_items = remote
            .need_items
            .max(r.local.need_items)
            .max(r.status.need_total_items);
        d.need_deletes = remote
            .need_deletes
            .max(r.local.need_deletes)
            .max(r.status.need_deletes);
        let remote_valid = remote.remote_state.as_deref().is_none_or(|s| s == "valid");
        let (g1, g2) = (&s.status, &r.status);
        d.global_agrees = g1.global_files == g2.global_files
            && g1.global_directories == g2.global_directories
            && g1.global_bytes == g2.global_bytes;
        d.complete = shared
            && connected
            && remote_valid
            && d.global_agrees
            && d.completion >= 100.0
            && d.need_bytes == 0
            && d.need_items == 0
            && d.need_deletes == 0
            && d.sender_state == "idle"
            && d.receiver_state == "idle"
            && d.receiver_error.is_none()
            && d.failed_count == 0;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Connection;
    use serde_json::json;

    const A: &str = "R574UVK-JBUXSSJ-YV5HM7X-36H5G6G-S6VLDNQ-J4ORHDN-HSWBF4W-FLNMTAG";

    fn b() -> DeviceId {
        DeviceId::parse("MFZWI3DBONSGYYLTMRWGC43ENRQXGZDMMFZWI3DBONSGYYLTMRWG", "t").unwrap()
    }

    fn snap(me: DeviceId, peer: &DeviceId, connected: bool, fs: FolderSnapshot) -> NodeSnapshot {
        let mut connections = Connections::default();
        connections.connections.insert(
            peer.to_string(),
            Connection {
                connected,
                address: "127.0.0.9:1".into(),
                ..Default::default()
            },
        );
        NodeSnapshot {
            device_id: Some(me.clone()),
            version: "v1.19.2".into(),
            connections,
            folders: vec![FolderConfig(
                json!({"id": "f", "path": "/p", "devices": [{"deviceID": me.as_str()}, {"deviceID": peer.as_str()}]}),
            )],
            per_folder: [("f".to_owned(), fs)].into(),
        }
    }

    fn done() -> FolderSnapshot {
        let c = Completion {
            completion: 100.0,
            remote_state: Some("valid".into()),
            ..Default::default()
        };
        FolderSnapshot {
            status: FolderStatus {
                state: "idle".into(),
                ..Default::default()
            },
            local: c.clone(),
            peer_view: c,
            errors: vec![],
        }
    }

    fn folders() -> Vec<PlannedFolder> {
        vec![PlannedFolder {
            id: "f".into(),
            path: "/p".into(),
            label: "p".into(),
            id_source: "config".into(),
            rescan_interval_s: 60,
        }]
    }

    #[test]
    fn complete_when_everything_agrees() {
        let a: DeviceId = A.parse().unwrap();
        let s = [
            Ok(snap(a.clone(), &b(), true, done())),
            Ok(snap(b(), &a, true, done())),
        ];
        let st = compute(["a", "b"], &folders(), [&s[0], &s[1]]);
        assert!(st.is_complete(), "{}", st.summary());
        assert!(st.connected());
        assert_eq!(st.completion(), 100.0);
    }

    #[test]
    fn sender_view_of_a_lagging_receiver_makes_it_incomplete() {
        let a: DeviceId = A.parse().unwrap();
        let mut lag = done();
        lag.peer_view = Completion {
            completion: 40.0,
            need_bytes: 600,
            need_items: 3,
            remote_state: Some("valid".into()),
            ..Default::default()
        };
        let s = [
            Ok(snap(a.clone(), &b(), true, lag)),
            Ok(snap(b(), &a, true, done())),
        ];
        let st = compute(["a", "b"], &folders(), [&s[0], &s[1]]);
        assert!(!st.is_complete());
        let d = &st.folders[0].directions[0];
        assert_eq!(
            (
                d.from.as_str(),
                d.to.as_str(),
                d.completion,
                d.need_items,
                d.need_bytes
            ),
            ("a", "b", 40.0, 3, 600)
        );
        assert!(st.folders[0].directions[1].complete, "b->a is fine");
        assert!(
            st.pending().contains("a->b 40.0% (3 item(s), 600 byte(s))"),
            "{}",
            st.pending()
        );
    }

    #[test]
    fn a_peer_without_index_reported_complete_is_caught_by_the_global_state() {
        // Syncthing 1.19 right after A scanned new files: A's view of B (which never announced
        // an index) says 100 %, B needs nothing yet, but their global states differ.
        let a: DeviceId = A.parse().unwrap();
        let mut scanned = done();
        scanned.status.global_files = 101;
        scanned.status.global_bytes = 7_477_632;
        let s = [
            Ok(snap(a.clone(), &b(), true, scanned)),
            Ok(snap(b(), &a, true, done())),
        ];
        let st = compute(["a", "b"], &folders(), [&s[0], &s[1]]);
        assert!(!st.is_complete());
        assert!(!st.folders[0].directions[0].global_agrees);
        assert!(
            st.pending().contains("global state differs"),
            "{}",
            st.pending()
        );
    }

    #[test]
    fn down_node_or_error_state_is_incomplete_and_named() {
        let a: DeviceId = A.parse().unwrap();
        let s = [
            Ok(snap(a.clone(), &b(), false, done())),
            Err("cannot reach Syncthing".to_owned()),
        ];
        let st = compute(["a", "b"], &folders(), [&s[0], &s[1]]);
        assert!(!st.is_complete());
        assert!(
            st.pending()
                .starts_with("node a not connected to its peer; node b: cannot reach"),
            "{}",
            st.pending()
        );
        let mut bad = done();
        bad.status.state = "error".into();
        bad.status.error = "folder path missing".into();
        let s = [
            Ok(snap(a.clone(), &b(), true, done())),
            Ok(snap(b(), &a, true, bad)),
        ];
        let st = compute(["a", "b"], &folders(), [&s[0], &s[1]]);
        assert_eq!(
            st.folders[0].directions[0].receiver_error.as_deref(),
            Some("folder path missing")
        );
        assert!(!st.is_complete());
    }
}
