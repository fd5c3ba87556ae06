//! The replication plan: a pure function of the two inventories, the configuration and the
//! operator's intent, giving ordered steps. No I/O here; [`super::apply`] runs the steps.

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::hba;
use super::inventory::{Inventory, SubscriptionInfo};
use super::sql::{ConnInfo, ident, literal, qualified};
use crate::config::ClusterConfig;
use crate::{Error, Result};

/// Node A (index 0, the primary) or node B (index 1, the standby).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Node A.
    A,
    /// Node B.
    B,
}

impl Side {
    /// Both sides, A first.
    pub const BOTH: [Side; 2] = [Side::A, Side::B];

    /// Position in `config.nodes`.
    pub fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    /// The other side.
    pub fn peer(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// What the operator allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Intent {
    /// Allow restarting PostgreSQL when a setting (`wal_level`, …) needs it.
    pub allow_restart: bool,
    /// Allow destroying data on node B: truncating its tables, or replacing its schema with a
    /// copy of node A's, before the initial copy.
    pub destructive: bool,
}

/// Setup or teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanKind {
    /// Bring replication up (both directions).
    Setup,
    /// Take it down.
    Teardown,
}

/// A secret a statement needs, put in only when it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SecretUse {
    /// `PASSWORD '<redacted>'` becomes a SCRAM verifier of the replication role's password.
    RoleVerifier,
    /// `password=<redacted>` in this connection string gets the password the subscriber uses
    /// on the publisher.
    ConnInfoPassword {
        /// The node the connection string points at.
        publisher: Side,
        /// The connection string (redacted).
        conninfo: ConnInfo,
    },
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// SQL statements, each sent on its own outside any transaction block (`CREATE
    /// SUBSCRIPTION` and `ALTER SYSTEM` refuse to run inside one). Secrets show as `<redacted>`.
    Sql {
        /// The statements.
        statements: Vec<String>,
        /// The secret one of them needs, if any.
        secret: Option<SecretUse>,
    },
    /// Over SSH: put the marked block in `pg_hba.conf`, then `SELECT pg_reload_conf()`.
    EditHba {
        /// The file on the node (`hba_file`).
        file: String,
        /// The block, markers included.
        block: Vec<String>,
    },
    /// Over SSH: restart PostgreSQL with the configured command, then reconnect.
    Restart {
        /// The command.
        command: String,
    },
    /// Over SSH: dump the schema on `from` (`pg_dump --schema-only`) and load it on this node
    /// with psql, after dropping `drop_schemas` here.
    CopySchema {
        /// The node the schema comes from.
        from: Side,
        /// Schemas dropped (CASCADE) on this node first; `public` is recreated empty.
        drop_schemas: Vec<String>,
        /// Schema left out of the dump (the heartbeat's).
        exclude_schema: String,
    },
    /// Wait until every table of the subscription is in state `r` (initial copy done),
    /// reporting progress.
    WaitForCopy {
        /// The subscription on this node.
        subscription: String,
        /// The publisher it copies from.
        publisher: Side,
    },
    /// Move this node's sequences up to the other node's last values (never down).
    SyncSequences {
        /// The node whose values are the floor.
        from: Side,
    },
    /// Drop a replication slot once no walsender uses it.
    DropSlot {
        /// The slot.
        slot: String,
    },
}

/// A wanted setting value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Want {
    /// Setting name.
    pub name: String,
    /// The value (a number for at-least settings).
    pub value: String,
    /// Numeric: the current value must be at least `value`.
    pub at_least: bool,
}

impl Want {
    fn exact(name: &str, value: &str) -> Want {
        Want {
            name: name.into(),
            value: value.into(),
            at_least: false,
        }
    }
    fn at_least(name: &str, value: i64) -> Want {
        Want {
            name: name.into(),
            value: value.to_string(),
            at_least: true,
        }
    }

    /// Whether `have` satisfies this want.
    pub fn satisfied_by(&self, have: Option<&str>) -> bool {
        let Some(have) = have else { return false };
        if self.at_least {
            match (have.parse::<i64>(), self.value.parse::<i64>()) {
                (Ok(h), Ok(w)) => h >= w,
                _ => false,
            }
        } else {
            have.eq_ignore_ascii_case(&self.value)
        }
    }
}

impl std::fmt::Display for Want {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.name,
            if self.at_least { ">=" } else { "=" },
            self.value
        )
    }
}

