//! Two real lab Syncthing daemons (node A on 127.0.0.2, node B on 127.0.0.3) and a pair over them.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use fspbx_ha_lab::syncthing::{Syncthing, SyncthingOptions};
use fspbx_ha_sync::{FolderIntent, NodeIntent, PairIntent, Secret, SyncPair, SyncthingClient};

/// Logical folder paths of the tests (under each daemon's data root on its node).
pub const REC: &str = "/var/lib/freeswitch/recordings";
pub const CACHE: &str = "/var/cache/fusionpbx";

pub struct Duo {
    pub a: Syncthing,
    pub b: Syncthing,
}

impl Duo {
    /// Starts both daemons (in parallel) and creates the given folders on both nodes.
    pub fn start(folders: &[&str]) -> Duo {
        let tb = std::thread::spawn(|| {
            Syncthing::start(SyncthingOptions::node_b()).expect("start syncthing b")
        });
        let a = Syncthing::start(SyncthingOptions::node_a()).expect("start syncthing a");
        let b = tb.join().expect("thread");
        let duo = Duo { a, b };
        for f in folders {
            for st in [&duo.a, &duo.b] {
                std::fs::create_dir_all(local(st, f)).unwrap();
            }
        }
        duo
    }

    pub fn client(&self, i: usize) -> SyncthingClient {
        let (name, st) = if i == 0 {
            ("a", &self.a)
        } else {
            ("b", &self.b)
        };
        SyncthingClient::new(name, &st.api_url(), Secret::new(st.api_key())).unwrap()
    }

    pub fn intent(&self, folders: &[(&str, u32)]) -> PairIntent {
        let node = |name: &str, st: &Syncthing| NodeIntent {
            path_prefix: Some(st.data_root().display().to_string()),
            ..NodeIntent::new(name, format!("lab-{name}"), Some(st.ip()))
        };
        PairIntent {
            nodes: [node("a", &self.a), node("b", &self.b)],
            folders: folders
                .iter()
                .map(|(p, s)| FolderIntent {
                    path: (*p).into(),
                    id: None,
                    rescan_interval_s: *s,
                })
                .collect(),
            hardening: true,
        }
    }

    pub fn pair(&self, folders: &[(&str, u32)]) -> SyncPair {
        SyncPair::new([self.client(0), self.client(1)], self.intent(folders))
    }
}

/// Where logical folder `path` lives on the node of `st`.
pub fn local(st: &Syncthing, path: &str) -> PathBuf {
    st.data_root().join(path.trim_start_matches('/'))
}

/// Every regular file under `dir` (relative path → content), skipping Syncthing's own files.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == ".stfolder" || name == ".stversions" || name.starts_with(".syncthing.") {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

/// Deterministic pseudo-random bytes (xorshift), so a large file is not trivially compressible.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
