//! Typed views of Syncthing's REST answers.
//!
//! Answers are decoded leniently: unknown fields are ignored and missing ones default, so the
//! same types read Debian's 1.19 and FS PBX's 2.x. Configuration objects (devices, folders,
//! options) are kept whole as JSON ([`DeviceConfig`], [`FolderConfig`]) so a read-modify-write
//! never drops a field this crate does not know.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Syncthing writes `null` for empty lists and maps (Go nil slices): read it as empty.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `GET /rest/system/status` (the fields we use; the rest is in [`SystemStatus::raw`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SystemStatus {
    /// This device's ID.
    #[serde(rename = "myID")]
    pub my_id: String,
    /// Seconds since start.
    pub uptime: u64,
    /// Start time (RFC 3339).
    pub start_time: String,
    /// The GUI address in use.
    pub gui_address_used: String,
    /// Listener status by listen address.
    #[serde(deserialize_with = "nullable")]
    pub connection_service_status: BTreeMap<String, ListenerStatus>,
    /// The whole answer.
    #[serde(skip)]
    pub raw: Value,
}

/// One sync listener's status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListenerStatus {
    /// Why it does not listen, if so.
    pub error: Option<String>,
    /// Addresses it announces on the LAN.
    #[serde(deserialize_with = "nullable")]
    pub lan_addresses: Vec<String>,
}

/// `GET /rest/system/version`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Version {
    /// e.g. `v1.19.2-ds1`.
    pub version: String,
    /// The long version line.
    pub long_version: String,
    /// Operating system.
    pub os: String,
    /// CPU architecture.
    pub arch: String,
}

impl Version {
    /// The major version number (1 or 2), 0 when unreadable.
    pub fn major(&self) -> u32 {
        self.version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    }
}

/// `GET /rest/system/connections`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Connections {
    /// Per device ID (every configured device, connected or not).
    #[serde(deserialize_with = "nullable")]
    pub connections: BTreeMap<String, Connection>,
}

/// One device's connection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Connection {
    /// Whether a connection is up.
    pub connected: bool,
    /// Whether the device is paused.
    pub paused: bool,
    /// Remote address of the connection.
    pub address: String,
    /// Connection type (`tcp-client`, `tcp-server`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The peer's version.
    pub client_version: String,
    /// Bytes received.
    pub in_bytes_total: u64,
    /// Bytes sent.
    pub out_bytes_total: u64,
}

/// `GET /rest/db/completion?folder=&device=`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Completion {
    /// Percent complete (0..=100).
    pub completion: f64,
    /// Bytes in the global state.
    pub global_bytes: u64,
    /// Bytes still needed.
    pub need_bytes: u64,
    /// Items in the global state.
    pub global_items: u64,
    /// Items still needed.
    pub need_items: u64,
    /// Deletions still needed.
    pub need_deletes: u64,
    /// The remote's state of the folder (`valid`, `paused`, `notSharing`, `unknown`; 1.14+).
    pub remote_state: Option<String>,
    /// The sequence the answer refers to.
    pub sequence: u64,
}

/// `GET /rest/db/status?folder=` (also the `summary` of FolderSummary events).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FolderStatus {
    /// `idle`, `scanning`, `syncing`, `error`, `scan-waiting`, `sync-preparing`, ...
    pub state: String,
    /// When the state changed.
    pub state_changed: String,
    /// The folder error, when the state is `error` (e.g. `folder path missing`).
    pub error: String,
    /// Files in the global state.
    pub global_files: u64,
    /// Directories in the global state.
    pub global_directories: u64,
    /// Bytes in the global state.
    pub global_bytes: u64,
    /// Deleted entries in the global state.
    pub global_deleted: u64,
    /// Local files.
    pub local_files: u64,
    /// Local bytes.
    pub local_bytes: u64,
    /// Files still needed.
    pub need_files: u64,
    /// Directories still needed.
    pub need_directories: u64,
    /// Deletions still needed.
    pub need_deletes: u64,
    /// Bytes still needed.
    pub need_bytes: u64,
    /// Everything still needed.
    pub need_total_items: u64,
    /// Items that failed to sync.
    pub pull_errors: u64,
    /// Errors (1.x: count of failed items).
    pub errors: u64,
    /// The watcher's error, if any.
    pub watch_error: String,
    /// Local sequence.
    pub sequence: u64,
}

