//! # fspbx-ha
//!
//! High availability for a two-node FS PBX (FreeSWITCH + PostgreSQL + Laravel PBX): PostgreSQL
//! logical replication both ways, Syncthing mirroring of the media folders, and a floating DNS
//! record flipped to the healthy node.
//!
//! This crate is a facade: it re-exports the libraries so an embedding program needs one
//! dependency.
//!
//! - [`core`]: cluster configuration, SSH, PostgreSQL checks and replication, probes, failover.
//! - [`dns`]: the `DnsProvider` trait and its Route53, Cloudflare and RFC 2136 implementations.
//! - [`sync`]: the typed Syncthing client and folder pairing.
//! - [`secret`]: secret references resolved late and redacted everywhere.
//!
//! ```
//! let text = fspbx_ha::core::config::ClusterConfig::template();
//! let config = fspbx_ha::core::config::ClusterConfig::from_toml_str(&text).unwrap();
//! assert_eq!(config.nodes.len(), 2);
//! ```

pub use fspbx_ha_core as core;
pub use fspbx_ha_dns as dns;
pub use fspbx_ha_secret as secret;
pub use fspbx_ha_sync as sync;
