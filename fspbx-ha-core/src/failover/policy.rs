//! The failover state machine.
//!
//! Rules:
//! - A node is `Up` after `rise` consecutive good probe rounds and `Down` after `fall`
//!   consecutive bad ones; before either it is `Unknown`, and an unknown node is never failed
//!   over to nor away from. After a restart the policy therefore waits for evidence instead of
//!   flapping.
//! - The active node is what the floating record says ([`Input::FloatingRecord`]), never what
//!   the policy last wished.
//! - Fail over when the active node is `Down`, the other node is `Up`, no flip is pending, the
//!   hold-down since the last flip has passed, and every hard precondition holds (replication
//!   lag below the limit at the last check, no schema drift, Syncthing complete). An unmet soft
//!   precondition lets the flip happen and says so in a notification.
//! - No automatic failback unless `auto_failback`; then only to the preferred node when it is
//!   `Up`, the current node is healthy too, and the hold-down has passed.
//! - A manual switchover needs the target `Up` and the hard preconditions; it ignores the
//!   hold-down (an operator asked for it).
//! - One flip at a time: after [`Action::FlipDns`] the policy waits for [`Input::FlipResult`].

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One of the two nodes: the preferred primary (`A`) or the standby (`B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum NodeId {
    /// The first node of the configuration (preferred primary).
    A,
    /// The second node (standby).
    B,
}

impl NodeId {
    /// The other node.
    pub fn other(self) -> NodeId {
        match self {
            NodeId::A => NodeId::B,
            NodeId::B => NodeId::A,
        }
    }

    /// 0 for A, 1 for B (the position in the configuration).
    pub fn index(self) -> usize {
        match self {
            NodeId::A => 0,
            NodeId::B => 1,
        }
    }
}

/// How strictly a precondition gates a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Requirement {
    /// No flip while it is unmet.
    Hard,
    /// Flip anyway, but say so.
    Soft,
    /// Not considered.
    Off,
}

/// A precondition of a failover to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Precondition {
    /// The target's replication lag is below the limit at the last check.
    ReplicationLag,
    /// The two schemas do not differ.
    SchemaParity,
    /// The target's Syncthing folders are complete.
    SyncComplete,
}

/// Settings of the policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicySettings {
    /// Consecutive good rounds before `Up`.
    pub rise: u32,
    /// Consecutive bad rounds before `Down`.
    pub fall: u32,
    /// Minimum time between two automatic flips.
    pub hold_down: Duration,
    /// Flip back to the preferred node on its own.
    pub auto_failback: bool,
    /// The preferred node.
    pub preferred: NodeId,
    /// Largest acceptable replication lag of the target.
    pub max_replication_lag: Duration,
    /// Gate on replication lag.
    pub lag_requirement: Requirement,
    /// Gate on schema parity.
    pub schema_requirement: Requirement,
    /// Gate on Syncthing completion.
    pub sync_requirement: Requirement,
    /// How long a requested flip may stay unanswered before it may be requested again.
    pub flip_timeout: Duration,
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            rise: 2,
            fall: 3,
            hold_down: Duration::from_secs(300),
            auto_failback: false,
            preferred: NodeId::A,
            max_replication_lag: Duration::from_secs(10),
            lag_requirement: Requirement::Hard,
            schema_requirement: Requirement::Hard,
            sync_requirement: Requirement::Soft,
            flip_timeout: Duration::from_secs(30),
        }
    }
}

/// What the policy is told.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Input {
    /// One round of a node's required probes: `ok` when every required probe succeeded.
    ProbeRound {
        /// The node.
        node: NodeId,
        /// All required probes answered correctly.
        ok: bool,
    },
    /// What the floating record points at now (`None`: at neither node).
    FloatingRecord {
        /// The node whose address the record holds.
        active: Option<NodeId>,
    },
    /// Replication lag into `node` at the last check (`None`: unknown).
    ReplicationLag {
        /// The node receiving changes.
        node: NodeId,
        /// The measured lag.
        lag: Option<Duration>,
    },
    /// Whether the two schemas differ.
    SchemaDrift {
        /// True when they differ.
        drift: bool,
    },
    /// Whether `node`'s Syncthing folders are complete.
    SyncComplete {
        /// The node.
        node: NodeId,
        /// Complete.
        complete: bool,
    },
    /// An operator asks to move the floating record to `to`.
    SwitchoverRequest {
        /// The target.
        to: NodeId,
    },
    /// The outcome of a [`Action::FlipDns`] the caller executed.
    FlipResult {
        /// The target of the flip.
        to: NodeId,
        /// The provider applied it.
        ok: bool,
    },
}

/// What the policy asks the caller to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Action {
    /// Point the floating record at `to`, with compare-and-swap against `from`.
    FlipDns {
        /// The node the record is expected to hold now.
        from: Option<NodeId>,
        /// The new active node.
        to: NodeId,
        /// Why.
        reason: String,
    },
    /// Fence the old active node (e.g. stop FreeSWITCH) if it can be reached.
    Fence {
        /// The node.
        node: NodeId,
    },
    /// Tell a human.
    Notify {
        /// `info`, `warning` or `critical`.
        level: &'static str,
        /// What happened.
        message: String,
    },
}

/// Health of a node as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not enough evidence yet.
    Unknown,
    /// `rise` good rounds in a row.
    Up,
    /// `fall` bad rounds in a row.
    Down,
}

#[derive(Debug, Clone, Copy)]
struct NodeState {
    health: Health,
    good_streak: u32,
    bad_streak: u32,
    lag: Option<Duration>,
    sync_complete: Option<bool>,
}

impl NodeState {
    fn new() -> Self {
        NodeState {
            health: Health::Unknown,
            good_streak: 0,
            bad_streak: 0,
            lag: None,
            sync_complete: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct PendingFlip {
    to: NodeId,
    since: Instant,
}

/// The failover decision state machine. See the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct FailoverPolicy {
    settings: PolicySettings,
    nodes: [NodeState; 2],
    active: Option<NodeId>,
    schema_drift: Option<bool>,
    last_flip: Option<Instant>,
    pending: Option<PendingFlip>,
    both_down_alerted: bool,
    /// The last "failover blocked" alert (repeated only when its reason changes).
    blocked_alerted: Option<String>,
}

impl FailoverPolicy {
    /// A policy with no evidence yet.
    pub fn new(settings: PolicySettings) -> Self {
        FailoverPolicy {
            settings,
            nodes: [NodeState::new(), NodeState::new()],
            active: None,
            schema_drift: None,
            last_flip: None,
            pending: None,
            both_down_alerted: false,
            blocked_alerted: None,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &PolicySettings {
        &self.settings
    }

    /// The health of `node`.
    pub fn health(&self, node: NodeId) -> Health {
        self.nodes[node.index()].health
    }

    /// The active node as last reported by the floating record.
    pub fn active(&self) -> Option<NodeId> {
        self.active
    }

    /// The target of a flip that was asked for and not yet answered.
    pub fn pending_flip(&self) -> Option<NodeId> {
        self.pending.map(|p| p.to)
    }

    /// Feeds one input observed at `now`; returns what to do.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        match input {
            Input::ProbeRound { node, ok } => self.round(node, ok, &mut actions),
            Input::FloatingRecord { active } => {
                if let Some(p) = self.pending
                    && active == Some(p.to)
                {
                    // The record moved: the flip took effect even if its result got lost.
                    self.pending = None;
                    self.last_flip = Some(now);
                }
                self.active = active;
            }
            Input::ReplicationLag { node, lag } => self.nodes[node.index()].lag = lag,
            Input::SchemaDrift { drift } => self.schema_drift = Some(drift),
            Input::SyncComplete { node, complete } => {
                self.nodes[node.index()].sync_complete = Some(complete)
            }
            Input::SwitchoverRequest { to } => {
                self.switchover(to, now, &mut actions);
                return actions;
            }
            Input::FlipResult { to, ok } => {
                if self.pending.is_some_and(|p| p.to == to) {
                    self.pending = None;
                    if ok {
                        self.active = Some(to);
                        self.last_flip = Some(now);
                        actions.push(Action::Notify {
                            level: "info",
                            message: format!("floating record now points at node {to:?}"),
                        });
                    } else {
                        actions.push(Action::Notify {
                            level: "critical",
                            message: format!(
                                "the flip to node {to:?} failed; it will be retried while the \
                                 conditions hold"
                            ),
                        });
                    }
                }
            }
        }
        actions.extend(self.decide(now));
        actions
    }

    /// Re-evaluates at `now` without new input (hold-down expiry, flip time-outs).
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        self.decide(now)
    }

    fn round(&mut self, node: NodeId, ok: bool, actions: &mut Vec<Action>) {
        let (rise, fall) = (self.settings.rise.max(1), self.settings.fall.max(1));
        let st = &mut self.nodes[node.index()];
        let before = st.health;
        if ok {
            st.good_streak = st.good_streak.saturating_add(1);
            st.bad_streak = 0;
            if st.good_streak >= rise {
                st.health = Health::Up;
            }
        } else {
            st.bad_streak = st.bad_streak.saturating_add(1);
            st.good_streak = 0;
            if st.bad_streak >= fall {
                st.health = Health::Down;
            }
        }
        if st.health != before {
            actions.push(Action::Notify {
                level: if st.health == Health::Down {
                    "warning"
                } else {
                    "info"
                },
                message: format!("node {node:?} is now {:?}", st.health),
            });
        }
    }

    /// Up, and its latest probe round succeeded: a node that has started failing is never a
    /// target, even before `fall` rounds mark it down.
    fn eligible(&self, node: NodeId) -> bool {
        let st = &self.nodes[node.index()];
        st.health == Health::Up && st.bad_streak == 0
    }

    fn hold_down_passed(&self, now: Instant) -> bool {
        self.last_flip
            .is_none_or(|t| now.saturating_duration_since(t) >= self.settings.hold_down)
    }

    fn flip_pending(&mut self, now: Instant) -> bool {
        match self.pending {
            Some(p) if now.saturating_duration_since(p.since) < self.settings.flip_timeout => true,
            Some(_) => {
                self.pending = None;
                false
            }
            None => false,
        }
    }

    /// Unmet preconditions of a flip to `to`, split into hard and soft.
    fn unmet(&self, to: NodeId) -> (Vec<String>, Vec<String>) {
        let st = &self.nodes[to.index()];
        let mut hard = Vec::new();
        let mut soft = Vec::new();
        let mut check = |req: Requirement, ok: bool, what: String| {
            if ok {
                return;
            }
            match req {
                Requirement::Hard => hard.push(what),
                Requirement::Soft => soft.push(what),
                Requirement::Off => {}
            }
        };
        let lag_ok = st
            .lag
            .is_some_and(|l| l <= self.settings.max_replication_lag);
        check(
            self.settings.lag_requirement,
            lag_ok,
            match st.lag {
                Some(l) => format!(
                    "replication lag into {to:?} is {:.1}s (limit {:.1}s)",
                    l.as_secs_f64(),
                    self.settings.max_replication_lag.as_secs_f64()
                ),
                None => format!("replication lag into {to:?} is unknown"),
            },
        );
        check(
            self.settings.schema_requirement,
            self.schema_drift == Some(false),
            match self.schema_drift {
                Some(true) => "the schemas differ".to_string(),
                _ => "schema parity is unknown".to_string(),
            },
        );
        check(
            self.settings.sync_requirement,
            st.sync_complete == Some(true),
            match st.sync_complete {
                Some(_) => format!("Syncthing folders on {to:?} are not complete"),
                None => format!("Syncthing completion of {to:?} is unknown"),
            },
        );
        (hard, soft)
    }

    fn flip(
        &mut self,
        to: NodeId,
        now: Instant,
        reason: String,
        fence: bool,
        actions: &mut Vec<Action>,
    ) {
        let from = self.active;
        self.pending = Some(PendingFlip { to, since: now });
        if let Some(old) = from.filter(|&o| fence && o != to) {
            actions.push(Action::Fence { node: old });
        }
        actions.push(Action::FlipDns { from, to, reason });
    }

    fn decide(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.flip_pending(now) {
            return actions;
        }
        let Some(active) = self.active else {
            return actions;
        };
        let standby = active.other();
        let (ha, hs) = (self.health(active), self.health(standby));

        if ha == Health::Down && hs == Health::Down {
            if !self.both_down_alerted {
                self.both_down_alerted = true;
                actions.push(Action::Notify {
                    level: "critical",
                    message: "both nodes are down: no failover possible".to_string(),
                });
            }
            return actions;
        }
        self.both_down_alerted = false;

        if ha == Health::Down && self.eligible(standby) {
            if !self.hold_down_passed(now) {
                return actions;
            }
            let (hard, soft) = self.unmet(standby);
            if !hard.is_empty() {
                let message = format!(
                    "node {active:?} is down but failover to {standby:?} is blocked: {}",
                    hard.join("; ")
                );
                // Said once per reason, not on every round while it lasts.
                if self.blocked_alerted.as_deref() != Some(&message) {
                    self.blocked_alerted = Some(message.clone());
                    actions.push(Action::Notify {
                        level: "critical",
                        message,
                    });
                }
                return actions;
            }
            self.blocked_alerted = None;
            if !soft.is_empty() {
                actions.push(Action::Notify {
                    level: "warning",
                    message: format!("failing over despite: {}", soft.join("; ")),
                });
            }
            self.flip(
                standby,
                now,
                format!("node {active:?} is down and node {standby:?} is healthy"),
                true,
                &mut actions,
            );
            return actions;
        }
        if ha != Health::Down {
            // The active node recovered: a later failure is a new incident, alerted anew. (A
            // standby briefly not eligible does not count: the same block is not said twice.)
            self.blocked_alerted = None;
        }

        let preferred = self.settings.preferred;
        if self.settings.auto_failback
            && active != preferred
            && self.eligible(preferred)
            && ha == Health::Up
            && self.hold_down_passed(now)
        {
            let (hard, _) = self.unmet(preferred);
            if hard.is_empty() {
                self.flip(
                    preferred,
                    now,
                    format!("failback to the preferred node {preferred:?}"),
                    false,
                    &mut actions,
                );
            }
        }
        actions
    }

    fn switchover(&mut self, to: NodeId, now: Instant, actions: &mut Vec<Action>) {
        if self.active == Some(to) {
            actions.push(Action::Notify {
                level: "info",
                message: format!("node {to:?} is already active"),
            });
            return;
        }
        if self.flip_pending(now) {
            actions.push(Action::Notify {
                level: "warning",
                message: "a flip is already in progress; switchover refused".to_string(),
            });
            return;
        }
        if !self.eligible(to) {
            actions.push(Action::Notify {
                level: "warning",
                message: format!(
                    "switchover to {to:?} refused: it is {:?}, not Up",
                    self.health(to)
                ),
            });
            return;
        }
        let (hard, _) = self.unmet(to);
        if !hard.is_empty() {
            actions.push(Action::Notify {
                level: "warning",
                message: format!("switchover to {to:?} refused: {}", hard.join("; ")),
            });
            return;
        }
        self.flip(
            to,
            now,
            format!("switchover to {to:?} requested"),
            false,
            actions,
        );
    }
}

#[cfg(test)]
mod tests;
