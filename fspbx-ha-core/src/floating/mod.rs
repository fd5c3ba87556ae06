//! The floating record and the node records of the cluster, from the configuration to
//! `fspbx-ha-dns`: show who is active, flip with compare-and-swap and wait for the
//! authoritative servers, verify, and plan/apply the HA guide's three names.
//!
//! [`Floating`] does the I/O (provider and authoritative servers); the decisions are pure and
//! tested without servers: [`Target::resolve`], [`parse_expect`], [`active_node`],
//! [`apply_target`], [`waits_after_flip`], [`clients_moved_by`].
//!
//! ```no_run
//! # async fn demo() -> fspbx_ha_core::Result<()> {
//! use fspbx_ha_core::config::ClusterConfig;
//! use fspbx_ha_core::floating::{FlipOptions, Floating};
//! let config = ClusterConfig::load("cluster.toml")?;
//! let floating = Floating::new(&config)?;
//! let to = floating.resolve_target("b", "to")?;
//! let report = floating.flip(&to, &FlipOptions::default()).await?;
//! assert!(report.ok(), "some authoritative server still answers the old value");
//! # Ok(()) }
//! ```

mod report;
mod target;

use std::net::IpAddr;
use std::time::Duration;

use fspbx_ha_dns::plan;
use fspbx_ha_dns::propagation::Checker;
use fspbx_ha_dns::{DnsProvider, ProviderConfig, RecordKind, RecordSet};

use crate::Result;
use crate::config::ClusterConfig;

pub use report::{
    FlipReport, FloatingReport, RecordsReport, VerifyReport, Wait, active_index, active_node,
    apply_target, clients_moved_by, waits_after_flip, waits_for_addresses,
};
pub use target::{DnsNode, Target, dns_nodes, parse_expect};

/// How often the authoritative servers are asked while waiting.
const POLL: Duration = Duration::from_millis(200);

/// Default TTL of the node records written by `dns apply`.
pub const DEFAULT_NODE_TTL: u32 = 300;

/// The authoritative servers to check for the floating zone: `floating.nameservers`, else those
/// the zone's NS records name. Needs no credentials (`fspbx-ha check` uses it).
pub async fn authoritative_servers(config: &ClusterConfig) -> Result<Checker> {
    let f = &config.floating;
    Ok(Checker::for_zone(&f.zone, &f.nameservers, f.provider.primary_server()?).await?)
}

/// How [`Floating::flip`] flips.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FlipOptions {
    /// Flip only if the record holds these addresses now (empty: must not exist). `None`:
    /// whatever it holds when read.
    pub expect: Option<Vec<IpAddr>>,
    /// TTL of the record (default `floating.ttl`).
    pub ttl: Option<u32>,
    /// How long to wait for the provider to apply the change, and for the servers.
    pub timeout: Duration,
    /// Wait until every authoritative server answers the new value.
    pub wait_for_servers: bool,
}

impl Default for FlipOptions {
    fn default() -> Self {
        FlipOptions {
            expect: None,
            ttl: None,
            timeout: Duration::from_secs(120),
            wait_for_servers: true,
        }
    }
}

/// The cluster's DNS: its floating record, node records and provider.
#[derive(Debug)]
pub struct Floating {
    zone: String,
    name: String,
    ttl: u32,
    nameservers: Vec<String>,
    provider_config: ProviderConfig,
    nodes: [DnsNode; 2],
    provider: Box<dyn DnsProvider>,
}

impl Floating {
    /// Reads the `[floating]` section and both nodes, and builds the provider (its secret
    /// references are resolved now).
    pub fn new(config: &ClusterConfig) -> Result<Floating> {
        let provider = config.floating.provider.build(&config.floating.zone)?;
        Floating::with_provider(config, provider)
    }

    /// Like [`Floating::new`] with a provider of the caller's (a custom [`DnsProvider`]).
    pub fn with_provider(
        config: &ClusterConfig,
        provider: Box<dyn DnsProvider>,
    ) -> Result<Floating> {
        let f = &config.floating;
        Ok(Floating {
            zone: f.zone.clone(),
            name: f.name.clone(),
            ttl: f.ttl,
            nameservers: f.nameservers.clone(),
            provider_config: f.provider.clone(),
            nodes: dns_nodes(config)?,
            provider,
        })
    }

    /// The floating name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// Both nodes as the DNS sees them.
    pub fn nodes(&self) -> &[DnsNode; 2] {
        &self.nodes
    }

