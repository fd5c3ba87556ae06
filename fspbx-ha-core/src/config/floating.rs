//! The floating record (`[floating]`): the name users and phones dial, flipped to the active node.

use serde::{Deserialize, Serialize};

/// The floating DNS record and the provider that serves its zone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatingSpec {
    /// The zone, e.g. `example.com`.
    pub zone: String,
    /// The floating name, e.g. `pbx.example.com`.
    pub name: String,
    /// TTL of the floating record in seconds (the HA guide suggests 30–60).
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// Authoritative servers to check propagation against (`host:port`); when empty they are
    /// found from the zone's NS records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// The DNS provider and its credentials.
    pub provider: fspbx_ha_dns::ProviderConfig,
}

fn default_ttl() -> u32 {
    60
}
