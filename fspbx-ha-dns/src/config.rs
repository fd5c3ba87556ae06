//! The provider section of the cluster configuration (`[floating.provider]`), and building a
//! provider from it. Secrets are references, resolved only in [`ProviderConfig::build`].

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use fspbx_ha_secret::SecretRef;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::cloudflare::{Cloudflare, CloudflareConfig};
use crate::error::{Error, Result};
use crate::provider::DnsProvider;
use crate::rfc2136::{Rfc2136, TsigAlg, TsigKey};
use crate::route53::{Route53, Route53Config};

/// Which DNS provider serves the zone, and its credentials (as secret references).
///
/// ```
/// let toml_like = serde_json::json!({
///     "kind": "rfc2136", "server": "192.0.2.53:53", "key_name": "fspbx-ha",
///     "key_secret": "env:FSPBX_HA_TSIG_KEY"
/// });
/// let cfg: fspbx_ha_dns::ProviderConfig = serde_json::from_value(toml_like).unwrap();
/// assert_eq!(cfg.kind(), "rfc2136");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
pub enum ProviderConfig {
    /// Amazon Route53.
    Route53 {
        /// AWS access key id.
        access_key_id: String,
        /// The secret access key (`env:` / `file:`).
        secret_access_key: SecretRef,
        /// Hosted zone id; found by zone name when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hosted_zone_id: Option<String>,
        /// API endpoint (tests and the lab point it at moto).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<Url>,
        /// Signing region (default `us-east-1`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
    },
    /// Cloudflare API v4.
    Cloudflare {
        /// API token (`env:` / `file:`).
        api_token: SecretRef,
        /// Zone id; found by zone name when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        zone_id: Option<String>,
        /// API base (default `https://api.cloudflare.com/client/v4`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<Url>,
    },
    /// RFC 2136 dynamic updates with TSIG.
    Rfc2136 {
        /// The zone's primary server: `ip`, `ip:port`, `host` or `host:port` (port 53 by
        /// default).
        server: String,
        /// TSIG key name.
        key_name: String,
        /// TSIG secret, base64 (`env:` / `file:`).
        key_secret: SecretRef,
        /// `hmac-sha256` (default), `hmac-sha384` or `hmac-sha512`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        algorithm: Option<String>,
    },
}

