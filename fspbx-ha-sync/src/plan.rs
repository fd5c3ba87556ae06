//! The pairing plan: a pure function from what both daemons hold and what we want to the
//! ordered REST changes that make them a pair. No I/O here; [`crate::SyncPair`] observes,
//! plans and applies.
//!
//! Wanted state, per node N with peer P:
//! - P is a configured device on N, with P's sync address (`tcp://ip:port`) among its
//!   addresses, the configured name, not paused;
//! - every folder exists on N with its path, type `sendreceive`, shared with N and P, the
//!   configured rescan interval, the filesystem watcher on, not paused;
//! - with hardening: global and local discovery, relays and NAT traversal off.
//!
//! Existing entries are patched field by field (only what differs), never replaced, so settings
//! the operator made and fields newer Syncthing versions have survive. A folder already shared
//! under another id at the same path is adopted under that id.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::folder_id::{folder_label, normalize_path, stable_folder_id};
use crate::model::{DeviceConfig, FolderConfig, str_list};
use crate::{DeviceId, Error, Result};

/// The default Syncthing sync port, used when a daemon listens on `default`.
pub const DEFAULT_SYNC_PORT: u16 = 22000;

/// What we want of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeIntent {
    /// Our name for the node (in messages).
    pub node: String,
    /// The device name its peer records for it.
    pub device_name: String,
    /// The address the peer uses to reach this node (replaces an unspecified listen host).
    pub peer_address: Option<IpAddr>,
    /// An explicit sync address `tcp://host:port` the peer dials; overrides the derivation from
    /// the daemon's listen addresses.
    pub sync_address: Option<String>,
    /// A directory prepended to every folder path on this node (a tree mounted elsewhere, e.g.
    /// in a container; the lab's two daemons on one machine). `None` on a normal node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
}

impl NodeIntent {
    /// A node called `node` whose device is named `device_name`, reached by its peer at
    /// `peer_address` (no explicit sync address, no path prefix).
    pub fn new(
        node: impl Into<String>,
        device_name: impl Into<String>,
        peer_address: Option<IpAddr>,
    ) -> Self {
        NodeIntent {
            node: node.into(),
            device_name: device_name.into(),
            peer_address,
            sync_address: None,
            path_prefix: None,
        }
    }

    /// Where folder `path` lives on this node (the path with [`NodeIntent::path_prefix`]).
    pub fn local_path(&self, path: &str) -> String {
        match self.path_prefix.as_deref().map(normalize_path) {
            Some(prefix) if prefix != "/" && !prefix.is_empty() => {
                format!("{prefix}{}", normalize_path(path))
            }
            _ => normalize_path(path).to_owned(),
        }
    }
}

/// One folder to mirror.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderIntent {
    /// Absolute path, the same on both nodes.
    pub path: String,
    /// Folder id; `None` adopts an existing folder at the same path or uses
    /// [`stable_folder_id`].
    pub id: Option<String>,
    /// Full rescan interval in seconds.
    pub rescan_interval_s: u32,
}

impl FolderIntent {
    /// FS PBX's folder set with its documented rescan intervals.
    pub fn fspbx_defaults() -> Vec<FolderIntent> {
        [
            ("/usr/share/freeswitch/sounds/music", 3600),
            ("/var/cache/fusionpbx", 300),
            ("/var/lib/freeswitch/recordings", 3600),
            ("/var/lib/freeswitch/storage", 3600),
            ("/var/www/fspbx/public/resources/templates/provision", 3600),
        ]
        .into_iter()
        .map(|(p, s)| FolderIntent {
            path: p.into(),
            id: None,
            rescan_interval_s: s,
        })
        .collect()
    }
}

/// What we want of the pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairIntent {
    /// Node A and node B.
    pub nodes: [NodeIntent; 2],
    /// The folders to mirror.
    pub folders: Vec<FolderIntent>,
    /// Turn off global/local discovery, relays and NAT traversal (a private link).
    pub hardening: bool,
}

/// What one daemon holds now (read by [`crate::SyncPair::observe`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The daemon's own device ID.
    pub device_id: DeviceId,
    /// Configured devices (including itself).
    pub devices: Vec<DeviceConfig>,
    /// Configured folders.
    pub folders: Vec<FolderConfig>,
    /// `/rest/config/options`.
    pub options: Value,
    /// The daemon's template for new folders, if it has the route.
    pub folder_template: Option<FolderConfig>,
    /// The daemon's template for new devices, if it has the route.
    pub device_template: Option<DeviceConfig>,
}

impl Observed {
    fn device(&self, id: &DeviceId) -> Option<&DeviceConfig> {
        self.devices.iter().find(|d| d.device_id() == id.as_str())
    }
    fn folder(&self, id: &str) -> Option<&FolderConfig> {
        self.folders.iter().find(|f| f.id() == id)
    }
}