    /// The provider.
    pub fn provider(&self) -> &dyn DnsProvider {
        self.provider.as_ref()
    }

    /// Resolves a target (`a`, `b`, a node or host name, or addresses); `field` names the
    /// input in errors.
    pub fn resolve_target(&self, text: &str, field: &'static str) -> Result<Target> {
        Target::resolve(&self.nodes, text, field)
    }

    /// The authoritative servers (see [`authoritative_servers`]).
    pub async fn checker(&self) -> Result<Checker> {
        Ok(Checker::for_zone(
            &self.zone,
            &self.nameservers,
            self.provider_config.primary_server()?,
        )
        .await?)
    }

    async fn floating_records(&self) -> Result<Vec<RecordSet>> {
        let mut out = vec![];
        for kind in [RecordKind::A, RecordKind::Aaaa] {
            out.extend(self.provider.get(&self.name, kind).await?);
        }
        Ok(out)
    }

    /// What the provider holds for the floating and node records, which node is active, and
    /// what every authoritative server answers for the floating name.
    pub async fn show(&self) -> Result<FloatingReport> {
        let p = self.provider.as_ref();
        let floating = self.floating_records().await?;
        let mut nodes = vec![];
        for n in &self.nodes {
            for kind in [RecordKind::A, RecordKind::Aaaa] {
                nodes.extend(p.get(&n.hostname, kind).await?);
            }
        }
        let (servers, servers_error) = match self.checker().await {
            Ok(c) => {
                let mut all = c.ask(&self.name, RecordKind::A).await?;
                if floating.iter().any(|r| r.kind == RecordKind::Aaaa) {
                    all.extend(c.ask(&self.name, RecordKind::Aaaa).await?);
                }
                (all, None)
            }
            Err(e) => (vec![], Some(e.to_string())),
        };
        Ok(FloatingReport {
            zone: self.zone.clone(),
            name: self.name.clone(),
            provider: p.name(),
            atomic_cas: p.capabilities().atomic_cas,
            active_node: active_node(&self.nodes, &floating),
            floating,
            nodes,
            servers,
            servers_error,
        })
    }

    /// Points the floating record at `target`, each kind guarded by compare-and-swap (against
    /// `options.expect`, or what it holds when read); waits until the provider applied it and,
    /// if asked, until every authoritative server answers it. A lost guard is
    /// [`fspbx_ha_dns::Error::CasMismatch`] (nothing changed); servers still lagging after the
    /// timeout are a report with [`FlipReport::ok`] false, not an error.
    pub async fn flip(&self, target: &Target, options: &FlipOptions) -> Result<FlipReport> {
        let p = self.provider.as_ref();
        let steps = plan::flip(
            p,
            &self.name,
            options.ttl.unwrap_or(self.ttl),
            &target.addresses,
            options.expect.as_deref(),
        )
        .await?;
        for s in &steps {
            if let Some(r) = &s.receipt {
                p.wait_applied(r, options.timeout).await?;
            }
        }
        let mut propagation = vec![];
        if options.wait_for_servers {
            let checker = self.checker().await?;
            for w in waits_after_flip(&steps) {
                propagation.push(
                    checker
                        .wait_for(
                            &self.name,
                            w.kind,
                            &w.want,
                            w.old_ttl,
                            options.timeout,
                            POLL,
                        )
                        .await?,
                );
            }
        }
        let all = options
            .wait_for_servers
            .then(|| propagation.iter().all(|r| r.verdict.all_moved()));
        Ok(FlipReport {
            name: self.name.clone(),
            target_node: target.node.clone(),
            to: target.addresses.clone(),
            steps,
            clients_moved_by: clients_moved_by(&propagation),
            propagation,
            all_servers_answer: all,
        })
    }