/// What must be true after a step; checked live before the step (skip when already true) and
/// after it (the step really did its job).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Postcondition {
    /// The configuration files carry these values (they may still need a restart).
    SettingsConfigured {
        /// The values.
        settings: Vec<Want>,
    },
    /// These values are in effect.
    SettingsActive {
        /// The values.
        settings: Vec<Want>,
    },
    /// pg_hba.conf admits the peer's address to the database as the role with the method.
    HbaRule {
        /// The peer's address.
        peer: IpAddr,
        /// The role.
        role: String,
        /// The method.
        method: String,
    },
    /// The role exists with LOGIN, REPLICATION, `pg_read_all_data` and the configured password.
    RoleReady {
        /// The role.
        role: String,
    },
    /// This node's schema fingerprint equals the other node's.
    SchemaMatches {
        /// The reference node.
        reference: Side,
    },
    /// No user table (heartbeat schema aside) holds a row.
    TablesEmpty {
        /// The heartbeat schema, left out.
        except_schema: String,
    },
    /// The heartbeat table exists.
    HeartbeatTable {
        /// Its schema.
        schema: String,
    },
    /// The table can publish UPDATE and DELETE (primary key or replica identity FULL).
    ReplicaIdentity {
        /// Schema.
        schema: String,
        /// Table.
        table: String,
    },
    /// The publication exists.
    Publication {
        /// Name.
        name: String,
    },
    /// The subscription exists and is enabled.
    SubscriptionEnabled {
        /// Name.
        name: String,
    },
    /// The subscription includes every table its publisher's publication has.
    SubscriptionCoversPublication {
        /// The subscription (on this node).
        name: String,
        /// The publisher.
        publisher: Side,
        /// The publication there.
        publication: String,
    },
    /// Every table of the subscription is in state `r`.
    AllTablesReady {
        /// Subscription.
        subscription: String,
    },
    /// Every sequence here is at least at the other node's last value.
    SequencesCaughtUp {
        /// The node whose values are the floor.
        from: Side,
    },
    /// The subscription is disabled or gone.
    SubscriptionDisabled {
        /// Name.
        name: String,
    },
    /// The subscription has no slot (`slot_name = NONE`) or is gone.
    SubscriptionDetached {
        /// Name.
        name: String,
    },
    /// No subscription of that name.
    SubscriptionAbsent {
        /// Name.
        name: String,
    },
    /// No slot of that name.
    SlotAbsent {
        /// Name.
        name: String,
    },
    /// No publication of that name.
    PublicationAbsent {
        /// Name.
        name: String,
    },
    /// No schema of that name.
    SchemaAbsent {
        /// Name.
        name: String,
    },
}

impl std::fmt::Display for Postcondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use Postcondition::*;
        let list = |s: &[Want]| s.iter().map(Want::to_string).collect::<Vec<_>>().join(", ");
        match self {
            SettingsConfigured { settings } => write!(f, "configured: {}", list(settings)),
            SettingsActive { settings } => write!(f, "in effect: {}", list(settings)),
            HbaRule { peer, role, method } => {
                write!(f, "pg_hba.conf admits {peer} as {role} ({method})")
            }
            RoleReady { role } => {
                write!(
                    f,
                    "role {role} has LOGIN REPLICATION, pg_read_all_data and the configured password"
                )
            }
            SchemaMatches { reference } => {
                write!(f, "schema fingerprint equals node {reference:?}'s")
            }
            TablesEmpty { .. } => write!(f, "no user table holds rows"),
            HeartbeatTable { schema } => write!(f, "table {schema}.heartbeat exists"),
            ReplicaIdentity { schema, table } => {
                write!(
                    f,
                    "{schema}.{table} has a primary key or REPLICA IDENTITY FULL"
                )
            }
            Publication { name } => write!(f, "publication {name} exists FOR ALL TABLES"),
            SubscriptionEnabled { name } => write!(f, "subscription {name} exists and is enabled"),
            AllTablesReady { subscription } => {
                write!(f, "every table of {subscription} is in state r (ready)")
            }
            SubscriptionCoversPublication {
                name,
                publisher,
                publication,
            } => write!(
                f,
                "subscription {name} includes every table of {publication} on node {publisher:?}"
            ),
            SequencesCaughtUp { from } => {
                write!(
                    f,
                    "every sequence is at least at node {from:?}'s last value"
                )
            }
            SubscriptionDisabled { name } => write!(f, "subscription {name} is disabled or gone"),
            SubscriptionDetached { name } => {
                write!(f, "subscription {name} has no slot or is gone")
            }
            SubscriptionAbsent { name } => write!(f, "no subscription {name}"),
            SlotAbsent { name } => write!(f, "no replication slot {name}"),
            PublicationAbsent { name } => write!(f, "no publication {name}"),
            SchemaAbsent { name } => write!(f, "no schema {name}"),
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Stable id, e.g. `publication.a`, `subscription.b`.
    pub id: String,
    /// The node it runs on.
    pub side: Side,
    /// That node's name.
    pub node: String,
    /// What it does.
    pub action: Action,
    /// Why it is needed.
    pub why: String,
    /// It destroys data or objects.
    pub destructive: bool,
    /// What is true afterwards.
    pub postcondition: Postcondition,
}

/// An ordered list of steps, with what was recognized and what deserves attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationPlan {
    /// Setup or teardown.
    pub kind: PlanKind,
    /// Node names, A then B.
    pub nodes: [String; 2],
    /// The steps, in order. Empty when everything is in place.
    pub steps: Vec<Step>,
    /// Existing objects recognized and kept (e.g. a pair set up by FS PBX's script).
    pub adopted: Vec<String>,
    /// Warnings and remarks.
    pub notes: Vec<String>,
}

/// Minimum values of the settings both nodes need (FS PBX's script sets 10/48/48).
const MIN_SLOTS: i64 = 4;
const MIN_SENDERS: i64 = 4;
const MIN_WORKERS: i64 = 8;

impl ReplicationPlan {
    /// The setup plan: everything needed for replication both ways, skipping what is in place.
    /// Refuses (with an error naming node, step and fix) what it must not do without consent
    /// or cannot do at all.
    pub fn new(
        a: &Inventory,
        b: &Inventory,
        config: &ClusterConfig,
        intent: &Intent,
    ) -> Result<ReplicationPlan> {
        Planner::new(a, b, config, intent)?.setup()
    }

