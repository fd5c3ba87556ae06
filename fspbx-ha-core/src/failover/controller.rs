//! The failover controller: the I/O loop around the sans-I/O [`FailoverPolicy`].
//!
//! Every `policy.interval` it probes both nodes concurrently (one [`ProbeSet`] per node, so a
//! node whose SSH is gone does not stop the other's probes), feeds each node's round to the
//! policy and carries out what the policy asks:
//! - **flip**: the floating record is pointed at the new node with compare-and-swap against
//!   the value the controller last read or wrote (two controllers cannot both flip the wrong
//!   way: the loser gets a CAS mismatch and re-reads the record), then it waits until the
//!   provider applied it and every authoritative server answers the new value;
//! - **fence**: `failover.fence_commands` over SSH on the node failed away from, after the flip
//!   (in the background) or before it (`failover.fence_before_flip`), bounded by
//!   `failover.fence_timeout`;
//! - **notify**: `failover.notify_command` and/or `failover.webhook`;
//! - **verify**: after a successful flip, `failover.registrations_command` and
//!   `failover.calls_command` are sampled on the new active node for
//!   `failover.registrations_watch` / `failover.calls_watch` in one background task
//!   ([`counts`](super::counts)), each sample a `registrations` or `calls` audit record.
//!
//! Every decision and outcome goes to the audit log (`failover.audit_log`, JSON lines); a
//! [`ControllerStatus`] snapshot feeds `/metrics` and `/health` (`failover.metrics_listen`).
//! The floating record is read at start and every `failover.record_refresh`: it, not the
//! controller's memory, says who is active, so a restarted controller resumes without flapping
//! (and a fresh policy needs `rise` rounds of evidence before it acts at all).

use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use futures_util::future::join_all;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

use super::audit::{AuditLog, AuditRecord};
use super::counts::{self, CountKind, CountWatch};
use super::fence::{FenceReport, fence};
use super::metrics::{ControllerStatus, MetricsServer};
use super::notify::{Notification, Notifier};
use super::preconditions::{self, Measurement, Preconditions};
use super::switchover::{self as steps, StepStatus, SwitchoverStep};
use super::{Action, FailoverPolicy, Health, Input, NodeId, PolicySettings, Requirement};
use crate::config::{ClusterConfig, ConfigProblem, PgProbeMode};
use crate::floating::{FlipOptions, FlipReport, Floating, Target, active_index};
use crate::probe::{Observation, ProbeKind, ProbeSet};
use crate::ssh::SshSession;
use crate::{Error, Result};

/// How long reading the floating record may take.
const RECORD_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for running fences and notifications.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// One node's probing state.
struct NodeRuntime {
    id: NodeId,
    name: String,
    /// Some probe needs the node's SSH session (`postgres.via_ssh`, `syncthing.via_ssh`).
    needs_ssh: bool,
    ssh: Option<SshSession>,
    connecting: Option<JoinHandle<Result<SshSession>>>,
    ssh_error: Option<String>,
    probes: Option<ProbeSet>,
}

impl NodeRuntime {
    fn ssh_target(&self, config: &ClusterConfig) -> crate::ssh::SshTarget {
        let spec = &config.nodes[self.id.index()];
        let mut t = spec.ssh.target(&spec.name);
        // Reconnects are retried every round in the background; one attempt each.
        t.connect_attempts = 1;
        t
    }

    /// A failed observation standing for the probes that cannot run without SSH.
    fn no_ssh(&self, config: &ClusterConfig, why: &str) -> Observation {
        let ssh = &config.nodes[self.id.index()].ssh;
        Observation {
            node: self.name.clone(),
            kind: ProbeKind::Tcp,
            target: format!("ssh {}:{}", ssh.host, ssh.port),
            ok: false,
            detail: format!(
                "no SSH session for the probes that go through it (postgres.via_ssh / \
                 syncthing.via_ssh): {why}"
            ),
            latency: Duration::ZERO,
            at: SystemTime::now(),
        }
    }

    /// The probe set for this round, or the failed observation that stands for it.
    fn prepare(&mut self, config: &ClusterConfig) -> std::result::Result<ProbeSet, Observation> {
        if self.needs_ssh {
            if self.ssh.as_ref().is_some_and(SshSession::is_closed) {
                self.ssh = None;
                self.probes = None;
                self.ssh_error = Some("the SSH connection closed".into());
            }
            if self.ssh.is_none() {
                let finished = self.connecting.as_ref().is_some_and(|h| h.is_finished());
                if finished
                    && let Some(done) = self.connecting.take().and_then(FutureExt::now_or_never)
                {
                    match done {
                        Ok(Ok(s)) => {
                            self.ssh = Some(s);
                            self.ssh_error = None;
                            self.probes = None;
                        }
                        Ok(Err(e)) => self.ssh_error = Some(e.to_string()),
                        Err(e) => self.ssh_error = Some(format!("connect task failed: {e}")),
                    }
                }
                if self.ssh.is_none() {
                    if self.connecting.is_none() {
                        let target = self.ssh_target(config);
                        self.connecting =
                            Some(tokio::spawn(
                                async move { SshSession::connect(&target).await },
                            ));
                    }
                    let why = self
                        .ssh_error
                        .clone()
                        .unwrap_or_else(|| "connecting".into());
                    return Err(self.no_ssh(config, &why));
                }
            }
        }
        if self.probes.is_none() {
            match ProbeSet::for_node(config, self.id.index(), self.ssh.clone()) {
                Ok(p) => self.probes = Some(p),
                Err(e) => return Err(self.no_ssh(config, &e.to_string())),
            }
        }
        Ok(self.probes.clone().unwrap_or_default())
    }
}

