//! Syncthing for fspbx-ha: a typed REST client, the pairing plan of two daemons and their sync
//! status.
//!
//! - [`SyncthingClient`]: system, config (devices, folders, options), pending devices and
//!   folders, `db/completion`, `db/status`, `folder/errors`, `db/scan`, and the events long-poll
//!   as a typed stream ([`SyncthingClient::event_stream`]). Answers are decoded leniently, so
//!   Debian's 1.19 and FS PBX's 2.x both work; configuration objects are kept whole.
//! - [`plan`]: the pure pairing plan ([`plan::plan`]) from what both daemons hold to the REST
//!   changes that pair them; [`SyncPair`] observes, plans, applies (idempotently), reports
//!   [`SyncStatus`] and [`waits`](SyncPair::wait) until every folder is complete both ways.
//! - [`stable_folder_id`]: the folder id derived from a path.
//!
//! This crate is a leaf: it knows nothing of SSH. To reach a daemon whose API listens on a
//! node's loopback, give the client the local end of an SSH port forward (`fspbx-ha-core` does
//! this from the cluster configuration).
//!
//! ```no_run
//! # async fn demo() -> fspbx_ha_sync::Result<()> {
//! use std::time::Duration;
//! use fspbx_ha_sync::{FolderIntent, NodeIntent, PairIntent, Secret, SyncPair, SyncthingClient, WaitOptions};
//! let a = SyncthingClient::new("a", "http://127.0.0.2:8384", Secret::new("key-a"))?;
//! let b = SyncthingClient::new("b", "http://127.0.0.3:8384", Secret::new("key-b"))?;
//! let node = |n: &str, ip: &str| NodeIntent::new(n, n, Some(ip.parse().unwrap()));
//! let pair = SyncPair::new([a, b], PairIntent {
//!     nodes: [node("a", "127.0.0.2"), node("b", "127.0.0.3")],
//!     folders: FolderIntent::fspbx_defaults(),
//!     hardening: true,
//! });
//! let report = pair.apply().await?;          // idempotent: a second apply has no steps
//! println!("{} step(s) applied", report.applied.len());
//! let status = pair.wait(&WaitOptions::new(Duration::from_secs(60)), |s| println!("{}", s.summary())).await?;
//! assert!(status.is_complete());
//! # Ok(()) }
//! ```

mod client;
mod device_id;
mod error;
mod events;
mod folder_id;
pub mod model;
mod pair;
pub mod plan;
pub mod status;

pub use client::{ClientOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, SyncthingClient};
pub use device_id::DeviceId;
pub use error::{Error, Result};
pub use events::{Event, EventData, EventKind};
pub use folder_id::{folder_label, normalize_path, stable_folder_id};
pub use fspbx_ha_secret::Secret;
pub use pair::{ApplyEvent, ApplyReport, SyncPair, WaitOptions};
pub use plan::{FolderIntent, NodeIntent, PairIntent, SyncPlan};
pub use status::{DirectionStatus, FolderSyncStatus, NodeSyncStatus, SyncStatus};