    /// The teardown plan: disable and detach the subscriptions, drop them, drop their slots on
    /// the publishers, drop the publications and the heartbeat schema. Empty when nothing is
    /// left. The replication role and the pg_hba block stay.
    pub fn teardown(a: &Inventory, b: &Inventory, config: &ClusterConfig) -> ReplicationPlan {
        teardown(a, b, config)
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether any step is destructive.
    pub fn is_destructive(&self) -> bool {
        self.steps.iter().any(|s| s.destructive)
    }

    /// The plan for people: one block per step. Never contains a secret.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let what = match self.kind {
            PlanKind::Setup => "replication setup",
            PlanKind::Teardown => "replication teardown",
        };
        let _ = writeln!(
            out,
            "{what} for {} (A) and {} (B): {} step(s){}",
            self.nodes[0],
            self.nodes[1],
            self.steps.len(),
            if self.is_destructive() {
                ", DESTRUCTIVE"
            } else {
                ""
            }
        );
        for a in &self.adopted {
            let _ = writeln!(out, "  adopted: {a}");
        }
        for n in &self.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        for (i, s) in self.steps.iter().enumerate() {
            let _ = writeln!(
                out,
                "\n{:>2}. [{}] {}{}",
                i + 1,
                s.node,
                s.id,
                if s.destructive { "  (destructive)" } else { "" }
            );
            let _ = writeln!(out, "    why:  {}", s.why);
            match &s.action {
                Action::Sql { statements, .. } => {
                    for st in statements {
                        let _ = writeln!(out, "    sql:  {}", st.replace('\n', "\n          "));
                    }
                }
                Action::EditHba { file, block } => {
                    let _ = writeln!(
                        out,
                        "    ssh:  put this block first in {file}, then SELECT pg_reload_conf()"
                    );
                    for l in block {
                        let _ = writeln!(out, "          {l}");
                    }
                }
                Action::Restart { command } => {
                    let _ = writeln!(out, "    ssh:  {command}");
                }
                Action::CopySchema {
                    from,
                    drop_schemas,
                    exclude_schema,
                } => {
                    if !drop_schemas.is_empty() {
                        let _ = writeln!(
                            out,
                            "    sql:  DROP SCHEMA {} CASCADE",
                            drop_schemas.join(", ")
                        );
                    }
                    let _ = writeln!(
                        out,
                        "    ssh:  pg_dump --schema-only --exclude-schema={exclude_schema} on node {from:?} | psql here"
                    );
                }
                Action::WaitForCopy { subscription, .. } => {
                    let _ = writeln!(
                        out,
                        "    wait: every table of {subscription} in state r (progress shown)"
                    );
                }
                Action::SyncSequences { from } => {
                    let _ = writeln!(
                        out,
                        "    sql:  setval() each sequence up to node {from:?}'s last value"
                    );
                }
                Action::DropSlot { slot } => {
                    let _ = writeln!(
                        out,
                        "    sql:  SELECT pg_drop_replication_slot({})",
                        literal(slot)
                    );
                }
            }
            let _ = writeln!(out, "    then: {}", s.postcondition);
        }
        out
    }
}

struct Planner<'a> {
    inv: [&'a Inventory; 2],
    config: &'a ClusterConfig,
    intent: &'a Intent,
    names: [String; 2],
    steps: Vec<Step>,
    adopted: Vec<String>,
    notes: Vec<String>,
}

