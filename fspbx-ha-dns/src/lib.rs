//! DNS providers for fspbx-ha: the floating name of a two-node FS PBX is flipped through one of
//! them, guarded by compare-and-swap, and checked at every authoritative server.
//!
//! - [`DnsProvider`]: read a record set, set it (optionally only if it is still what the caller
//!   expects), wait until the provider applied it, declare capabilities.
//! - Providers: [`rfc2136::Rfc2136`] (TSIG-signed dynamic updates, atomic CAS through update
//!   prerequisites).
//! - [`propagation`]: ask each authoritative server directly, without a cache, and say when
//!   clients holding the old answer will have moved.
//! - Pure logic without I/O: [`cas`] (the compare-and-swap decision), [`propagation::verdict`].
//!
//! ```
//! use fspbx_ha_dns::{Change, Expected, RecordKind};
//! // Flip pbx.example.com from node A to node B, but only if it still points at node A.
//! let change = Change::set("pbx.example.com", RecordKind::A, 60, vec!["192.0.2.20".parse().unwrap()])
//!     .expecting(Expected::Values(vec!["192.0.2.10".parse().unwrap()]));
//! assert!(change.validated("example.com").is_ok());
//! ```

pub mod cas;
mod error;
pub mod propagation;
mod provider;
pub mod record;
pub mod rfc2136;
mod wire;

pub use error::{Error, Result};
pub use provider::DnsProvider;
pub use record::{Capabilities, Change, ChangeReceipt, Expected, RecordKind, RecordSet};
