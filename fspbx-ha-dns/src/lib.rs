//! DNS providers for fspbx-ha: the floating name of a two-node FS PBX is flipped through one of
//! them, guarded by compare-and-swap, and checked at every authoritative server.
//!
//! - [`DnsProvider`]: read a record set, set it (optionally only if it is still what the caller
//!   expects), wait until the provider applied it, declare capabilities.
//! - Providers: [`rfc2136::Rfc2136`] (TSIG-signed dynamic updates, atomic CAS through update
//!   prerequisites), [`route53::Route53`] (SigV4, DELETE+CREATE batches),
//!   [`cloudflare::Cloudflare`] (API v4; read-compare-write, declared not atomic).
//! - [`propagation`]: ask each authoritative server directly, without a cache, and say when
//!   clients holding the old answer will have moved.
//! - [`plan`]: the node records and the floating record of the HA guide, diffed against the
//!   provider and applied with guards (`dns apply`).
//! - [`ProviderConfig`]: the `[floating.provider]` configuration section; `build` resolves the
//!   secrets and returns a `Box<dyn DnsProvider>`.
//! - Pure logic without I/O: [`cas`] (the compare-and-swap decision), [`plan::plan`],
//!   [`propagation::verdict`] and [`propagation::clients_moved_by`], [`retry::Backoff`].
//!
//! ```
//! use fspbx_ha_dns::{Change, Expected, RecordKind};
//! // Flip pbx.example.com from node A to node B, but only if it still points at node A.
//! let change = Change::set("pbx.example.com", RecordKind::A, 60, vec!["192.0.2.20".parse().unwrap()])
//!     .expecting(Expected::Values(vec!["192.0.2.10".parse().unwrap()]));
//! assert!(change.validated("example.com").is_ok());
//! ```

pub mod cas;
pub mod cloudflare;
mod config;
mod error;
mod http;
pub mod plan;
pub mod propagation;
mod provider;
pub mod record;
pub mod retry;
pub mod rfc2136;
pub mod route53;
mod wire;

pub use config::{ProviderConfig, parse_server};
pub use error::{Error, Result};
pub use provider::DnsProvider;
pub use record::{Capabilities, Change, ChangeReceipt, Expected, RecordKind, RecordSet};
/// The URL type of provider endpoints.
pub use url::Url;