/// A folder as the plan resolved it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedFolder {
    /// Folder id on both nodes.
    pub id: String,
    /// Path on both nodes.
    pub path: String,
    /// Label for new folders.
    pub label: String,
    /// Where the id came from: `config`, `adopted from node X`, or `derived from the path`.
    pub id_source: String,
    /// Rescan interval.
    pub rescan_interval_s: u32,
}

/// One change to one daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Index of the node changed (0 = A, 1 = B).
    pub node_index: usize,
    /// Its name.
    pub node: String,
    /// The change.
    pub action: Action,
    /// Why it is needed.
    pub why: String,
}

/// A REST change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// `PUT /rest/config/devices/{id}` with a whole new device.
    AddDevice {
        /// The device added.
        device_id: DeviceId,
        /// The object sent.
        config: DeviceConfig,
    },
    /// `PATCH /rest/config/devices/{id}`.
    UpdateDevice {
        /// The device changed.
        device_id: DeviceId,
        /// The fields sent.
        patch: Value,
    },
    /// `PUT /rest/config/folders/{id}` with a whole new folder.
    AddFolder {
        /// The folder id.
        folder_id: String,
        /// Its path.
        path: String,
        /// The object sent.
        config: FolderConfig,
    },
    /// `PATCH /rest/config/folders/{id}`.
    UpdateFolder {
        /// The folder id.
        folder_id: String,
        /// The fields sent.
        patch: Value,
    },
    /// `PATCH /rest/config/options`.
    UpdateOptions {
        /// The fields sent.
        patch: Value,
    },
}

impl Step {
    /// One line for humans: `b: add device XXXXXXX (lab-a) at tcp://127.0.0.2:22000`.
    pub fn summary(&self) -> String {
        let what = match &self.action {
            Action::AddDevice { device_id, config } => format!(
                "add device {} ({}) at {}",
                device_id.short(),
                config.name(),
                config.addresses().join(", ")
            ),
            Action::UpdateDevice { device_id, patch } => {
                format!("update device {}: {}", device_id.short(), compact(patch))
            }
            Action::AddFolder {
                folder_id, path, ..
            } => format!("add folder {folder_id} ({path})"),
            Action::UpdateFolder { folder_id, patch } => {
                format!("update folder {folder_id}: {}", compact(patch))
            }
            Action::UpdateOptions { patch } => format!("update options: {}", compact(patch)),
        };
        format!("{}: {what}", self.node)
    }
}

fn compact(v: &Value) -> String {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| v.to_string())
}

/// The ordered changes that make two daemons a pair (empty when they already are).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncPlan {
    /// Device IDs of A and B.
    pub device_ids: [DeviceId; 2],
    /// The address each node's peer dials to reach it (A's, B's).
    pub sync_addresses: [String; 2],
    /// The folders, with resolved ids.
    pub folders: Vec<PlannedFolder>,
    /// The changes: devices first, then folders, then options.
    pub steps: Vec<Step>,
}

