//! A set of probes run together, and the set a configuration describes.

use std::sync::Arc;
use std::time::SystemTime;

use futures_util::future::join_all;

use super::{HttpProbe, Observation, PgProbe, PgProbeMode, Probe, SipProbe, SyncthingHealthProbe};
use crate::config::ClusterConfig;
use crate::ssh::SshSession;
use crate::{Error, Result};

/// Probes run concurrently, each bounded by its own timeout, so one round takes as long as the
/// slowest probe (at most the largest timeout).
#[derive(Debug, Clone, Default)]
pub struct ProbeSet {
    probes: Vec<Arc<dyn Probe>>,
}

impl ProbeSet {
    /// An empty set.
    pub fn new() -> ProbeSet {
        ProbeSet::default()
    }

    /// Adds a probe.
    pub fn push(&mut self, probe: impl Probe + 'static) {
        self.probes.push(Arc::new(probe));
    }

    /// Adds a probe (builder style).
    pub fn with(mut self, probe: impl Probe + 'static) -> ProbeSet {
        self.push(probe);
        self
    }

    /// The probes, in the order added.
    pub fn probes(&self) -> &[Arc<dyn Probe>] {
        &self.probes
    }

    /// Number of probes.
    pub fn len(&self) -> usize {
        self.probes.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }

    /// Runs every probe once, concurrently; results in the order of [`ProbeSet::probes`].
    pub async fn run_all_results(&self) -> Vec<Result<Observation>> {
        join_all(self.probes.iter().map(|p| p.probe())).await
    }

    /// Runs every probe once, concurrently; observations in the order of
    /// [`ProbeSet::probes`]. A misconfigured probe (its run returned an error) becomes a failed
    /// observation whose detail is the error.
    pub async fn run_all(&self) -> Vec<Observation> {
        let at = SystemTime::now();
        self.run_all_results()
            .await
            .into_iter()
            .zip(&self.probes)
            .map(|(r, p)| {
                r.unwrap_or_else(|e| Observation {
                    node: p.node().to_owned(),
                    kind: p.kind(),
                    target: p.target(),
                    ok: false,
                    detail: format!("probe misconfigured: {e}"),
                    latency: std::time::Duration::ZERO,
                    at,
                })
            })
            .collect()
    }

    /// Whether every observation of `node` in one round is ok: what the failover policy's
    /// `Input::ProbeRound` takes. `None` when the round holds no observation of `node`.
    pub fn round_ok(observations: &[Observation], node: &str) -> Option<bool> {
        let mut of_node = observations.iter().filter(|o| o.node == node).peekable();
        of_node.peek()?;
        Some(of_node.all(|o| o.ok))
    }

    /// The probes `config` describes for each node, in node order: SIP (`probes.sip`), HTTP
    /// (`probes.http`), PostgreSQL (`probes.postgres`, writable by default) and Syncthing
    /// health (when `[nodes.syncthing]` is set and `probes.syncthing` is not false).
    ///
    /// `ssh[i]` is node i's open SSH session, needed when its `postgres.via_ssh` or
    /// `syncthing.via_ssh` is set; a missing one is an error naming that key.
    pub fn from_config(config: &ClusterConfig, ssh: &[Option<SshSession>]) -> Result<ProbeSet> {
        let mut set = ProbeSet::new();
        for i in 0..config.nodes.len() {
            let one = ProbeSet::for_node(config, i, ssh.get(i).cloned().flatten())?;
            set.probes.extend(one.probes);
        }
        Ok(set)
    }

    /// The probes `config` describes for node `index` alone (see [`ProbeSet::from_config`]);
    /// `session` is its open SSH session, if any. The failover controller builds one set per
    /// node so that a node whose SSH is gone does not stop the other's probes.
    pub fn for_node(
        config: &ClusterConfig,
        index: usize,
        session: Option<SshSession>,
    ) -> Result<ProbeSet> {
        let mut set = ProbeSet::new();
        if let Some(node) = config.nodes.get(index) {
            let key = format!("nodes[{index}]");
            let probes = &node.probes;
            let timeout = probes.timeout;
            if let Some(sip) = &probes.sip {
                set.push(SipProbe::from_spec(&node.name, sip, timeout));
            }
            if let Some(http) = &probes.http {
                set.push(HttpProbe::from_spec(&node.name, &key, http, timeout)?);
            }
            if probes.postgres != PgProbeMode::Off {
                if node.postgres.via_ssh && session.is_none() {
                    return Err(Error::PgNeedsSsh {
                        node: node.name.clone(),
                        key: format!("{key}.postgres.via_ssh"),
                    });
                }
                let pg_session = if node.postgres.via_ssh {
                    session.clone()
                } else {
                    None
                };
                set.push(
                    PgProbe::new(&key, node, probes.postgres, pg_session).with_timeout(timeout),
                );
            }
            if let Some(st) = node.syncthing.as_ref().filter(|_| probes.syncthing) {
                let mut p = SyncthingHealthProbe::new(
                    &node.name,
                    &format!("{key}.syncthing.url"),
                    &st.url,
                )?
                .with_timeout(timeout)
                .with_api_key(st.api_key.clone());
                if st.via_ssh {
                    let Some(s) = session.clone() else {
                        return Err(Error::ProbeNeedsSsh {
                            node: node.name.clone(),
                            key: format!("{key}.syncthing.via_ssh"),
                        });
                    };
                    p = p.via_ssh(s);
                }
                set.push(p);
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::ProbeKind;

    fn obs(node: &str, ok: bool) -> Observation {
        Observation {
            node: node.into(),
            kind: ProbeKind::Tcp,
            target: "x:1".into(),
            ok,
            detail: String::new(),
            latency: std::time::Duration::ZERO,
            at: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_round_is_ok_only_when_every_probe_of_the_node_is() {
        let round = [
            obs("a", true),
            obs("b", false),
            obs("a", true),
            obs("b", true),
        ];
        assert_eq!(ProbeSet::round_ok(&round, "a"), Some(true));
        assert_eq!(ProbeSet::round_ok(&round, "b"), Some(false));
        assert_eq!(ProbeSet::round_ok(&round, "c"), None);
    }
}
