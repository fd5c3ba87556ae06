//! What the operator names as the floating record's value: a node (`a`, `b`, its name or host
//! name) or addresses; and the compare-and-swap guard (`--expect`). Pure: no I/O.

use std::net::IpAddr;

use fspbx_ha_dns::Error as DnsError;
use serde::{Deserialize, Serialize};

use crate::config::ClusterConfig;
use crate::{Error, Result};

/// One node as the DNS sees it: its name, its own host name and its public addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsNode {
    /// Node name (`a`).
    pub name: String,
    /// Its own host name (`server1.example.com`).
    pub hostname: String,
    /// Its public addresses (the node record's values, and the floating record's when active).
    pub addresses: Vec<IpAddr>,
}

impl DnsNode {
    /// The record view `fspbx_ha_dns::plan` works with.
    pub fn record(&self) -> fspbx_ha_dns::plan::NodeRecord<'_> {
        fspbx_ha_dns::plan::NodeRecord {
            node: &self.name,
            hostname: &self.hostname,
            addresses: &self.addresses,
        }
    }
}

/// The two nodes of `config` as the DNS sees them (node A first).
pub fn dns_nodes(config: &ClusterConfig) -> Result<[DnsNode; 2]> {
    match config.nodes.as_slice() {
        [a, b] => Ok([a, b].map(|n| DnsNode {
            name: n.name.clone(),
            hostname: n.hostname.clone(),
            addresses: n.addresses.clone(),
        })),
        other => Err(DnsError::InvalidInput {
            field: "nodes",
            value: other.len().to_string(),
            reason: "exactly two [[nodes]] entries are needed".into(),
        }
        .into()),
    }
}

/// Where to point the floating record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The node these addresses belong to, when one was named (`None` for bare addresses).
    pub node: Option<String>,
    /// The addresses.
    pub addresses: Vec<IpAddr>,
}

impl Target {
    /// Resolves `text`: a node name, its host name, `a`/`b` (first/second node, any case), or
    /// comma-separated IP addresses. `field` names the input in errors (`--to`, `to`).
    pub fn resolve(nodes: &[DnsNode; 2], text: &str, field: &'static str) -> Result<Target> {
        let t = text.trim();
        for (n, letter) in nodes.iter().zip(["a", "b"]) {
            if n.name.eq_ignore_ascii_case(t)
                || t.eq_ignore_ascii_case(letter)
                || n.hostname.eq_ignore_ascii_case(t)
            {
                return Ok(Target {
                    node: Some(n.name.clone()),
                    addresses: n.addresses.clone(),
                });
            }
        }
        let addresses = parse_ips(t, field)?;
        if addresses.is_empty() {
            return Err(bad(field, t));
        }
        // Addresses that are exactly one node's still name that node.
        let node = nodes
            .iter()
            .find(|n| {
                let mut a = n.addresses.clone();
                let mut b = addresses.clone();
                a.sort();
                b.sort();
                a == b
            })
            .map(|n| n.name.clone());
        Ok(Target { node, addresses })
    }
}

/// Parses a compare-and-swap guard: comma-separated addresses, or `none` (the record must not
/// exist: an empty list). `field` names the input in errors (`--expect`, `expect`).
pub fn parse_expect(text: &str, field: &'static str) -> Result<Vec<IpAddr>> {
    if text.trim().eq_ignore_ascii_case("none") {
        Ok(vec![])
    } else {
        parse_ips(text, field)
    }
}

fn parse_ips(s: &str, field: &'static str) -> Result<Vec<IpAddr>> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<IpAddr>().map_err(|_| bad(field, p)))
        .collect()
}

fn bad(field: &'static str, value: &str) -> Error {
    DnsError::InvalidInput {
        field,
        value: value.to_string(),
        reason: "give a node name (see `fspbx-ha config`), `a`, `b` or IP addresses".into(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes() -> [DnsNode; 2] {
        [
            DnsNode {
                name: "east".into(),
                hostname: "server1.example.com".into(),
                addresses: vec![
                    "192.0.2.10".parse().unwrap(),
                    "2001:db8::10".parse().unwrap(),
                ],
            },
            DnsNode {
                name: "west".into(),
                hostname: "server2.example.com".into(),
                addresses: vec!["192.0.2.20".parse().unwrap()],
            },
        ]
    }

    #[test]
    fn letters_names_and_host_names_resolve_to_nodes() {
        let n = nodes();
        for text in ["a", "A", " east ", "server1.example.com"] {
            let t = Target::resolve(&n, text, "--to").unwrap();
            assert_eq!(t.node.as_deref(), Some("east"), "{text}");
            assert_eq!(t.addresses, n[0].addresses);
        }
        let t = Target::resolve(&n, "b", "--to").unwrap();
        assert_eq!(
            (t.node.as_deref(), t.addresses),
            (Some("west"), n[1].addresses.clone())
        );
    }

    #[test]
    fn addresses_resolve_and_name_their_node_when_they_match_one() {
        let n = nodes();
        let t = Target::resolve(&n, "192.0.2.20", "--to").unwrap();
        assert_eq!(t.node.as_deref(), Some("west"));
        let t = Target::resolve(&n, "2001:db8::10, 192.0.2.10", "--to").unwrap();
        assert_eq!(t.node.as_deref(), Some("east"));
        let t = Target::resolve(&n, "203.0.113.5,203.0.113.6", "--to").unwrap();
        assert_eq!(t.node, None);
        assert_eq!(t.addresses.len(), 2);
    }

    #[test]
    fn nonsense_names_the_field_and_the_choices() {
        let n = nodes();
        for text in ["nonsense", "", "192.0.2.1,oops"] {
            let e = Target::resolve(&n, text, "--to").unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("--to"), "{msg}");
            assert!(msg.contains("`a`, `b` or IP addresses"), "{msg}");
            assert_eq!(e.class(), crate::ErrorClass::Usage);
        }
    }

    #[test]
    fn expect_none_means_absent() {
        assert!(parse_expect("none", "--expect").unwrap().is_empty());
        assert!(parse_expect(" NONE ", "--expect").unwrap().is_empty());
        assert_eq!(
            parse_expect("192.0.2.10,192.0.2.11", "--expect")
                .unwrap()
                .len(),
            2
        );
        assert!(
            parse_expect("x", "expect")
                .unwrap_err()
                .to_string()
                .contains("expect")
        );
    }
}