impl<'a> Planner<'a> {
    fn new(
        a: &'a Inventory,
        b: &'a Inventory,
        config: &'a ClusterConfig,
        intent: &'a Intent,
    ) -> Result<Planner<'a>> {
        let names = [node_name(config, Side::A), node_name(config, Side::B)];
        Ok(Planner {
            inv: [a, b],
            config,
            intent,
            names,
            steps: Vec::new(),
            adopted: Vec::new(),
            notes: Vec::new(),
        })
    }

    fn inv(&self, side: Side) -> &'a Inventory {
        self.inv[side.index()]
    }

    fn name(&self, side: Side) -> &str {
        &self.names[side.index()]
    }

    fn push(
        &mut self,
        id: String,
        side: Side,
        action: Action,
        why: impl Into<String>,
        destructive: bool,
        postcondition: Postcondition,
    ) {
        self.steps.push(Step {
            id,
            side,
            node: self.name(side).to_string(),
            action,
            why: why.into(),
            destructive,
            postcondition,
        });
    }

    fn sub_name(&self, on: Side) -> &'a str {
        match on {
            Side::B => &self.config.replication.subscription_a_to_b,
            Side::A => &self.config.replication.subscription_b_to_a,
        }
    }

    fn pub_name(&self, on: Side) -> &'a str {
        match on {
            Side::A => &self.config.replication.publication_a,
            Side::B => &self.config.replication.publication_b,
        }
    }

    /// Whether the subscription on `on` has to be created by this plan.
    fn creates_sub(&self, on: Side) -> bool {
        self.inv(on).subscription(self.sub_name(on)).is_none()
    }

    fn dedicated_role(&self) -> bool {
        let role = &self.config.replication.role;
        !self.config.nodes.iter().any(|n| &n.postgres.user == role)
    }

    fn setup(mut self) -> Result<ReplicationPlan> {
        let r = &self.config.replication;
        // Refusals first: nothing is planned for a pair that cannot work.
        for side in Side::BOTH {
            let inv = self.inv(side);
            if !inv.superuser {
                return Err(Error::ReplicationNotSuperuser {
                    node: self.name(side).into(),
                    step: "inventory".into(),
                    user: inv.user.clone(),
                    key: format!("nodes[{}].postgres.user", side.index()),
                });
            }
            if inv.major() < 16 {
                return Err(Error::ReplicationServerTooOld {
                    node: self.name(side).into(),
                    step: format!("subscription.{}", self.name(side)),
                    version: inv.version.clone(),
                    feature: "origin = none (loop-free replication both ways)".into(),
                    needed: 16,
                });
            }
        }
        if self.dedicated_role() && r.password.is_none() {
            return Err(Error::ReplicationPasswordMissing {
                role: r.role.clone(),
            });
        }
        for side in Side::BOTH {
            self.check_publication(side)?;
            self.check_subscription(side)?;
        }

        for side in Side::BOTH {
            self.settings(side)?;
        }
        for side in Side::BOTH {
            self.hba(side);
        }
        if self.dedicated_role() {
            for side in Side::BOTH {
                self.role(side);
            }
        } else {
            self.notes.push(format!(
                "replication connects as {}, the nodes' own database user (FS PBX's script does \
                 the same); a dedicated role (replication.role) with only REPLICATION and \
                 pg_read_all_data is safer",
                r.role
            ));
        }
        self.identity(Side::A, None);
        let copied = self.schema_b()?;
        self.identity(Side::B, copied.then_some(Side::A));
        for side in Side::BOTH {
            self.heartbeat(side);
        }
        for side in Side::BOTH {
            self.publication(side);
        }
        for side in [Side::B, Side::A] {
            self.refresh(side);
        }
        self.subscription(Side::B, true);
        self.wait_copy(Side::B);
        self.sequences(Side::B, Side::A);
        self.subscription(Side::A, false);

        Ok(ReplicationPlan {
            kind: PlanKind::Setup,
            nodes: self.names.clone(),
            steps: self.steps,
            adopted: self.adopted,
            notes: self.notes,
        })
    }

    fn check_publication(&mut self, side: Side) -> Result<()> {
        let name = self.pub_name(side);
        let Some(p) = self.inv(side).publication(name) else {
            return Ok(());
        };
        let mut diff = Vec::new();
        if !p.all_tables {
            diff.push(format!(
                "FOR a list of {} table(s), not FOR ALL TABLES",
                p.table_count
            ));
        }
        for op in ["insert", "update", "delete", "truncate"] {
            if !p.operations.iter().any(|o| o == op) {
                diff.push(format!("does not publish {op}"));
            }
        }
        if diff.is_empty() {
            self.adopted.push(format!(
                "publication {name} on {} (FOR ALL TABLES, {} tables)",
                self.name(side),
                p.table_count
            ));
            Ok(())
        } else {
            Err(Error::ReplicationObjectMismatch {
                node: self.name(side).into(),
                step: format!("publication.{}", self.name(side)),
                object: format!("publication {}", ident(name)),
                differences: diff.join("; "),
                fix: format!(
                    "drop it (DROP PUBLICATION {}) or run `fspbx-ha replication teardown`, then \
                     apply again; or set replication.publication_{} to another name",
                    ident(name),
                    if side == Side::A { "a" } else { "b" }
                ),
            })
        }
    }

    fn check_subscription(&mut self, on: Side) -> Result<()> {
        let name = self.sub_name(on);
        let Some(s) = self.inv(on).subscription(name) else {
            return Ok(());
        };
        let publisher = self.config.nodes.get(on.peer().index());
        let want_pub = self.pub_name(on.peer());
        let mut diff = Vec::new();
        if s.publications != [want_pub.to_string()] {
            diff.push(format!(
                "publications {:?}, expected [{want_pub:?}]",
                s.publications
            ));
        }
        if s.origin.as_deref() != Some("none") {
            diff.push(format!(
                "origin = {}, expected none (changes would loop between the nodes)",
                s.origin.as_deref().unwrap_or("any")
            ));
        }
        if let Some(n) = publisher {
            if let (Some(h), Some(peer)) = (&s.conninfo.host, n.peer_address())
                && h != &peer.to_string()
                && h != &n.hostname
            {
                diff.push(format!(
                    "connects to host {h}, expected {peer} (node {})",
                    n.name
                ));
            }
            if let Some(d) = &s.conninfo.dbname
                && d != &n.postgres.dbname
            {
                diff.push(format!("database {d}, expected {}", n.postgres.dbname));
            }
        }
        if diff.is_empty() {
            self.adopted.push(format!(
                "subscription {name} on {} ({}, {} of {} tables ready, {})",
                self.name(on),
                s.conninfo.render(),
                s.tables_ready(),
                s.tables_total(),
                if s.enabled { "enabled" } else { "disabled" }
            ));
            if s.conninfo.user.as_deref() != Some(self.config.replication.role.as_str()) {
                self.notes.push(format!(
                    "subscription {name} on {} logs in as {}, not replication.role ({}); it is \
                     kept as it is",
                    self.name(on),
                    s.conninfo.user.as_deref().unwrap_or("(default user)"),
                    self.config.replication.role
                ));
            }
            Ok(())
        } else {
            let fix = if diff.len() == 1 && diff[0].starts_with("origin") {
                format!(
                    "run ALTER SUBSCRIPTION {} SET (origin = none) on node {}, or `fspbx-ha \
                     replication teardown` and apply again",
                    ident(name),
                    self.name(on)
                )
            } else {
                "run `fspbx-ha replication teardown` (it disables, detaches and drops it and its \
                 slot), then apply again"
                    .to_string()
            };
            Err(Error::ReplicationObjectMismatch {
                node: self.name(on).into(),
                step: format!("subscription.{}", self.name(on)),
                object: format!("subscription {}", ident(name)),
                differences: diff.join("; "),
                fix,
            })
        }
    }

    fn settings(&mut self, side: Side) -> Result<()> {
        let inv = self.inv(side);
        let required = [
            Want::exact("wal_level", "logical"),
            Want::at_least("max_replication_slots", MIN_SLOTS),
            Want::at_least("max_wal_senders", MIN_SENDERS),
            Want::at_least("max_worker_processes", MIN_WORKERS),
        ];
        let recommended = Want::exact("track_commit_timestamp", "on");
        let mut missing: Vec<Want> = required
            .into_iter()
            .filter(|w| !w.satisfied_by(inv.setting(&w.name)))
            .collect();
        let commit_ts_off = !recommended.satisfied_by(inv.setting(&recommended.name));
        if missing.is_empty() {
            if commit_ts_off {
                self.notes.push(format!(
                    "node {}: track_commit_timestamp is off; FS PBX turns it on (conflict \
                     reports name the origin and time of a row only with it); it needs a \
                     restart (--allow-restart)",
                    self.name(side)
                ));
            }
            return Ok(());
        }
        if commit_ts_off {
            missing.push(recommended);
        }
        let unconfigured: Vec<Want> = missing
            .iter()
            .filter(|w| {
                let configured = inv
                    .settings
                    .get(&w.name)
                    .and_then(|s| s.configured.as_deref());
                !w.satisfied_by(configured)
            })
            .cloned()
            .collect();
        let node = self.name(side).to_string();
        if !self.intent.allow_restart {
            let described = missing
                .iter()
                .map(|w| {
                    format!(
                        "{} = {} (needs {})",
                        w.name,
                        inv.setting(&w.name).unwrap_or("?"),
                        w.value
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(Error::ReplicationRestartNeeded {
                node: node.clone(),
                step: format!("settings.{node}"),
                settings: described,
            });
        }
        if !unconfigured.is_empty() {
            let statements = unconfigured
                .iter()
                .map(|w| format!("ALTER SYSTEM SET {} = {}", w.name, literal(&w.value)))
                .collect();
            self.push(
                format!("settings.{node}"),
                side,
                Action::Sql {
                    statements,
                    secret: None,
                },
                "logical replication needs wal_level = logical and enough slots, WAL senders \
                 and workers",
                false,
                Postcondition::SettingsConfigured {
                    settings: unconfigured,
                },
            );
        }
        self.push(
            format!("restart.{node}"),
            side,
            Action::Restart {
                command: self.config.replication.restart_command.clone(),
            },
            "these settings take effect only after a restart (allowed by --allow-restart)",
            false,
            Postcondition::SettingsActive { settings: missing },
        );
        Ok(())
    }

    fn hba(&mut self, side: Side) {
        let r = &self.config.replication;
        // The rule on `side` admits the peer, whose subscription connects here.
        if !r.manage_hba || !self.creates_sub(side.peer()) || self.inv(side).hba_peer_rule {
            return;
        }
        let Some(peer) = self
            .config
            .nodes
            .get(side.peer().index())
            .and_then(|n| n.peer_address())
        else {
            return;
        };
        let node = self.name(side).to_string();
        let inv = self.inv(side);
        self.push(
            format!("hba.{node}"),
            side,
            Action::EditHba {
                file: inv.hba_file.clone(),
                block: hba::block(&inv.database, &r.role, peer, &r.hba_method),
            },
            format!(
                "node {}'s subscription connects here from {peer}; only that address is admitted",
                self.name(side.peer())
            ),
            false,
            Postcondition::HbaRule {
                peer,
                role: r.role.clone(),
                method: r.hba_method.clone(),
            },
        );
    }

    fn role(&mut self, side: Side) {
        let r = &self.config.replication;
        if !self.creates_sub(side.peer()) {
            return;
        }
        let inv = self.inv(side);
        let ok = inv.role.as_ref().is_some_and(|ro| {
            ro.can_login
                && ro.replication
                && (ro.reads_all_data || ro.superuser)
                && ro.password_matches == Some(true)
        });
        if ok {
            return;
        }
        let role = ident(&r.role);
        let mut statements = Vec::new();
        if inv.role.is_none() {
            statements.push(format!("CREATE ROLE {role} LOGIN REPLICATION"));
        }
        statements.push(format!(
            "ALTER ROLE {role} LOGIN REPLICATION PASSWORD '<redacted>'"
        ));
        statements.push(format!("GRANT pg_read_all_data TO {role}"));
        let node = self.name(side).to_string();
        self.push(
            format!("role.{node}"),
            side,
            Action::Sql {
                statements,
                secret: Some(SecretUse::RoleVerifier),
            },
            format!(
                "node {}'s subscription logs in here as {}; the password is sent as a SCRAM \
                 verifier, never in clear",
                self.name(side.peer()),
                r.role
            ),
            false,
            Postcondition::RoleReady {
                role: r.role.clone(),
            },
        );
    }

    fn identity(&mut self, side: Side, tables_from: Option<Side>) {
        let hb = &self.config.replication.heartbeat_schema;
        let source = self.inv(tables_from.unwrap_or(side));
        let node = self.name(side).to_string();
        let todo: Vec<(String, String, String)> = source
            .user_tables(hb)
            .filter(|t| !t.replicable())
            .map(|t| (t.schema.clone(), t.name.clone(), t.qualified()))
            .collect();
        for (schema, table, q) in todo {
            self.push(
                format!("identity.{node}.{schema}.{table}"),
                side,
                Action::Sql {
                    statements: vec![format!("ALTER TABLE {q} REPLICA IDENTITY FULL")],
                    secret: None,
                },
                "the table has no primary key: without a replica identity, UPDATE and DELETE on \
                 it fail once it is published",
                false,
                Postcondition::ReplicaIdentity { schema, table },
            );
        }
    }

    /// Schema and data checks for node B before the initial copy. Returns whether the schema
    /// is copied from A.
    fn schema_b(&mut self) -> Result<bool> {
        if !self.creates_sub(Side::B) {
            return Ok(false);
        }
        let hb = self.config.replication.heartbeat_schema.clone();
        let (a, b) = (self.inv(Side::A), self.inv(Side::B));
        let node = self.name(Side::B).to_string();
        let b_tables: Vec<_> = b.user_tables(&hb).collect();
        if a.fingerprint != b.fingerprint {
            let mut drop: Vec<String> = b_tables.iter().map(|t| t.schema.clone()).collect();
            drop.sort();
            drop.dedup();
            let destructive = !b_tables.is_empty();
            if destructive && !self.intent.destructive {
                return Err(Error::ReplicationSchemaDiffers {
                    node: node.clone(),
                    step: format!("schema.{node}"),
                    peer: self.name(Side::A).into(),
                    detail: schema_diff(a, b, &hb),
                });
            }
            self.push(
                format!("schema.{node}"),
                Side::B,
                Action::CopySchema {
                    from: Side::A,
                    drop_schemas: drop,
                    exclude_schema: hb,
                },
                if destructive {
                    "node B's schema differs from node A's: it is replaced by a copy (allowed by \
                     --destructive)"
                } else {
                    "node B has no tables yet: it gets a copy of node A's schema"
                },
                destructive,
                Postcondition::SchemaMatches { reference: Side::A },
            );
            return Ok(true);
        }
        let with_rows: Vec<String> = b_tables
            .iter()
            .filter(|t| t.has_rows)
            .map(|t| format!("{}.{}", t.schema, t.name))
            .collect();
        if !with_rows.is_empty() {
            if !self.intent.destructive {
                return Err(Error::ReplicationTargetHasData {
                    node: node.clone(),
                    step: format!("truncate.{node}"),
                    peer: self.name(Side::A).into(),
                    count: with_rows.len(),
                    tables: first_few(&with_rows, 5),
                });
            }
            let list: Vec<String> = b_tables
                .iter()
                .filter(|t| t.has_rows)
                .map(|t| t.qualified())
                .collect();
            self.push(
                format!("truncate.{node}"),
                Side::B,
                Action::Sql {
                    statements: vec![format!("TRUNCATE {} CASCADE", list.join(", "))],
                    secret: None,
                },
                format!(
                    "{} table(s) on node B hold rows the initial copy would collide with \
                     (allowed by --destructive)",
                    list.len()
                ),
                true,
                Postcondition::TablesEmpty { except_schema: hb },
            );
        }
        Ok(false)
    }

    fn heartbeat(&mut self, side: Side) {
        let schema = self.config.replication.heartbeat_schema.clone();
        if self.inv(side).heartbeat {
            return;
        }
        let node = self.name(side).to_string();
        self.push(
            format!("heartbeat.{node}"),
            side,
            Action::Sql {
                statements: vec![
                    format!("CREATE SCHEMA IF NOT EXISTS {}", ident(&schema)),
                    format!(
                        "CREATE TABLE IF NOT EXISTS {} (node text PRIMARY KEY, seq bigint NOT \
                         NULL, beat_at timestamptz NOT NULL)",
                        qualified(&schema, "heartbeat")
                    ),
                ],
                secret: None,
            },
            "each node writes its row here and reads the other's: end-to-end lag both ways",
            false,
            Postcondition::HeartbeatTable { schema },
        );
    }

    fn publication(&mut self, side: Side) {
        let name = self.pub_name(side);
        if self.inv(side).publication(name).is_some() {
            return;
        }
        let node = self.name(side).to_string();
        self.push(
            format!("publication.{node}"),
            side,
            Action::Sql {
                statements: vec![format!("CREATE PUBLICATION {} FOR ALL TABLES", ident(name))],
                secret: None,
            },
            format!(
                "node {}'s subscription reads every table's changes from it",
                self.name(side.peer())
            ),
            false,
            Postcondition::Publication {
                name: name.to_string(),
            },
        );
    }

    fn subscription(&mut self, on: Side, copy_data: bool) {
        let name = self.sub_name(on);
        let node = self.name(on).to_string();
        let publisher = on.peer();
        if let Some(s) = self.inv(on).subscription(name) {
            if !s.enabled {
                self.push(
                    format!("enable.{node}"),
                    on,
                    Action::Sql {
                        statements: vec![format!("ALTER SUBSCRIPTION {} ENABLE", ident(name))],
                        secret: None,
                    },
                    "the subscription exists but is disabled: changes do not flow",
                    false,
                    Postcondition::SubscriptionEnabled {
                        name: name.to_string(),
                    },
                );
            }
            return;
        }
        let r = &self.config.replication;
        let pn = &self.config.nodes[publisher.index()];
        let host = pn
            .peer_address()
            .map(|a| a.to_string())
            .unwrap_or_else(|| pn.hostname.clone());
        let user = if self.dedicated_role() {
            r.role.clone()
        } else {
            pn.postgres.user.clone()
        };
        let conninfo = ConnInfo::new(&host, pn.postgres.port, &pn.postgres.dbname, &user);
        let stmt = format!(
            "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (copy_data = {copy_data}, \
             origin = none)",
            ident(name),
            literal(&conninfo.render()),
            ident(self.pub_name(publisher)),
        );
        let why = if copy_data {
            format!(
                "node {node} receives node {}'s changes; copy_data = true copies every table \
                 first; origin = none stops changes from looping back",
                self.name(publisher)
            )
        } else {
            format!(
                "node {node} receives node {}'s changes; copy_data = false because the data is \
                 already here; origin = none stops changes from looping back",
                self.name(publisher)
            )
        };
        self.push(
            format!("subscription.{node}"),
            on,
            Action::Sql {
                statements: vec![stmt],
                secret: Some(SecretUse::ConnInfoPassword {
                    publisher,
                    conninfo,
                }),
            },
            why,
            false,
            Postcondition::SubscriptionEnabled {
                name: name.to_string(),
            },
        );
    }

    /// An existing subscription misses tables its publisher publishes (the heartbeat table
    /// this plan creates, or tables created since): `REFRESH PUBLICATION` adds them.
    fn refresh(&mut self, on: Side) {
        let name = self.sub_name(on);
        let publisher = on.peer();
        let pub_name = self.pub_name(publisher);
        let Some(s) = self.inv(on).subscription(name) else {
            return;
        };
        let heartbeat_new = !self.inv(on).heartbeat || !self.inv(publisher).heartbeat;
        let published = self
            .inv(publisher)
            .publication(pub_name)
            .map_or(0, |p| p.table_count);
        if !heartbeat_new && published <= s.tables_total() {
            return;
        }
        let node = self.name(on).to_string();
        self.push(
            format!("refresh.{node}"),
            on,
            Action::Sql {
                statements: vec![format!(
                    "ALTER SUBSCRIPTION {} REFRESH PUBLICATION WITH (copy_data = false)",
                    ident(name)
                )],
                secret: None,
            },
            "the subscription does not include every published table yet (new tables are \
             added by REFRESH PUBLICATION only); copy_data = false: their rows are not copied",
            false,
            Postcondition::SubscriptionCoversPublication {
                name: name.to_string(),
                publisher,
                publication: pub_name.to_string(),
            },
        );
    }

    fn wait_copy(&mut self, on: Side) {
        let name = self.sub_name(on);
        let ready = self
            .inv(on)
            .subscription(name)
            .is_some_and(|s: &SubscriptionInfo| s.tables_ready() == s.tables_total());
        if ready {
            return;
        }
        let node = self.name(on).to_string();
        self.push(
            format!("copy.{node}"),
            on,
            Action::WaitForCopy {
                subscription: name.to_string(),
                publisher: on.peer(),
            },
            "the reverse subscription may start only when the initial copy is complete",
            false,
            Postcondition::AllTablesReady {
                subscription: name.to_string(),
            },
        );
    }

    fn sequences(&mut self, on: Side, from: Side) {
        let behind = !sequences_behind(self.inv(on), self.inv(from)).is_empty();
        if !behind && !self.creates_sub(on) {
            return;
        }
        let node = self.name(on).to_string();
        self.push(
            format!("sequences.{node}"),
            on,
            Action::SyncSequences { from },
            "logical replication copies no sequence values: without this, node B's first insert \
             into a serial table (e.g. Laravel's jobs) collides with a copied id",
            false,
            Postcondition::SequencesCaughtUp { from },
        );
    }
}

/// Sequences of `to` whose last value is below `from`'s: `(qualified name, from's value)`.
pub fn sequences_behind(to: &Inventory, from: &Inventory) -> Vec<(String, i64)> {
    to.sequences
        .iter()
        .filter(|s| s.increment > 0)
        .filter_map(|s| {
            let f = from
                .sequences
                .iter()
                .find(|f| f.schema == s.schema && f.name == s.name)?;
            let fv = f.last_value?;
            (s.last_value.is_none_or(|v| v < fv)).then(|| (s.qualified(), fv))
        })
        .collect()
}

fn node_name(config: &ClusterConfig, side: Side) -> String {
    config
        .nodes
        .get(side.index())
        .map(|n| n.name.clone())
        .unwrap_or_else(|| format!("{side:?}").to_lowercase())
}

fn first_few(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        let _ = write!(s, ", … {} more", items.len() - n);
    }
    s
}

/// Tables only on one side, and tables whose shape differs.
pub fn schema_diff(a: &Inventory, b: &Inventory, except_schema: &str) -> String {
    let key = |t: &super::inventory::TableInfo| format!("{}.{}", t.schema, t.name);
    let at: Vec<_> = a.user_tables(except_schema).collect();
    let bt: Vec<_> = b.user_tables(except_schema).collect();
    let only_a: Vec<String> = at
        .iter()
        .filter(|t| !bt.iter().any(|u| key(u) == key(t)))
        .map(|t| key(t))
        .collect();
    let only_b: Vec<String> = bt
        .iter()
        .filter(|t| !at.iter().any(|u| key(u) == key(t)))
        .map(|t| key(t))
        .collect();
    let changed: Vec<String> = at
        .iter()
        .filter(|t| bt.iter().any(|u| key(u) == key(t) && u.shape != t.shape))
        .map(|t| key(t))
        .collect();
    let mut parts = Vec::new();
    if !only_a.is_empty() {
        parts.push(format!(
            "{} table(s) only on {}: {}",
            only_a.len(),
            a.node,
            first_few(&only_a, 5)
        ));
    }
    if !only_b.is_empty() {
        parts.push(format!(
            "{} table(s) only on {}: {}",
            only_b.len(),
            b.node,
            first_few(&only_b, 5)
        ));
    }
    if !changed.is_empty() {
        parts.push(format!(
            "{} table(s) differ in columns, keys or replica identity: {}",
            changed.len(),
            first_few(&changed, 5)
        ));
    }
    if parts.is_empty() {
        "fingerprints differ".into()
    } else {
        parts.join("; ")
    }
}

fn teardown(a: &Inventory, b: &Inventory, config: &ClusterConfig) -> ReplicationPlan {
    let r = &config.replication;
    let names = [node_name(config, Side::A), node_name(config, Side::B)];
    let inv = [a, b];
    let mut steps = Vec::new();
    let mut push = |id: String, side: Side, action: Action, why: &str, post: Postcondition| {
        steps.push(Step {
            id,
            side,
            node: names[side.index()].clone(),
            action,
            why: why.to_string(),
            destructive: true,
            postcondition: post,
        });
    };
    let sql = |s: String| Action::Sql {
        statements: vec![s],
        secret: None,
    };
    for (on, sub) in [
        (Side::A, &r.subscription_b_to_a),
        (Side::B, &r.subscription_a_to_b),
    ] {
        let node = &names[on.index()];
        let publisher = inv[on.peer().index()];
        let mut slots: Vec<String> = Vec::new();
        if let Some(s) = inv[on.index()].subscription(sub) {
            let q = ident(sub);
            if s.enabled {
                push(
                    format!("disable.{node}"),
                    on,
                    sql(format!("ALTER SUBSCRIPTION {q} DISABLE")),
                    "stop the apply worker so the slot can be detached",
                    Postcondition::SubscriptionDisabled { name: sub.clone() },
                );
            }
            if let Some(slot) = &s.slot_name {
                slots.push(slot.clone());
                push(
                    format!("detach.{node}"),
                    on,
                    sql(format!("ALTER SUBSCRIPTION {q} SET (slot_name = NONE)")),
                    "so DROP SUBSCRIPTION does not need the publisher; its slot is dropped there next",
                    Postcondition::SubscriptionDetached { name: sub.clone() },
                );
            }
            push(
                format!("drop-subscription.{node}"),
                on,
                sql(format!("DROP SUBSCRIPTION {q}")),
                "remove the subscription",
                Postcondition::SubscriptionAbsent { name: sub.clone() },
            );
            // Table-sync slots left by an interrupted initial copy.
            let prefix = format!("pg_{}_sync_", s.oid);
            slots.extend(
                publisher
                    .slots
                    .iter()
                    .filter(|sl| sl.name.starts_with(&prefix))
                    .map(|sl| sl.name.clone()),
            );
        }
        // The slot named after the subscription, also when an earlier teardown left it orphaned.
        slots.push(sub.clone());
        slots.sort();
        slots.dedup();
        for slot in slots {
            if publisher.slot(&slot).is_some() {
                let pnode = &names[on.peer().index()];
                push(
                    format!("drop-slot.{pnode}.{slot}"),
                    on.peer(),
                    Action::DropSlot { slot: slot.clone() },
                    "an orphaned slot keeps WAL on the publisher until its disk fills",
                    Postcondition::SlotAbsent { name: slot },
                );
            }
        }
    }
    for (side, p) in [(Side::A, &r.publication_a), (Side::B, &r.publication_b)] {
        if inv[side.index()].publication(p).is_some() {
            push(
                format!("drop-publication.{}", names[side.index()]),
                side,
                sql(format!("DROP PUBLICATION {}", ident(p))),
                "remove the publication",
                Postcondition::PublicationAbsent { name: p.clone() },
            );
        }
    }
    for side in Side::BOTH {
        if inv[side.index()].heartbeat {
            push(
                format!("drop-heartbeat.{}", names[side.index()]),
                side,
                sql(format!(
                    "DROP SCHEMA {} CASCADE",
                    ident(&r.heartbeat_schema)
                )),
                "remove the heartbeat table and its schema",
                Postcondition::SchemaAbsent {
                    name: r.heartbeat_schema.clone(),
                },
            );
        }
    }
    ReplicationPlan {
        kind: PlanKind::Teardown,
        nodes: names.clone(),
        steps,
        adopted: Vec::new(),
        notes: vec![format!(
            "the replication role {} and the pg_hba.conf block stay; remove them by hand if wanted",
            r.role
        )],
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