/// What the last flip did.
#[derive(Debug, Clone, Serialize)]
pub struct FlipOutcome {
    /// The node flipped from (as the record said).
    pub from: Option<String>,
    /// The node flipped to.
    pub to: String,
    /// Why.
    pub reason: String,
    /// The provider applied it (false: failed, nothing changed or unknown).
    pub ok: bool,
    /// Time from the decision until every authoritative server answered (or the failure).
    #[serde(with = "humantime_serde")]
    pub elapsed: Duration,
    /// The flip report when it succeeded.
    pub report: Option<FlipReport>,
    /// The error when it failed.
    pub error: Option<String>,
}

/// What [`Controller::switchover`] did.
#[derive(Debug, Clone, Serialize)]
pub struct SwitchoverReport {
    /// The target node.
    pub to: String,
    /// The node active before.
    pub from: Option<String>,
    /// `flipped`, `would_flip` (dry run) or `already_active`.
    pub outcome: &'static str,
    /// Both nodes' health as measured before deciding (A first).
    pub health: [Health; 2],
    /// The flip, when one ran.
    pub flip: Option<FlipOutcome>,
    /// Fencing of the node switched away from, when asked for.
    pub fence: Option<FenceReport>,
    /// Every step in the order run (health, replication, catch_up, sequences, flip, drain,
    /// fence); in a dry run what each would do.
    pub steps: Vec<SwitchoverStep>,
    /// From the request until the report (the whole switchover).
    #[serde(with = "humantime_serde")]
    pub elapsed: Duration,
}

/// The failover controller. Build with [`Controller::new`], then [`Controller::run`] until a
/// shutdown future completes, or [`Controller::switchover`] once.
pub struct Controller {
    config: ClusterConfig,
    floating: Floating,
    policy: FailoverPolicy,
    audit: Arc<AuditLog>,
    notifier: Notifier,
    status: Arc<Mutex<ControllerStatus>>,
    nodes: [NodeRuntime; 2],
    /// What the floating record held at the last read or flip (the CAS guard).
    record: Vec<IpAddr>,
    record_read: Option<Instant>,
    record_error: Option<String>,
    last_fence: [Option<Instant>; 2],
    last_flip: Option<FlipOutcome>,
    tasks: JoinSet<()>,
    /// The registrations and calls watch after the last flip (replaced by the next flip,
    /// aborted at the end of `run`).
    counts: Option<tokio::task::JoinHandle<()>>,
    metrics: Option<MetricsServer>,
    preconditions: Option<mpsc::UnboundedReceiver<Measurement>>,
    preconditions_seen: Option<String>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("floating", &self.floating.name())
            .field("audit", &self.audit.path())
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

fn node_of(i: usize) -> NodeId {
    if i == 0 { NodeId::A } else { NodeId::B }
}

impl Controller {
    /// A controller for `config`: builds the DNS provider (secret references resolved now),
    /// opens the audit log and binds the metrics listener when configured.
    pub async fn new(config: ClusterConfig) -> Result<Controller> {
        let floating = Floating::new(&config)?;
        Controller::with_floating(config, floating).await
    }