impl SyncPlan {
    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Resolves every folder's id: the configured id, else the id an existing folder at the same
/// path has on either node, else [`stable_folder_id`]. Fails when the nodes disagree or an id
/// is taken by another path. `configured` is each node's folder list (`None`: unreadable).
pub fn resolve_folders(
    intent: &PairIntent,
    configured: [Option<&[FolderConfig]>; 2],
) -> Result<Vec<PlannedFolder>> {
    let at = |i: usize, path: &str| {
        configured[i].and_then(|fs| {
            fs.iter()
                .find(|f| normalize_path(f.path()) == normalize_path(path))
        })
    };
    let by_id = |i: usize, id: &str| configured[i].and_then(|fs| fs.iter().find(|f| f.id() == id));
    let names = [&intent.nodes[0].node, &intent.nodes[1].node];
    let mut out: Vec<PlannedFolder> = Vec::new();
    for f in &intent.folders {
        let path = normalize_path(&f.path).to_owned();
        let (id, id_source) = match &f.id {
            Some(id) => (id.clone(), "config".to_owned()),
            None => {
                let found: Vec<(usize, String)> = (0..2)
                    .filter_map(|i| {
                        let local = intent.nodes[i].local_path(&path);
                        at(i, &local).map(|fc| (i, fc.id().to_owned()))
                    })
                    .collect();
                match found.as_slice() {
                    [] => (stable_folder_id(&path), "derived from the path".to_owned()),
                    [(i, id)] => (id.clone(), format!("adopted from node {}", names[*i])),
                    [(_, a), (_, b)] if a == b => (a.clone(), "adopted from both nodes".to_owned()),
                    [(_, a), (_, b), ..] => {
                        return Err(Error::FolderIdMismatch {
                            path,
                            node_a: names[0].clone(),
                            id_a: a.clone(),
                            node_b: names[1].clone(),
                            id_b: b.clone(),
                        });
                    }
                }
            }
        };
        for (i, node) in intent.nodes.iter().enumerate() {
            let local = node.local_path(&path);
            if let Some(existing) = by_id(i, &id)
                && normalize_path(existing.path()) != local
            {
                return Err(Error::FolderIdConflict {
                    node: node.node.clone(),
                    folder: id,
                    existing_path: existing.path().to_owned(),
                    wanted_path: local,
                });
            }
        }
        if let Some(dup) = out.iter().find(|p| p.id == id || p.path == path) {
            return Err(Error::FolderIdConflict {
                node: names[0].clone(),
                folder: id,
                existing_path: dup.path.clone(),
                wanted_path: path,
            });
        }
        out.push(PlannedFolder {
            label: folder_label(&path),
            id,
            path,
            id_source,
            rescan_interval_s: f.rescan_interval_s,
        });
    }
    Ok(out)
}

/// The address node `intent` should be dialled at, from its daemon's listen addresses.
pub fn sync_address(intent: &NodeIntent, options: &Value) -> Result<String> {
    if let Some(explicit) = &intent.sync_address {
        return Ok(explicit.clone());
    }
    let listen = str_list(options, "listenAddresses");
    let no_address = || Error::NoSyncAddress {
        node: intent.node.clone(),
        listen: listen.clone(),
    };
    for l in &listen {
        let (host, port) = if l == "default" {
            (None, DEFAULT_SYNC_PORT)
        } else if let Some(rest) = l
            .strip_prefix("tcp://")
            .or_else(|| l.strip_prefix("tcp4://"))
            .or_else(|| l.strip_prefix("tcp6://"))
        {
            let rest = rest.split(['/', '?']).next().unwrap_or_default();
            let Some((h, p)) = rest.rsplit_once(':') else {
                continue;
            };
            let Ok(port) = p.parse::<u16>() else { continue };
            let h = h.trim_start_matches('[').trim_end_matches(']');
            let unspecified =
                h.is_empty() || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
            (
                if unspecified {
                    None
                } else {
                    Some(h.to_owned())
                },
                port,
            )
        } else {
            continue;
        };
        let host = match (intent.peer_address, host) {
            (Some(ip), _) => ip.to_string(),
            (None, Some(h)) => h,
            (None, None) => continue,
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        return Ok(format!("tcp://{host}:{port}"));
    }
    Err(no_address())
}

/// The plan: what to change on each daemon so they are a pair as `intent` says.
pub fn plan(intent: &PairIntent, observed: [&Observed; 2]) -> Result<SyncPlan> {
    let ids = [observed[0].device_id.clone(), observed[1].device_id.clone()];
    if ids[0] == ids[1] {
        return Err(Error::SameDevice {
            a: intent.nodes[0].node.clone(),
            b: intent.nodes[1].node.clone(),
            device_id: ids[0].to_string(),
        });
    }
    let addrs = [
        sync_address(&intent.nodes[0], &observed[0].options)?,
        sync_address(&intent.nodes[1], &observed[1].options)?,
    ];
    let folders = resolve_folders(
        intent,
        [
            Some(observed[0].folders.as_slice()),
            Some(observed[1].folders.as_slice()),
        ],
    )?;
    let mut device_steps = Vec::new();
    let mut folder_steps = Vec::new();
    let mut option_steps = Vec::new();
    for n in 0..2 {
        let p = 1 - n;
        let obs = observed[n];
        let step = |action: Action, why: String| Step {
            node_index: n,
            node: intent.nodes[n].node.clone(),
            action,
            why,
        };

        // The peer device.
        let peer_name = &intent.nodes[p].device_name;
        match obs.device(&ids[p]) {
            None => {
                let mut cfg = obs
                    .device_template
                    .clone()
                    .map(|d| d.0)
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({}));
                let o = cfg.as_object_mut().expect("object");
                o.insert("deviceID".into(), json!(ids[p].as_str()));
                o.insert("name".into(), json!(peer_name));
                o.insert("addresses".into(), json!([addrs[p]]));
                o.insert("paused".into(), json!(false));
                o.insert("autoAcceptFolders".into(), json!(false));
                device_steps.push(step(
                    Action::AddDevice {
                        device_id: ids[p].clone(),
                        config: DeviceConfig(cfg),
                    },
                    format!(
                        "node {} does not know node {}'s device",
                        intent.nodes[n].node, intent.nodes[p].node
                    ),
                ));
            }
            Some(dev) => {
                let mut patch = Map::new();
                let mut why = Vec::new();
                let have = dev.addresses();
                if !have.contains(&addrs[p]) {
                    let mut new = vec![addrs[p].clone()];
                    new.extend(have.iter().filter(|a| *a != "dynamic").cloned());
                    patch.insert("addresses".into(), json!(new));
                    why.push(format!("addresses {have:?} lack {}", addrs[p]));
                }
                if dev.name() != peer_name {
                    patch.insert("name".into(), json!(peer_name));
                    why.push(format!("name {:?} is not {peer_name:?}", dev.name()));
                }
                if dev.paused() {
                    patch.insert("paused".into(), json!(false));
                    why.push("device is paused".into());
                }
                if !patch.is_empty() {
                    device_steps.push(step(
                        Action::UpdateDevice {
                            device_id: ids[p].clone(),
                            patch: Value::Object(patch),
                        },
                        why.join("; "),
                    ));
                }
            }
        }

        // The folders.
        for f in &folders {
            match obs.folder(&f.id) {
                None => {
                    let mut cfg = obs
                        .folder_template
                        .clone()
                        .map(|d| d.0)
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    let o = cfg.as_object_mut().expect("object");
                    o.insert("id".into(), json!(f.id));
                    o.insert("label".into(), json!(f.label));
                    o.insert("path".into(), json!(intent.nodes[n].local_path(&f.path)));
                    o.insert("type".into(), json!("sendreceive"));
                    o.insert(
                        "devices".into(),
                        json!([device_entry(&ids[n]), device_entry(&ids[p])]),
                    );
                    o.insert("rescanIntervalS".into(), json!(f.rescan_interval_s));
                    o.insert("fsWatcherEnabled".into(), json!(true));
                    o.insert("paused".into(), json!(false));
                    let other_has = observed[p].folder(&f.id).is_some();
                    folder_steps.push(step(
                        Action::AddFolder {
                            folder_id: f.id.clone(),
                            path: intent.nodes[n].local_path(&f.path),
                            config: FolderConfig(cfg),
                        },
                        if other_has {
                            format!("folder exists on node {} only", intent.nodes[p].node)
                        } else {
                            format!("folder is not shared yet (id {})", f.id_source)
                        },
                    ));
                }
                Some(have) => {
                    let mut patch = Map::new();
                    let mut why = Vec::new();
                    if have.folder_type() != "sendreceive" {
                        patch.insert("type".into(), json!("sendreceive"));
                        why.push(format!("type is {:?}", have.folder_type()));
                    }
                    let shared = have.device_ids();
                    let missing: Vec<&DeviceId> = [&ids[n], &ids[p]]
                        .into_iter()
                        .filter(|d| !shared.iter().any(|s| s == d.as_str()))
                        .collect();
                    if !missing.is_empty() {
                        let mut devices = have
                            .0
                            .get("devices")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        devices.extend(missing.iter().map(|d| device_entry(d)));
                        patch.insert("devices".into(), Value::Array(devices));
                        why.push(format!(
                            "not shared with {}",
                            missing
                                .iter()
                                .map(|d| d.short())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    if have.rescan_interval_s() != Some(u64::from(f.rescan_interval_s)) {
                        patch.insert("rescanIntervalS".into(), json!(f.rescan_interval_s));
                        why.push(format!("rescan interval {:?} s", have.rescan_interval_s()));
                    }
                    if !have.fs_watcher_enabled() {
                        patch.insert("fsWatcherEnabled".into(), json!(true));
                        why.push("watcher off".into());
                    }
                    if have.paused() {
                        patch.insert("paused".into(), json!(false));
                        why.push("folder is paused".into());
                    }
                    if !patch.is_empty() {
                        folder_steps.push(step(
                            Action::UpdateFolder {
                                folder_id: f.id.clone(),
                                patch: Value::Object(patch),
                            },
                            why.join("; "),
                        ));
                    }
                }
            }
        }

        // Hardening.
        if intent.hardening {
            let mut patch = Map::new();
            for key in [
                "globalAnnounceEnabled",
                "localAnnounceEnabled",
                "relaysEnabled",
                "natEnabled",
            ] {
                if obs.options.get(key).and_then(Value::as_bool) != Some(false) {
                    patch.insert(key.into(), json!(false));
                }
            }
            if !patch.is_empty() {
                let keys = patch.keys().cloned().collect::<Vec<_>>().join(", ");
                option_steps.push(step(
                    Action::UpdateOptions {
                        patch: Value::Object(patch),
                    },
                    format!("hardening: {keys} on"),
                ));
            }
        }
    }
    let mut steps = device_steps;
    steps.extend(folder_steps);
    steps.extend(option_steps);
    Ok(SyncPlan {
        device_ids: ids,
        sync_addresses: addrs,
        folders,
        steps,
    })
}

fn device_entry(id: &DeviceId) -> Value {
    json!({"deviceID": id.as_str(), "introducedBy": "", "encryptionPassword": ""})
}

#[cfg(test)]
mod tests;
