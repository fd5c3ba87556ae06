//! The folders Syncthing mirrors between the nodes (`[[folders]]`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One mirrored folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderSpec {
    /// Absolute path, the same on both nodes.
    pub path: PathBuf,
    /// Syncthing folder id. When absent, the stable id derived from the path is used, so pairs
    /// created by FS PBX's script are adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Full rescan interval in seconds (the watcher catches most changes sooner).
    pub rescan_interval_s: u32,
}

/// FS PBX's folder set with its documented rescan intervals.
pub fn fspbx_default_folders() -> Vec<FolderSpec> {
    [
        ("/usr/share/freeswitch/sounds/music", 3600),
        ("/var/cache/fusionpbx", 300),
        ("/var/lib/freeswitch/recordings", 3600),
        ("/var/lib/freeswitch/storage", 3600),
        ("/var/www/fspbx/public/resources/templates/provision", 3600),
    ]
    .into_iter()
    .map(|(p, s)| FolderSpec {
        path: PathBuf::from(p),
        id: None,
        rescan_interval_s: s,
    })
    .collect()
}