impl ProviderConfig {
    /// `route53`, `cloudflare` or `rfc2136`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderConfig::Route53 { .. } => "route53",
            ProviderConfig::Cloudflare { .. } => "cloudflare",
            ProviderConfig::Rfc2136 { .. } => "rfc2136",
        }
    }

    /// Resolves the secrets and builds the provider for `zone`.
    pub fn build(&self, zone: &str) -> Result<Box<dyn DnsProvider>> {
        Ok(match self {
            ProviderConfig::Route53 {
                access_key_id,
                secret_access_key,
                hosted_zone_id,
                endpoint,
                region,
            } => Box::new(Route53::new(Route53Config {
                zone: zone.to_string(),
                access_key_id: access_key_id.clone(),
                secret_access_key: secret_access_key
                    .resolve()
                    .map_err(|source| Error::Secret {
                        field: "floating.provider.secret_access_key",
                        source,
                    })?,
                hosted_zone_id: hosted_zone_id.clone(),
                endpoint: endpoint.clone(),
                region: region.clone(),
            })?),
            ProviderConfig::Cloudflare {
                api_token,
                zone_id,
                endpoint,
            } => Box::new(Cloudflare::new(CloudflareConfig {
                zone: zone.to_string(),
                api_token: api_token.resolve().map_err(|source| Error::Secret {
                    field: "floating.provider.api_token",
                    source,
                })?,
                zone_id: zone_id.clone(),
                endpoint: endpoint.clone(),
                per_page: None,
            })?),
            ProviderConfig::Rfc2136 {
                server,
                key_name,
                key_secret,
                algorithm,
            } => {
                let algorithm = match algorithm {
                    Some(a) => a.parse::<TsigAlg>()?,
                    None => TsigAlg::HmacSha256,
                };
                let secret = key_secret.resolve().map_err(|source| Error::Secret {
                    field: "floating.provider.key_secret",
                    source,
                })?;
                Box::new(Rfc2136::new(
                    parse_server(server, "floating.provider.server")?,
                    zone,
                    Some(TsigKey {
                        name: key_name.clone(),
                        algorithm,
                        secret,
                    }),
                )?)
            }
        })
    }

    /// The authoritative server to ask when no name servers are configured: the RFC 2136
    /// primary. `None` for API providers (their servers come from the zone's NS records).
    pub fn primary_server(&self) -> Result<Option<SocketAddr>> {
        match self {
            ProviderConfig::Rfc2136 { server, .. } => {
                parse_server(server, "floating.provider.server").map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// Parses `ip`, `ip:port`, `[v6]:port`, `host` or `host:port` (default port 53); host names are
/// resolved with the system resolver. `field` names the configuration key in errors.
pub fn parse_server(s: &str, field: &'static str) -> Result<SocketAddr> {
    let s = s.trim();
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Ok(ip) = s.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    let with_port = if s
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        s.to_string()
    } else {
        format!("{s}:53")
    };
    let bad = |reason: String| Error::InvalidInput {
        field,
        value: s.to_string(),
        reason,
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| {
            bad(format!(
                "cannot resolve it ({e}); give ip:port or host:port"
            ))
        })?
        .next()
        .ok_or_else(|| bad("resolves to no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds_and_refuses_unknown_fields() {
        let r: ProviderConfig = serde_json::from_value(serde_json::json!({
            "kind": "route53", "access_key_id": "AKID", "secret_access_key": "env:AWS_SECRET"
        }))
        .unwrap();
        assert_eq!(r.kind(), "route53");
        let c: ProviderConfig = serde_json::from_value(serde_json::json!({
            "kind": "cloudflare", "api_token": "file:/etc/cf.token", "zone_id": "abc"
        }))
        .unwrap();
        assert_eq!(c.kind(), "cloudflare");
        let err = serde_json::from_value::<ProviderConfig>(serde_json::json!({
            "kind": "rfc2136", "server": "127.0.0.1", "key_name": "k",
            "key_secret": "env:K", "typo": 1
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("typo"), "{err}");
        // An inline secret is refused without being echoed.
        let err = serde_json::from_value::<ProviderConfig>(serde_json::json!({
            "kind": "cloudflare", "api_token": "sk-live-inline-secret"
        }))
        .unwrap_err()
        .to_string();
        assert!(!err.contains("sk-live-inline-secret"), "{err}");
    }

    #[test]
    fn server_forms() {
        assert_eq!(
            parse_server("127.0.0.53", "s").unwrap(),
            "127.0.0.53:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("127.0.0.53:5353", "s").unwrap(),
            "127.0.0.53:5353".parse().unwrap()
        );
        assert_eq!(
            parse_server("[::1]:5353", "s").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert_eq!(parse_server("localhost:5353", "s").unwrap().port(), 5353);
        let err = parse_server("no such host.invalid", "floating.provider.server").unwrap_err();
        assert!(
            err.to_string().contains("floating.provider.server"),
            "{err}"
        );
    }

    #[test]
    fn build_names_the_missing_secret() {
        let c: ProviderConfig = serde_json::from_value(serde_json::json!({
            "kind": "cloudflare", "api_token": "env:FSPBX_DNS_TEST_SURELY_UNSET"
        }))
        .unwrap();
        let err = c.build("example.com").unwrap_err().to_string();
        assert!(err.contains("floating.provider.api_token"), "{err}");
        assert!(err.contains("FSPBX_DNS_TEST_SURELY_UNSET"), "{err}");
    }
}