    /// Waits until every authoritative server answers `to` (default: what the provider holds
    /// for the floating record) or `timeout` passes; lagging servers make
    /// [`VerifyReport::ok`] false. Nothing to verify (no target and no record) is an error.
    pub async fn verify(&self, to: Option<&Target>, timeout: Duration) -> Result<VerifyReport> {
        let waits = match to {
            Some(t) => waits_for_addresses(&t.addresses),
            None => {
                let values: Vec<IpAddr> = self
                    .floating_records()
                    .await?
                    .into_iter()
                    .flat_map(|r| r.values)
                    .collect();
                waits_for_addresses(&values)
            }
        };
        if waits.is_empty() {
            return Err(fspbx_ha_dns::Error::InvalidInput {
                field: "floating.name",
                value: self.name.clone(),
                reason: "the provider holds no A or AAAA record for it: nothing to verify (run \
                         `fspbx-ha dns apply`)"
                    .into(),
            }
            .into());
        }
        let checker = self.checker().await?;
        let mut reports = vec![];
        for w in waits {
            reports.push(
                checker
                    .wait_for(&self.name, w.kind, &w.want, w.old_ttl, timeout, POLL)
                    .await?,
            );
        }
        Ok(VerifyReport {
            ok: reports.iter().all(|r| r.verdict.all_moved()),
            clients_moved_by: clients_moved_by(&reports),
            reports,
        })
    }

    /// The desired three names: both node records (`node_ttl`) and the floating record on the
    /// node it points at now (else node A), with `floating.ttl`.
    pub async fn desired(&self, node_ttl: u32) -> Result<Vec<plan::DesiredRecord>> {
        let values: Vec<IpAddr> = self
            .floating_records()
            .await?
            .into_iter()
            .flat_map(|r| r.values)
            .collect();
        let [a, b] = [self.nodes[0].record(), self.nodes[1].record()];
        let active = [&a, &b][apply_target(&self.nodes, &values)];
        Ok(plan::desired_records(
            &a, &b, &self.name, self.ttl, active, node_ttl,
        ))
    }

    /// What [`Floating::apply`] would create or correct (nothing changes).
    pub async fn plan(&self, node_ttl: u32) -> Result<RecordsReport> {
        self.plan_or_apply(node_ttl, false).await
    }

    /// Creates or corrects the node records and the floating record, each write guarded by
    /// what the plan saw (someone else's change in between stops it with a CAS mismatch).
    pub async fn apply(&self, node_ttl: u32) -> Result<RecordsReport> {
        self.plan_or_apply(node_ttl, true).await
    }

    async fn plan_or_apply(&self, node_ttl: u32, apply: bool) -> Result<RecordsReport> {
        let p = self.provider.as_ref();
        let desired = self.desired(node_ttl).await?;
        let current = plan::read_current(p, &desired).await?;
        let steps = plan::plan(&desired, &current);
        let changes = if apply {
            plan::apply(p, &steps).await?.len()
        } else {
            0
        };
        Ok(RecordsReport {
            applied: apply,
            steps,
            changes,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fspbx_ha_dns::{Expected, RecordKind, RecordSet};

    use crate::{Error, ErrorClass, ErrorFamily};

    #[test]
    fn dns_errors_are_classified_for_the_frontends() {
        let cas: Error = fspbx_ha_dns::Error::CasMismatch {
            provider: "rfc2136",
            name: "pbx.example.test.".into(),
            kind: RecordKind::A,
            expected: Expected::Values(vec!["127.0.0.9".parse().unwrap()]),
            found: Some(Box::new(RecordSet::new(
                "pbx.example.test",
                RecordKind::A,
                30,
                vec!["127.0.0.3".parse().unwrap()],
            ))),
        }
        .into();
        assert_eq!(cas.family(), ErrorFamily::Dns);
        assert_eq!(cas.class(), ErrorClass::Refused);
        // Transparent: the message is the DNS library's, once.
        assert!(
            cas.to_string()
                .starts_with("rfc2136: pbx.example.test. A changed under us")
        );

        let timeout: Error = fspbx_ha_dns::Error::Timeout {
            provider: "route53",
            what: "change C1".into(),
            after: Duration::from_secs(1),
        }
        .into();
        assert_eq!(timeout.class(), ErrorClass::Runtime);

        let secret: Error = fspbx_ha_dns::Error::Secret {
            field: "floating.provider.key_secret",
            source: "env:FSPBX_HA_TEST_SURELY_UNSET"
                .parse::<fspbx_ha_secret::SecretRef>()
                .unwrap()
                .resolve()
                .unwrap_err(),
        }
        .into();
        assert_eq!(secret.class(), ErrorClass::Usage);

        let config = Error::ConfigSyntax {
            origin: "<string>".into(),
            key: "floating.ttl".into(),
            message: "invalid type".into(),
        };
        assert_eq!(config.class(), ErrorClass::Usage);
        let io = Error::WriteFile {
            path: "/nonexistent/x".into(),
            source: std::io::Error::other("denied"),
        };
        assert_eq!(io.class(), ErrorClass::Runtime);
    }
}