    /// Like [`Controller::new`] with a [`Floating`] of the caller's (e.g. a custom provider).
    pub async fn with_floating(config: ClusterConfig, floating: Floating) -> Result<Controller> {
        let problems: Vec<ConfigProblem> = config
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                let p = &n.probes;
                p.sip.is_none()
                    && p.http.is_none()
                    && p.postgres == PgProbeMode::Off
                    && !(p.syncthing && n.syncthing.is_some())
            })
            .map(|(i, _)| {
                ConfigProblem::new(
                    format!("nodes[{i}].probes"),
                    "at least one probe (sip, http, postgres or syncthing) to judge the node by",
                    "none",
                )
            })
            .chain((config.nodes.len() != 2).then(|| {
                ConfigProblem::new(
                    "nodes",
                    "exactly 2 [[nodes]] entries",
                    config.nodes.len().to_string(),
                )
            }))
            .collect();
        if !problems.is_empty() {
            return Err(Error::ConfigInvalid {
                origin: "<failover controller>".into(),
                problems,
            });
        }
        let audit = Arc::new(AuditLog::open(&config.failover.audit_log)?);
        let metrics = match config.failover.metrics_listen {
            Some(addr) => Some(MetricsServer::bind(addr).await?),
            None => None,
        };
        let names: Vec<String> = config.nodes.iter().map(|n| n.name.clone()).collect();
        let nodes = [0, 1].map(|i| {
            let n = &config.nodes[i];
            NodeRuntime {
                id: node_of(i),
                name: n.name.clone(),
                needs_ssh: (n.postgres.via_ssh && n.probes.postgres != PgProbeMode::Off)
                    || n.syncthing
                        .as_ref()
                        .is_some_and(|s| s.via_ssh && n.probes.syncthing),
                ssh: None,
                connecting: None,
                ssh_error: None,
                probes: None,
            }
        });
        Ok(Controller {
            policy: FailoverPolicy::new(PolicySettings::from_config(&config)),
            notifier: Notifier::from_spec(&config.failover)?,
            status: Arc::new(Mutex::new(ControllerStatus::new(
                config.policy.interval,
                &names,
            ))),
            audit,
            floating,
            nodes,
            record: vec![],
            record_read: None,
            record_error: None,
            last_fence: [None, None],
            counts: None,
            last_flip: None,
            tasks: JoinSet::new(),
            metrics,
            preconditions: None,
            preconditions_seen: None,
            config,
        })
    }

    /// The shared status snapshot (what `/metrics` and `/health` serve); stays valid after
    /// [`Controller::run`] consumed the controller.
    pub fn status_handle(&self) -> Arc<Mutex<ControllerStatus>> {
        self.status.clone()
    }

    /// A copy of the current status.
    pub fn status(&self) -> ControllerStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Where `/metrics` and `/health` are served, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(MetricsServer::local_addr)
    }

    /// The policy (its view of both nodes).
    pub fn policy(&self) -> &FailoverPolicy {
        &self.policy
    }

    /// The audit log's path.
    pub fn audit_path(&self) -> &std::path::Path {
        self.audit.path()
    }

    /// Runs until `shutdown` completes: probe rounds every `policy.interval`, the floating
    /// record re-read every `failover.record_refresh`, preconditions measured in the
    /// background. Returns the final status. Stopping mid-flip is safe: the next start reads
    /// the record and converges.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<ControllerStatus> {
        let interval = self.config.policy.interval;
        self.audit.write(
            &AuditRecord::new(
                "start",
                "info",
                format!(
                    "controller started: interval {interval:?}, rise {}, fall {}, floating {}",
                    self.config.policy.rise,
                    self.config.policy.fall,
                    self.floating.name()
                ),
            )
            .detail(self.policy.settings()),
        );
        let metrics_task = self.metrics.take().map(|m| {
            let stale = interval * 3 + self.max_probe_timeout() + Duration::from_secs(1);
            tokio::spawn(m.serve(self.status.clone(), stale))
        });
        let preconditions_task = self.start_preconditions();
        self.connect_ssh_initially().await;

        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = self.step() => {}
            }
        }

        if let Some(t) = preconditions_task {
            t.abort();
        }
        if let Some(t) = metrics_task {
            t.abort();
        }
        if let Some(t) = self.counts.take() {
            t.abort();
        }
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
        for n in &mut self.nodes {
            if let Some(h) = n.connecting.take() {
                h.abort();
            }
            if let Some(s) = n.ssh.take() {
                let _ = tokio::time::timeout(Duration::from_secs(1), s.close()).await;
            }
        }
        let status = self.status();
        self.audit.write(
            &AuditRecord::new(
                "stop",
                "info",
                format!("controller stopped after {} rounds", status.rounds),
            )
            .detail(serde_json::json!({
                "rounds": status.rounds,
                "flips_ok": status.flips_ok,
                "flips_failed": status.flips_failed,
            })),
        );
        Ok(status)
    }

    /// A planned move of the floating record to `to`:
    /// 1. both nodes measured for `rise` rounds, up to `rise + fall` while the target is not
    ///    yet `Up` (and the preconditions once); the policy must allow the move (target
    ///    healthy, gates hold);
    /// 2. replication healthy both ways, then **caught up**: a heartbeat written on the active
    ///    node now is visible on `to`; then `to`'s **sequences moved** to the active node's
    ///    last values + [`steps::SEQUENCE_MARGIN`] (all three when `failover.lag` is `hard`
    ///    or `soft`: hard refuses on failure, soft says so and goes on; `off` skips them);
    /// 3. the flip (compare-and-swap, until every authoritative server answers `to`);
    /// 4. a drain: a second heartbeat from the old node and a second sequence move;
    /// 5. with `fence_old`, `failover.fence_commands` on the old node (e.g. stop FreeSWITCH).
    ///
    /// `dry_run` measures, reports every step as it would run, and changes nothing (no
    /// heartbeat beyond `replication status`'s, no sequence, no record). Refused (target not
    /// healthy, a hard precondition unmet, the target behind, a flip in progress) is
    /// [`Error::SwitchoverRefused`]; nothing changes then.
    pub async fn switchover(
        &mut self,
        to: NodeId,
        dry_run: bool,
        fence_old: bool,
    ) -> Result<SwitchoverReport> {
        let begun = Instant::now();
        let to_name = self.config.nodes[to.index()].name.clone();
        self.audit.write(
            &AuditRecord::new(
                "switchover",
                "info",
                format!(
                    "switchover to node {to_name} requested{}",
                    if dry_run { " (dry run)" } else { "" }
                ),
            )
            .node(&to_name),
        );
        self.connect_ssh_initially().await;
        let actions = self.refresh_record().await;
        self.execute(actions).await;
        let from = self
            .policy
            .active()
            .map(|n| self.config.nodes[n.index()].name.clone());
        if preconditions::measured(&self.config) {
            let m = Preconditions::new().measure(&self.config).await;
            self.feed_preconditions(m).await;
        }
        // `rise` rounds make a healthy target `Up`; one slow answer among them (a loaded
        // machine) is given up to `fall` more rounds before the switchover is refused.
        let (rise, fall) = (
            self.config.policy.rise.max(1),
            self.config.policy.fall.max(1),
        );
        for i in 0..rise + fall {
            if i > 0 {
                tokio::time::sleep(self.config.policy.interval).await;
            }
            self.round().await;
            let last_ok = self.status().nodes[to.index()].last_round_ok == Some(true);
            if i + 1 >= rise && last_ok && self.policy.health(to) == Health::Up {
                break;
            }
        }
        let health = [self.policy.health(NodeId::A), self.policy.health(NodeId::B)];
        // The decision is taken on a copy: only a switchover that goes ahead (not a dry run, not
        // one refused by the replication steps) leaves the policy with a flip pending.
        let mut decided = self.policy.clone();
        let actions = decided.handle(Input::SwitchoverRequest { to }, Instant::now());
        let flips = actions.iter().any(|a| matches!(a, Action::FlipDns { .. }));
        if !flips {
            let reason = actions
                .iter()
                .find_map(|a| match a {
                    Action::Notify { message, .. } => Some(message.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| "the policy asked for nothing".into());
            if self.policy.active() == Some(to) {
                return Ok(SwitchoverReport {
                    to: to_name,
                    from,
                    outcome: "already_active",
                    health,
                    flip: None,
                    fence: None,
                    steps: vec![SwitchoverStep::new(
                        "health",
                        StepStatus::Done,
                        format!(
                            "node {} is already active",
                            self.config.nodes[to.index()].name
                        ),
                        begun,
                    )],
                    elapsed: begun.elapsed(),
                });
            }
            self.audit.write(
                &AuditRecord::new("switchover", "warning", format!("refused: {reason}"))
                    .node(&to_name),
            );
            return Err(Error::SwitchoverRefused {
                to: to_name,
                reason,
            });
        }
        let mut done = vec![SwitchoverStep::new(
            "health",
            StepStatus::Done,
            format!(
                "node A {:?}, node B {:?}: the policy allows the move",
                health[0], health[1]
            ),
            begun,
        )];
        let from_i = to.other().index();
        let pair = match self.config.failover.lag {
            Requirement::Off => {
                done.push(SwitchoverStep::new(
                    "replication",
                    StepStatus::Skipped,
                    "failover.lag is off: no catch-up wait, no sequence move",
                    Instant::now(),
                ));
                None
            }
            gate => match steps::before_flip(&self.config, from_i, to.index(), dry_run, &mut done)
                .await
            {
                Ok(p) => Some(p),
                Err(reason) if gate == Requirement::Hard => {
                    self.audit.write(
                        &AuditRecord::new("switchover", "warning", format!("refused: {reason}"))
                            .node(&to_name)
                            .detail(&done),
                    );
                    return Err(Error::SwitchoverRefused {
                        to: to_name,
                        reason,
                    });
                }
                Err(reason) => {
                    self.audit.write(
                        &AuditRecord::new(
                            "switchover",
                            "warning",
                            format!("going on although (failover.lag is soft): {reason}"),
                        )
                        .node(&to_name),
                    );
                    None
                }
            },
        };
        if dry_run {
            done.push(SwitchoverStep::new(
                "flip",
                StepStatus::WouldDo,
                format!(
                    "would flip the floating record {} from node {} to node {to_name} and wait                      until every authoritative server answers it",
                    self.floating.name(),
                    from.as_deref().unwrap_or("?")
                ),
                Instant::now(),
            ));
            if pair.is_some() {
                done.push(SwitchoverStep::new(
                    "drain",
                    StepStatus::WouldDo,
                    "would wait for a heartbeat from the old node again and move the sequences                      again",
                    Instant::now(),
                ));
            }
            if fence_old {
                done.push(SwitchoverStep::new(
                    "fence",
                    StepStatus::WouldDo,
                    format!(
                        "would run {} fence command(s) on node {}",
                        self.config.failover.fence_commands.len(),
                        self.config.nodes[from_i].name
                    ),
                    Instant::now(),
                ));
            }
            self.audit.write(
                &AuditRecord::new(
                    "switchover",
                    "info",
                    format!("dry run: would flip the floating record to node {to_name}"),
                )
                .node(&to_name)
                .detail(&done),
            );
            return Ok(SwitchoverReport {
                to: to_name,
                from,
                outcome: "would_flip",
                health,
                flip: None,
                fence: None,
                steps: done,
                elapsed: begun.elapsed(),
            });
        }
        self.policy = decided;
        self.execute(actions).await;
        let flip = self.last_flip.clone();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        match flip {
            Some(f) if f.ok => {
                let propagated = f.report.as_ref().is_some_and(FlipReport::ok);
                done.push(SwitchoverStep {
                    step: "flip",
                    status: if propagated {
                        StepStatus::Done
                    } else {
                        StepStatus::Failed
                    },
                    detail: if propagated {
                        format!("every authoritative server answers node {to_name}")
                    } else {
                        format!(
                            "the record holds node {to_name}, but some authoritative server                              still answered the old value"
                        )
                    },
                    elapsed: f.elapsed,
                    sequences: vec![],
                });
                if let Some(pair) = &pair {
                    steps::after_flip(pair, from_i, to.index(), &mut done).await;
                }
                let fence = if fence_old {
                    let started = Instant::now();
                    let r = self.fence_now(to.other()).await;
                    done.push(SwitchoverStep::new(
                        "fence",
                        match &r {
                            Some(r) if r.ok() => StepStatus::Done,
                            Some(_) => StepStatus::Failed,
                            None => StepStatus::Skipped,
                        },
                        match &r {
                            Some(r) => format!(
                                "node {}: {}",
                                r.node,
                                r.error.clone().unwrap_or_else(|| format!(
                                    "{} command(s) run",
                                    r.commands.len()
                                ))
                            ),
                            None => "no fence command configured, or fenced just now".into(),
                        },
                        started,
                    ));
                    r
                } else {
                    None
                };
                self.audit.write(
                    &AuditRecord::new(
                        "switchover",
                        "info",
                        format!(
                            "switched over to node {to_name} in {:.0} ms",
                            begun.elapsed().as_secs_f64() * 1000.0
                        ),
                    )
                    .node(&to_name)
                    .detail(&done),
                );
                Ok(SwitchoverReport {
                    to: to_name,
                    from,
                    outcome: "flipped",
                    health,
                    flip: Some(f),
                    fence,
                    steps: done,
                    elapsed: begun.elapsed(),
                })
            }
            Some(f) => Err(Error::SwitchoverRefused {
                to: to_name,
                reason: f.error.unwrap_or_else(|| "the flip failed".into()),
            }),
            None => Err(Error::SwitchoverRefused {
                to: to_name,
                reason: "no flip was carried out".into(),
            }),
        }
    }

    fn max_probe_timeout(&self) -> Duration {
        self.config
            .nodes
            .iter()
            .map(|n| {
                let p = &n.probes;
                [
                    Some(p.timeout),
                    p.sip.as_ref().and_then(|s| s.timeout),
                    p.http.as_ref().and_then(|h| h.timeout),
                ]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(p.timeout)
            })
            .max()
            .unwrap_or(Duration::from_secs(1))
    }

    /// Opens the SSH sessions the probes need, concurrently, before the first round.
    async fn connect_ssh_initially(&mut self) {
        let config = &self.config;
        let attempts = self.nodes.iter().map(|n| {
            let target = n.ssh_target(config);
            let needs = n.needs_ssh && n.ssh.is_none();
            async move {
                if needs {
                    Some(SshSession::connect(&target).await)
                } else {
                    None
                }
            }
        });
        let results = join_all(attempts).await;
        for (n, r) in self.nodes.iter_mut().zip(results) {
            match r {
                Some(Ok(s)) => n.ssh = Some(s),
                Some(Err(e)) => n.ssh_error = Some(e.to_string()),
                None => {}
            }
        }
    }

    fn start_preconditions(&mut self) -> Option<JoinHandle<()>> {
        if !preconditions::measured(&self.config) {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.preconditions = Some(rx);
        let config = self.config.clone();
        let every = config.failover.preconditions_interval;
        Some(tokio::spawn(async move {
            let mut gates = Preconditions::new();
            loop {
                let m = match tokio::time::timeout(every, gates.measure(&config)).await {
                    Ok(m) => m,
                    Err(_) => {
                        gates = Preconditions::new();
                        Measurement {
                            inputs: vec![],
                            problems: vec![format!("the measurement took longer than {every:?}")],
                        }
                    }
                };
                if tx.send(m).is_err() {
                    break;
                }
                tokio::time::sleep(every).await;
            }
        }))
    }

    /// Feeds a measurement to the policy; what it found and what it could not measure are
    /// audited when they differ from the last measurement.
    async fn feed_preconditions(&mut self, m: Measurement) {
        let seen = format!("{:?} {:?}", m.inputs, m.problems);
        if self.preconditions_seen.as_deref() != Some(&seen) {
            if !m.inputs.is_empty() {
                self.audit.write(
                    &AuditRecord::new("preconditions", "info", "preconditions measured")
                        .detail(&m.inputs),
                );
            }
            for p in &m.problems {
                self.audit.write(&AuditRecord::new(
                    "preconditions",
                    "warning",
                    format!("cannot measure (the last measurement stays in force): {p}"),
                ));
            }
            self.preconditions_seen = Some(seen);
        }
        for input in m.inputs {
            let actions = self.policy.handle(input, Instant::now());
            self.execute(actions).await;
        }
    }

    /// One iteration: preconditions that arrived, the record if due, a probe round, a tick.
    async fn step(&mut self) {
        let mut arrived = vec![];
        if let Some(rx) = self.preconditions.as_mut() {
            while let Ok(r) = rx.try_recv() {
                arrived.push(r);
            }
        }
        for m in arrived {
            self.feed_preconditions(m).await;
        }
        if self
            .record_read
            .is_none_or(|t| t.elapsed() >= self.config.failover.record_refresh)
        {
            let actions = self.refresh_record().await;
            self.execute(actions).await;
        }
        self.round().await;
        let actions = self.policy.tick(Instant::now());
        self.execute(actions).await;
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        st.rounds += 1;
        st.last_round_at = Some(SystemTime::now());
        st.pending_flip = self
            .policy
            .pending_flip()
            .map(|n| self.config.nodes[n.index()].name.clone());
        for (i, n) in st.nodes.iter_mut().enumerate() {
            n.health = self.policy.health(node_of(i));
        }
    }

    /// Probes both nodes concurrently and feeds each node's verdict to the policy.
    async fn round(&mut self) {
        let config = &self.config;
        let sets: Vec<_> = self.nodes.iter_mut().map(|n| n.prepare(config)).collect();
        let results = join_all(sets.into_iter().map(|s| async move {
            match s {
                Ok(set) => set.run_all().await,
                Err(o) => vec![o],
            }
        }))
        .await;
        for (i, observations) in results.into_iter().enumerate() {
            let ok = !observations.is_empty() && observations.iter().all(|o| o.ok);
            let node = node_of(i);
            let changed = {
                let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
                let n = &mut st.nodes[i];
                let changed = n.last_round_ok != Some(ok);
                n.last_round_ok = Some(ok);
                n.observations = observations.clone();
                changed
            };
            if changed {
                let failed: Vec<String> = observations
                    .iter()
                    .filter(|o| !o.ok)
                    .map(|o| format!("{} {}: {}", o.kind, o.target, o.detail))
                    .collect();
                let name = &self.config.nodes[i].name;
                self.audit.write(
                    &AuditRecord::new(
                        "round",
                        if ok { "info" } else { "warning" },
                        if ok {
                            format!("node {name}: every probe passes")
                        } else {
                            format!("node {name}: {}", failed.join("; "))
                        },
                    )
                    .node(name)
                    .detail(&observations),
                );
            }
            let actions = self
                .policy
                .handle(Input::ProbeRound { node, ok }, Instant::now());
            self.execute(actions).await;
        }
    }

    /// Reads the floating record and tells the policy who is active; returns its actions.
    async fn refresh_record(&mut self) -> Vec<Action> {
        let name = self.floating.name().to_owned();
        let p = self.floating.provider();
        let mut values = vec![];
        let mut error = None;
        for kind in [fspbx_ha_dns::RecordKind::A, fspbx_ha_dns::RecordKind::Aaaa] {
            match tokio::time::timeout(RECORD_READ_TIMEOUT, p.get(&name, kind)).await {
                Ok(Ok(Some(rs))) => values.extend(rs.values),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => error = Some(e.to_string()),
                Err(_) => error = Some(format!("no answer within {RECORD_READ_TIMEOUT:?}")),
            }
        }
        self.record_read = Some(Instant::now());
        if let Some(e) = error {
            if self.record_error.as_deref() != Some(&e) {
                self.audit.write(&AuditRecord::new(
                    "record",
                    "warning",
                    format!(
                        "cannot read the floating record {name} (the last value stays in \
                         force): {e}"
                    ),
                ));
                self.record_error = Some(e.clone());
            }
            self.status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record_error = Some(e);
            return vec![];
        }
        self.record_error = None;
        let active = active_index(self.floating.nodes(), &values).map(node_of);
        let active_name = active.map(|n| self.config.nodes[n.index()].name.clone());
        let first = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .active
            .is_none()
            && self.record.is_empty();
        if first || values != self.record {
            let (level, message) = match &active_name {
                Some(n) => ("info", format!("floating record {name} points at node {n}")),
                None if values.is_empty() => (
                    "warning",
                    format!("floating record {name} does not exist: nothing to fail over"),
                ),
                None => (
                    "warning",
                    format!("floating record {name} points at neither node: {values:?}"),
                ),
            };
            let mut r = AuditRecord::new("record", level, message).detail(&values);
            if let Some(n) = &active_name {
                r = r.node(n);
            }
            self.audit.write(&r);
        }
        self.record = values;
        {
            let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
            st.active = active_name;
            st.record_error = None;
        }
        self.policy
            .handle(Input::FloatingRecord { active }, Instant::now())
    }

    /// Carries out `actions` (and whatever their outcomes lead the policy to ask).
    async fn execute(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        let mut fence_after = vec![];
        while let Some(action) = queue.pop_front() {
            let (level, message, node) = match &action {
                Action::Notify { level, message } => (*level, message.clone(), None),
                Action::Fence { node } => (
                    "warning",
                    format!("fence node {}", self.config.nodes[node.index()].name),
                    Some(*node),
                ),
                Action::FlipDns { to, reason, .. } => (
                    "warning",
                    format!(
                        "flip the floating record to node {}: {reason}",
                        self.config.nodes[to.index()].name
                    ),
                    Some(*to),
                ),
            };
            let mut r = AuditRecord::new("decision", level, &message).detail(&action);
            if let Some(n) = node {
                r = r.node(&self.config.nodes[n.index()].name);
            }
            self.audit.write(&r);
            if level == "critical" {
                self.status
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .last_alert = Some(message.clone());
            }
            match action {
                Action::Notify { level, message } => self.notify(level, "decision", message),
                Action::Fence { node } => {
                    if self.config.failover.fence_before_flip {
                        self.fence_now(node).await;
                    } else {
                        fence_after.push(node);
                    }
                }
                Action::FlipDns { from, to, reason } => {
                    let more = self.flip(from, to, reason).await;
                    queue.extend(more);
                }
            }
        }
        for node in fence_after {
            self.spawn_fence(node);
        }
    }

    fn notify(&mut self, level: &str, event: &str, message: String) {
        if self.notifier.is_empty() {
            return;
        }
        let n = Notification {
            level: level.to_owned(),
            event: event.to_owned(),
            message,
            at: SystemTime::now(),
        };
        let notifier = self.notifier.clone();
        let audit = self.audit.clone();
        let status = self.status.clone();
        self.tasks.spawn(async move {
            let failures = notifier.send(&n).await;
            status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .notifications += 1;
            for f in failures {
                audit.write(&AuditRecord::new("notify_failed", "warning", f).detail(&n));
            }
        });
    }

    /// Whether `node` was fenced recently enough that a repeated request is skipped.
    fn fenced_recently(&self, node: NodeId) -> bool {
        self.last_fence[node.index()]
            .is_some_and(|t| t.elapsed() < self.config.failover.fence_timeout * 3)
    }

    fn fence_task(
        &mut self,
        node: NodeId,
    ) -> Option<impl Future<Output = FenceReport> + Send + 'static> {
        if self.fenced_recently(node) || self.config.failover.fence_commands.is_empty() {
            return None;
        }
        self.last_fence[node.index()] = Some(Instant::now());
        let spec = self.config.nodes[node.index()].clone();
        let commands = self.config.failover.fence_commands.clone();
        let timeout = self.config.failover.fence_timeout;
        let audit = self.audit.clone();
        let status = self.status.clone();
        Some(async move {
            let report = fence(&spec, &commands, timeout).await;
            status.lock().unwrap_or_else(|p| p.into_inner()).fences += 1;
            let message = if report.ok() {
                format!("node {} fenced in {:?}", spec.name, report.elapsed)
            } else {
                format!(
                    "fencing node {} incomplete: {}",
                    spec.name,
                    report
                        .error
                        .clone()
                        .unwrap_or_else(|| "a command failed".into())
                )
            };
            audit.write(
                &AuditRecord::new(
                    "fence",
                    if report.ok() { "info" } else { "warning" },
                    message,
                )
                .node(&spec.name)
                .detail(&report),
            );
            report
        })
    }

    async fn fence_now(&mut self, node: NodeId) -> Option<FenceReport> {
        match self.fence_task(node) {
            Some(task) => Some(task.await),
            None => None,
        }
    }

    fn spawn_fence(&mut self, node: NodeId) {
        if let Some(task) = self.fence_task(node) {
            self.tasks.spawn(async move {
                task.await;
            });
        }
    }

    /// Starts counting registrations and calls on `node` (the new active node) in the
    /// background, replacing the watch of an earlier flip; nothing when both watches are `0s`.
    fn watch_counts(&mut self, node: NodeId) {
        if let Some(t) = self.counts.take() {
            t.abort();
        }
        let mut watches = vec![];
        for kind in CountKind::ALL {
            match CountWatch::from_spec(&self.config.failover, kind) {
                Ok(Some(w)) => watches.push(w),
                Ok(None) => {}
                Err(e) => self.audit.write(&AuditRecord::new(
                    kind.event(),
                    "warning",
                    format!("{kind} not counted: {e}"),
                )),
            }
        }
        if watches.is_empty() {
            return;
        }
        let spec = self.config.nodes[node.index()].clone();
        self.counts = Some(tokio::spawn(counts::watch(
            spec,
            watches,
            Instant::now(),
            self.audit.clone(),
        )));
    }

    /// Flips the record to `to` with compare-and-swap against what it held when last read;
    /// returns what the policy asks after hearing the outcome.
    async fn flip(&mut self, from: Option<NodeId>, to: NodeId, reason: String) -> Vec<Action> {
        let spec = &self.config.nodes[to.index()];
        let to_name = spec.name.clone();
        let target = Target {
            node: Some(to_name.clone()),
            addresses: spec.addresses.clone(),
        };
        let flip_timeout = self.config.failover.flip_timeout;
        let options = FlipOptions {
            expect: Some(self.record.clone()),
            ttl: None,
            timeout: flip_timeout,
            wait_for_servers: true,
        };
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pending_flip = Some(to_name.clone());
        let started = Instant::now();
        let result = tokio::time::timeout(
            flip_timeout + Duration::from_secs(1),
            self.floating.flip(&target, &options),
        )
        .await;
        let elapsed = started.elapsed();
        let from_name = from.map(|n| self.config.nodes[n.index()].name.clone());
        let mut outcome = FlipOutcome {
            from: from_name,
            to: to_name.clone(),
            reason,
            ok: false,
            elapsed,
            report: None,
            error: None,
        };
        let mut cas_lost = false;
        match result {
            Ok(Ok(report)) => {
                outcome.ok = true;
                self.record = target.addresses.clone();
                self.record_read = Some(Instant::now());
                let (level, message) = if report.ok() {
                    (
                        "info",
                        format!(
                            "floating record flipped to node {to_name}; every authoritative \
                             server answers it after {:.0} ms",
                            elapsed.as_secs_f64() * 1000.0
                        ),
                    )
                } else {
                    (
                        "warning",
                        format!(
                            "floating record flipped to node {to_name}, but some authoritative \
                             server still answered the old value after {flip_timeout:?}"
                        ),
                    )
                };
                outcome.report = Some(report);
                self.audit.write(
                    &AuditRecord::new("flip", level, &message)
                        .node(&to_name)
                        .detail(&outcome),
                );
                let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
                st.flips_ok += 1;
                st.active = Some(to_name.clone());
                st.pending_flip = None;
                drop(st);
                self.notify(level, "flip", message);
                self.watch_counts(to);
            }
            Ok(Err(e)) => {
                cas_lost = matches!(
                    &e,
                    Error::Dns { source } if matches!(source.as_ref(), fspbx_ha_dns::Error::CasMismatch { .. })
                );
                outcome.error = Some(e.to_string());
            }
            Err(_) => {
                outcome.error = Some(format!(
                    "the flip did not finish within {:?}",
                    flip_timeout + Duration::from_secs(1)
                ));
            }
        }
        if !outcome.ok {
            let message = if cas_lost {
                format!(
                    "flip to node {to_name} NOT done: the floating record changed under us \
                     (someone else flipped it); re-reading it: {}",
                    outcome.error.clone().unwrap_or_default()
                )
            } else {
                format!(
                    "flip to node {to_name} FAILED; it will be retried while the conditions \
                     hold: {}",
                    outcome.error.clone().unwrap_or_default()
                )
            };
            self.audit.write(
                &AuditRecord::new("flip_failed", "critical", &message)
                    .node(&to_name)
                    .detail(&outcome),
            );
            let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
            st.flips_failed += 1;
            st.pending_flip = None;
            st.last_alert = Some(message.clone());
            drop(st);
            self.notify("critical", "flip_failed", message);
        }
        let ok = outcome.ok;
        self.last_flip = Some(outcome);
        let mut actions = vec![];
        if !ok {
            // The record is the truth: learn what it holds now, before the policy hears of the
            // failure and decides again (a retry must be guarded by the current value, and
            // must not happen at all when someone else moved the record).
            actions.extend(self.refresh_record().await);
        }
        actions.extend(
            self.policy
                .handle(Input::FlipResult { to, ok }, Instant::now()),
        );
        actions
    }
}