/// `GET /rest/folder/errors?folder=`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FolderErrors {
    /// Folder id.
    pub folder: String,
    /// Items that failed.
    #[serde(deserialize_with = "nullable")]
    pub errors: Vec<FileError>,
}

/// One file that could not be synced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileError {
    /// Path inside the folder.
    pub path: String,
    /// Why.
    pub error: String,
}

/// A device that tried to connect but is not configured (`/rest/cluster/pending/devices`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PendingDevice {
    /// Its device ID.
    pub device_id: String,
    /// The name it announced.
    pub name: String,
    /// The address it connected from.
    pub address: String,
    /// When (RFC 3339).
    pub time: String,
}

/// A folder a connected device offers that is not shared with it here
/// (`/rest/cluster/pending/folders`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PendingFolder {
    /// Folder id.
    pub folder: String,
    /// Device offering it.
    pub offered_by: String,
    /// The label it gave.
    pub label: String,
    /// When (RFC 3339).
    pub time: String,
}

/// A device entry of the configuration, kept whole so unknown fields survive a PUT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceConfig(pub Value);

impl DeviceConfig {
    /// `deviceID`.
    pub fn device_id(&self) -> &str {
        str_field(&self.0, "deviceID")
    }
    /// `name`.
    pub fn name(&self) -> &str {
        str_field(&self.0, "name")
    }
    /// `addresses` (`dynamic` or `tcp://host:port`).
    pub fn addresses(&self) -> Vec<String> {
        str_list(&self.0, "addresses")
    }
    /// `paused`.
    pub fn paused(&self) -> bool {
        self.0
            .get("paused")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// A folder entry of the configuration, kept whole so unknown fields survive a PUT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FolderConfig(pub Value);

impl FolderConfig {
    /// `id`.
    pub fn id(&self) -> &str {
        str_field(&self.0, "id")
    }
    /// `label`.
    pub fn label(&self) -> &str {
        str_field(&self.0, "label")
    }
    /// `path`.
    pub fn path(&self) -> &str {
        str_field(&self.0, "path")
    }
    /// `type` (`sendreceive`, `sendonly`, `receiveonly`, `receiveencrypted`).
    pub fn folder_type(&self) -> &str {
        str_field(&self.0, "type")
    }
    /// The device IDs it is shared with (including the local device).
    pub fn device_ids(&self) -> Vec<String> {
        self.0
            .get("devices")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|d| str_field(d, "deviceID").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
    /// `rescanIntervalS`.
    pub fn rescan_interval_s(&self) -> Option<u64> {
        self.0.get("rescanIntervalS").and_then(Value::as_u64)
    }
    /// `fsWatcherEnabled`.
    pub fn fs_watcher_enabled(&self) -> bool {
        self.0
            .get("fsWatcherEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
    /// `paused`.
    pub fn paused(&self) -> bool {
        self.0
            .get("paused")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

pub(crate) fn str_list(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_tolerated_and_kept() {
        let v = serde_json::json!({"id": "x", "path": "/p", "type": "sendreceive",
            "devices": [{"deviceID": "D1"}, {"deviceID": "D2", "encryptionPassword": ""}],
            "rescanIntervalS": 300, "fsWatcherEnabled": true, "someField2x": {"a": 1}});
        let f: FolderConfig = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(f.device_ids(), ["D1", "D2"]);
        assert_eq!(f.rescan_interval_s(), Some(300));
        assert_eq!(serde_json::to_value(&f).unwrap(), v);
        let e: FolderErrors =
            serde_json::from_value(serde_json::json!({"folder": "f", "errors": null})).unwrap();
        assert!(e.errors.is_empty());
        let s: FolderStatus = serde_json::from_value(
            serde_json::json!({"state": "idle", "needBytes": 5, "new2x": 1}),
        )
        .unwrap();
        assert_eq!((s.state.as_str(), s.need_bytes), ("idle", 5));
        assert_eq!(
            Version {
                version: "v2.0.3".into(),
                ..Default::default()
            }
            .major(),
            2
        );
    }
}
