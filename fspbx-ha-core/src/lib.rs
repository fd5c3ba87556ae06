//! The fspbx-ha engine.
//!
//! - [`config`]: the cluster configuration (TOML), its validation and the `init` template.
//! - [`ssh`]: the SSH executor (russh) with strict known_hosts checking and port forwards.
//! - [`pg`]: PostgreSQL connections to a node, directly or through an SSH tunnel.
//! - [`check`]: the preflight checks behind `fspbx-ha check`.
//! - [`replication`]: PostgreSQL logical replication both ways: plan, apply, status, verify,
//!   teardown.
//! - [`files`]: the Syncthing pair: pairing plan/apply, sync status and wait, conflict counts.
//! - [`floating`]: the floating record and the node records: show, flip with compare-and-swap,
//!   verify at the authoritative servers, plan/apply.
//! - [`probe`]: health probes (SIP OPTIONS, HTTP(S), TCP, PostgreSQL, Syncthing) run concurrently.
//! - [`upgrade`]: FS PBX's multinode update procedure as a checked, resumable run over SSH.
//!
//! All logic lives here; the CLI and the Python module only translate.

pub mod check;
pub mod config;
mod error;
pub mod failover;
pub mod files;
pub mod floating;
pub mod pg;
pub mod probe;
pub mod replication;
pub mod shell;
pub mod ssh;
pub mod status;
pub mod upgrade;

pub use error::{Error, ErrorClass, ErrorFamily, Result};
pub use fspbx_ha_secret::{Secret, SecretRef};
