//! Schema drift between the two nodes, and tables a subscription does not include yet.
//!
//! DDL is not replicated: after an update, a table or column that exists on one node only
//! stops replication of that table (the apply worker fails on the missing column) or is never
//! replicated (a new table is not in any subscription until `REFRESH PUBLICATION`). [`diff`]
//! compares two [`SchemaSnapshot`]s table by table (columns and types, primary and unique keys,
//! replica identity, publication membership) and is pure; [`drift`] reads both nodes and adds,
//! per subscription, the tables its publisher publishes that it does not include yet;
//! [`refresh_subscriptions`] runs `ALTER SUBSCRIPTION … REFRESH PUBLICATION` on both nodes
//! (also used by the upgrade procedure).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use super::inventory::{SchemaSnapshot, TableDetail, read_schema};
use super::pair::Pair;
use super::plan::Side;
use super::sql::ident;
use crate::pg::PgConn;
use crate::{Error, Result};

/// One difference of a table between the nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DriftChange {
    /// The table exists on `node` only.
    OnlyOn {
        /// The node that has it.
        node: String,
    },
    /// A column exists on `node` only (added there, or removed on the other).
    ColumnOnlyOn {
        /// Column.
        column: String,
        /// Its type.
        data_type: String,
        /// The node that has it.
        node: String,
    },
    /// A column's type differs.
    TypeChanged {
        /// Column.
        column: String,
        /// Type on node A.
        a: String,
        /// Type on node B.
        b: String,
    },
    /// A column is NOT NULL on one node only.
    NullabilityChanged {
        /// Column.
        column: String,
        /// NOT NULL on node A.
        a_not_null: bool,
        /// NOT NULL on node B.
        b_not_null: bool,
    },
    /// The primary key differs (columns in key order; empty: none).
    PrimaryKeyChanged {
        /// On node A.
        a: Vec<String>,
        /// On node B.
        b: Vec<String>,
    },
    /// Unique keys differ.
    UniqueKeysChanged {
        /// Only on node A (`col1,col2`).
        only_a: Vec<String>,
        /// Only on node B.
        only_b: Vec<String>,
    },
    /// Replica identity differs.
    ReplicaIdentityChanged {
        /// On node A.
        a: String,
        /// On node B.
        b: String,
    },
    /// `node`'s publication does not publish the table.
    NotInPublication {
        /// The node.
        node: String,
        /// Its publication.
        publication: String,
    },
}

impl DriftChange {
    /// One phrase, with the node names.
    pub fn describe(&self, names: &[String; 2]) -> String {
        match self {
            DriftChange::OnlyOn { node } => format!("only on {node}"),
            DriftChange::ColumnOnlyOn {
                column,
                data_type,
                node,
            } => format!("column {} ({data_type}) only on {node}", ident(column)),
            DriftChange::TypeChanged { column, a, b } => format!(
                "column {} is {a} on {} but {b} on {}",
                ident(column),
                names[0],
                names[1]
            ),
            DriftChange::NullabilityChanged {
                column, a_not_null, ..
            } => format!(
                "column {} is NOT NULL on {} only",
                ident(column),
                if *a_not_null { &names[0] } else { &names[1] }
            ),
            DriftChange::PrimaryKeyChanged { a, b } => format!(
                "primary key ({}) on {} but ({}) on {}",
                a.join(","),
                names[0],
                b.join(","),
                names[1]
            ),
            DriftChange::UniqueKeysChanged { only_a, only_b } => {
                let mut parts = Vec::new();
                if !only_a.is_empty() {
                    parts.push(format!(
                        "unique ({}) only on {}",
                        only_a.join("), ("),
                        names[0]
                    ));
                }
                if !only_b.is_empty() {
                    parts.push(format!(
                        "unique ({}) only on {}",
                        only_b.join("), ("),
                        names[1]
                    ));
                }
                parts.join(", ")
            }
            DriftChange::ReplicaIdentityChanged { a, b } => format!(
                "replica identity {a} on {} but {b} on {}",
                names[0], names[1]
            ),
            DriftChange::NotInPublication { node, publication } => {
                format!("not in {node}'s publication {publication}")
            }
        }
    }
}

/// The differences of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableDrift {
    /// `"schema"."table"`.
    pub table: String,
    /// What differs.
    pub changes: Vec<DriftChange>,
}

impl TableDrift {
    /// Every change on one line, `; `-separated (`names`: node A's and B's).
    pub(crate) fn describe(&self, names: &[String; 2]) -> String {
        self.changes
            .iter()
            .map(|c| c.describe(names))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Compares two nodes' tables (pure). Tables equal on both nodes and published by both are
/// left out; the result is sorted by table.
pub fn diff(a: &SchemaSnapshot, b: &SchemaSnapshot) -> Vec<TableDrift> {
    let key = |t: &TableDetail| (t.schema.clone(), t.name.clone());
    let at: BTreeMap<_, _> = a.tables.iter().map(|t| (key(t), t)).collect();
    let bt: BTreeMap<_, _> = b.tables.iter().map(|t| (key(t), t)).collect();
    let names: BTreeSet<_> = at.keys().chain(bt.keys()).cloned().collect();
    let mut out = Vec::new();
    for k in names {
        let mut changes = Vec::new();
        let (ta, tb) = (at.get(&k), bt.get(&k));
        match (ta, tb) {
            (Some(_), None) => changes.push(DriftChange::OnlyOn {
                node: a.node.clone(),
            }),
            (None, Some(_)) => changes.push(DriftChange::OnlyOn {
                node: b.node.clone(),
            }),
            (Some(ta), Some(tb)) => {
                compare(ta, tb, &a.node, &b.node, &mut changes);
                for (t, snap) in [(ta, a), (tb, b)] {
                    if t.published == Some(false) {
                        changes.push(DriftChange::NotInPublication {
                            node: snap.node.clone(),
                            publication: snap.publication.clone(),
                        });
                    }
                }
            }
            (None, None) => {}
        }
        if !changes.is_empty() {
            let t = ta.or(tb).expect("the name came from one of them");
            out.push(TableDrift {
                table: t.qualified(),
                changes,
            });
        }
    }
    out
}

fn compare(ta: &TableDetail, tb: &TableDetail, na: &str, nb: &str, out: &mut Vec<DriftChange>) {
    for ca in &ta.columns {
        match tb.columns.iter().find(|c| c.name == ca.name) {
            None => out.push(DriftChange::ColumnOnlyOn {
                column: ca.name.clone(),
                data_type: ca.data_type.clone(),
                node: na.to_string(),
            }),
            Some(cb) => {
                if ca.data_type != cb.data_type {
                    out.push(DriftChange::TypeChanged {
                        column: ca.name.clone(),
                        a: ca.data_type.clone(),
                        b: cb.data_type.clone(),
                    });
                }
                if ca.not_null != cb.not_null {
                    out.push(DriftChange::NullabilityChanged {
                        column: ca.name.clone(),
                        a_not_null: ca.not_null,
                        b_not_null: cb.not_null,
                    });
                }
            }
        }
    }
    for cb in &tb.columns {
        if !ta.columns.iter().any(|c| c.name == cb.name) {
            out.push(DriftChange::ColumnOnlyOn {
                column: cb.name.clone(),
                data_type: cb.data_type.clone(),
                node: nb.to_string(),
            });
        }
    }
    if ta.primary_key != tb.primary_key {
        out.push(DriftChange::PrimaryKeyChanged {
            a: ta.primary_key.clone(),
            b: tb.primary_key.clone(),
        });
    }
    let only = |x: &TableDetail, y: &TableDetail| -> Vec<String> {
        x.unique_keys
            .iter()
            .filter(|k| !y.unique_keys.contains(k))
            .cloned()
            .collect()
    };
    let (only_a, only_b) = (only(ta, tb), only(tb, ta));
    if !only_a.is_empty() || !only_b.is_empty() {
        out.push(DriftChange::UniqueKeysChanged { only_a, only_b });
    }
    if ta.replica_identity != tb.replica_identity {
        out.push(DriftChange::ReplicaIdentityChanged {
            a: ta.replica_identity.clone(),
            b: tb.replica_identity.clone(),
        });
    }
}

/// What a subscription includes compared with what its publisher publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionTables {
    /// The subscription.
    pub subscription: String,
    /// The node it is on.
    pub subscriber: String,
    /// The node it subscribes to.
    pub publisher: String,
    /// It exists.
    pub exists: bool,
    /// It is enabled (`REFRESH PUBLICATION` needs that).
    pub enabled: bool,
    /// Published, present on the subscriber, not in the subscription yet: `REFRESH
    /// PUBLICATION` adds them.
    pub missing: Vec<String>,
    /// Published but absent on the subscriber: create them first (a refresh would fail).
    pub absent: Vec<String>,
    /// In the subscription but no longer published: a refresh drops them.
    pub stale: Vec<String>,
}

impl SubscriptionTables {
    /// A refresh would change something.
    pub fn refresh_needed(&self) -> bool {
        !self.missing.is_empty() || !self.stale.is_empty()
    }
}

/// Schema drift and subscription coverage of the pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftReport {
    /// Node names, A then B.
    pub nodes: [String; 2],
    /// Nodes whose publication does not exist (replication not set up there).
    pub publication_missing: Vec<String>,
    /// Tables that differ.
    pub tables: Vec<TableDrift>,
    /// Both subscriptions (A → B first).
    pub subscriptions: Vec<SubscriptionTables>,
}

impl DriftReport {
    /// Tables differ between the nodes.
    pub fn has_drift(&self) -> bool {
        !self.tables.is_empty()
    }

    /// Subscriptions that a refresh would change.
    pub fn refresh_needed(&self) -> Vec<&SubscriptionTables> {
        self.subscriptions
            .iter()
            .filter(|s| s.refresh_needed())
            .collect()
    }

    /// No drift and nothing to refresh.
    pub fn clean(&self) -> bool {
        !self.has_drift() && self.refresh_needed().is_empty()
    }

    /// One line: drift and refresh counts.
    pub fn summary(&self) -> String {
        let refresh: usize = self
            .subscriptions
            .iter()
            .map(|s| s.missing.len() + s.stale.len())
            .sum();
        format!(
            "{}; {}",
            if self.tables.is_empty() {
                "no drift".to_string()
            } else {
                format!("drift in {} table(s)", self.tables.len())
            },
            if refresh == 0 {
                "subscriptions include every published table".to_string()
            } else {
                format!("{refresh} table(s) need a subscription refresh")
            }
        )
    }

    /// One line per finding, for `status` (empty when clean).
    pub fn findings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.has_drift() {
            let first: Vec<String> = self
                .tables
                .iter()
                .take(3)
                .map(|t| format!("{}: {}", t.table, t.describe(&self.nodes)))
                .collect();
            out.push(format!(
                "schema drift in {} table(s): {}{} (see `fspbx-ha replication drift`)",
                self.tables.len(),
                first.join(" | "),
                if self.tables.len() > 3 { " | …" } else { "" }
            ));
        }
        for s in &self.subscriptions {
            if !s.missing.is_empty() {
                out.push(format!(
                    "{} on {}: {} table(s) published by {} not subscribed yet ({}): run \
                     `fspbx-ha replication refresh --yes`",
                    s.subscription,
                    s.subscriber,
                    s.missing.len(),
                    s.publisher,
                    s.missing.join(", ")
                ));
            }
            if !s.stale.is_empty() {
                out.push(format!(
                    "{} on {}: {} table(s) no longer published by {} ({}): run `fspbx-ha \
                     replication refresh --yes`",
                    s.subscription,
                    s.subscriber,
                    s.stale.len(),
                    s.publisher,
                    s.stale.join(", ")
                ));
            }
        }
        out
    }

    /// The readable diff.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.tables.is_empty() {
            let _ = writeln!(
                out,
                "schema: {} and {} have the same tables, columns, keys and replica identity",
                self.nodes[0], self.nodes[1]
            );
        } else {
            let _ = writeln!(
                out,
                "schema drift between {} and {}: {} table(s) differ",
                self.nodes[0],
                self.nodes[1],
                self.tables.len()
            );
            for t in &self.tables {
                let _ = writeln!(out, "  {}", t.table);
                for c in &t.changes {
                    let _ = writeln!(out, "    - {}", c.describe(&self.nodes));
                }
            }
        }
        for n in &self.publication_missing {
            let _ = writeln!(
                out,
                "node {n}: its publication does not exist (replication not set up)"
            );
        }
        for s in &self.subscriptions {
            if !s.exists {
                let _ = writeln!(
                    out,
                    "{} on {}: does not exist",
                    s.subscription, s.subscriber
                );
                continue;
            }
            let mut line = format!(
                "{} on {} (from {}): ",
                s.subscription, s.subscriber, s.publisher
            );
            if !s.refresh_needed() && s.absent.is_empty() {
                line.push_str("includes every published table");
            } else {
                let mut parts = Vec::new();
                if !s.missing.is_empty() {
                    parts.push(format!("refresh needed for {}", s.missing.join(", ")));
                }
                if !s.stale.is_empty() {
                    parts.push(format!("no longer published: {}", s.stale.join(", ")));
                }
                if !s.absent.is_empty() {
                    parts.push(format!(
                        "published but absent on {}: {} (create them first)",
                        s.subscriber,
                        s.absent.join(", ")
                    ));
                }
                line.push_str(&parts.join("; "));
            }
            let _ = writeln!(out, "{line}");
        }
        out
    }
}

/// Reads both nodes' schemas and both subscriptions' coverage.
pub async fn drift(pair: &Pair) -> Result<DriftReport> {
    let r = &pair.config().replication;
    let hb = &r.heartbeat_schema;
    let (a, b) = futures_util::future::join(
        read_schema(
            pair.pg(Side::A),
            pair.node_name(Side::A),
            &r.publication_a,
            hb,
        ),
        read_schema(
            pair.pg(Side::B),
            pair.node_name(Side::B),
            &r.publication_b,
            hb,
        ),
    )
    .await;
    let (a, b) = (a?, b?);
    let mut subscriptions = Vec::new();
    for (on, sub) in [
        (Side::B, &r.subscription_a_to_b),
        (Side::A, &r.subscription_b_to_a),
    ] {
        subscriptions.push(coverage(pair, on, sub).await?);
    }
    Ok(DriftReport {
        nodes: [a.node.clone(), b.node.clone()],
        publication_missing: [&a, &b]
            .iter()
            .filter(|s| !s.publication_exists)
            .map(|s| s.node.clone())
            .collect(),
        tables: diff(&a, &b),
        subscriptions,
    })
}

async fn names(
    conn: &PgConn,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    what: &'static str,
) -> Result<BTreeSet<String>> {
    Ok(conn
        .client()
        .query(sql, params)
        .await
        .map_err(conn.query_error(what))?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect())
}

/// Subscription `sub` on node `on`: what its publisher publishes that it does not include.
async fn coverage(pair: &Pair, on: Side, sub: &str) -> Result<SubscriptionTables> {
    let sc = pair.pg(on);
    let pc = pair.pg(on.peer());
    let mut out = SubscriptionTables {
        subscription: sub.to_string(),
        subscriber: pair.node_name(on).to_string(),
        publisher: pair.node_name(on.peer()).to_string(),
        exists: false,
        enabled: false,
        missing: vec![],
        absent: vec![],
        stale: vec![],
    };
    let row = sc
        .client()
        .query_opt(
            "SELECT s.oid::int8, s.subenabled, s.subpublications::text[]
               FROM pg_catalog.pg_subscription s
              WHERE s.subname = $1
                AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())",
            &[&sub],
        )
        .await
        .map_err(sc.query_error("reading the subscription"))?;
    let Some(row) = row else { return Ok(out) };
    out.exists = true;
    out.enabled = row.get(1);
    let oid: i64 = row.get(0);
    let pubs: Vec<String> = row.get(2);
    let published = names(
        pc,
        "SELECT DISTINCT format('%I.%I', schemaname, tablename) FROM pg_catalog.pg_publication_tables
          WHERE pubname = ANY($1)",
        &[&pubs],
        "listing the published tables",
    )
    .await?;
    let subscribed = names(
        sc,
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_subscription_rel r
           JOIN pg_catalog.pg_class c ON c.oid = r.srrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE r.srsubid = $1::int8::oid",
        &[&oid],
        "reading the subscription's tables",
    )
    .await?;
    let present = names(
        sc,
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
        &[],
        "listing the subscriber's tables",
    )
    .await?;
    for t in published.difference(&subscribed) {
        if present.contains(t) {
            out.missing.push(t.clone());
        } else {
            out.absent.push(t.clone());
        }
    }
    out.stale = subscribed.difference(&published).cloned().collect();
    Ok(out)
}

/// One subscription in a refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionRefresh {
    /// What the subscription includes, before.
    #[serde(flatten)]
    pub tables: SubscriptionTables,
    /// The statement (`None`: the subscription does not exist or is disabled).
    pub statement: Option<String>,
    /// It ran.
    pub done: bool,
    /// Why it was not run, when it was not.
    pub note: Option<String>,
}

/// What [`refresh_subscriptions`] did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    /// Nothing ran.
    pub dry_run: bool,
    /// Whether the rows of tables added are copied (`copy_data`).
    pub copy_data: bool,
    /// Both subscriptions, A → B first.
    pub subscriptions: Vec<SubscriptionRefresh>,
}

impl RefreshReport {
    /// Human lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.subscriptions {
            let t = &s.tables;
            let head = format!(
                "{} on {} (from {})",
                t.subscription, t.subscriber, t.publisher
            );
            match (&s.statement, &s.note) {
                (_, Some(note)) => {
                    let _ = writeln!(out, "{head}: {note}");
                }
                (Some(stmt), None) => {
                    let _ = writeln!(
                        out,
                        "{head}: {} {} table(s) to add{}, {} to drop\n    {stmt}",
                        if s.done {
                            "refreshed:"
                        } else {
                            "would refresh:"
                        },
                        t.missing.len(),
                        if t.missing.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", t.missing.join(", "))
                        },
                        t.stale.len()
                    );
                }
                (None, None) => {}
            }
        }
        if self.dry_run {
            let _ = writeln!(out, "dry run: nothing changed; run again with --yes");
        }
        out
    }
}

/// `ALTER SUBSCRIPTION … REFRESH PUBLICATION WITH (copy_data = false)` on both nodes: each
/// subscription picks up the tables its publisher publishes now (new tables after an update).
/// Rows of added tables are not copied (both nodes ran the same migrations; copying would
/// collide with their own rows). With `dry_run` only says what it would do. Refused before
/// anything runs when a published table is absent on the subscriber ([`Error::RefreshBlocked`]).
pub async fn refresh_subscriptions(pair: &Pair, dry_run: bool) -> Result<RefreshReport> {
    refresh_subscriptions_with(pair, dry_run, false).await
}

/// [`refresh_subscriptions`] with a choice of `copy_data`: `true` copies the existing rows of
/// added tables from the publisher (for a table filled on one node only).
pub async fn refresh_subscriptions_with(
    pair: &Pair,
    dry_run: bool,
    copy_data: bool,
) -> Result<RefreshReport> {
    let r = &pair.config().replication;
    let mut subs = Vec::new();
    for (on, sub) in [
        (Side::B, &r.subscription_a_to_b),
        (Side::A, &r.subscription_b_to_a),
    ] {
        let tables = coverage(pair, on, sub).await?;
        let (statement, note) = if !tables.exists {
            (
                None,
                Some("does not exist (replication not set up)".to_string()),
            )
        } else if !tables.enabled {
            (
                None,
                Some(
                    "disabled: REFRESH PUBLICATION needs it enabled (ALTER SUBSCRIPTION … ENABLE)"
                        .to_string(),
                ),
            )
        } else {
            (
                Some(format!(
                    "ALTER SUBSCRIPTION {} REFRESH PUBLICATION WITH (copy_data = {copy_data})",
                    ident(sub)
                )),
                None,
            )
        };
        subs.push((
            on,
            SubscriptionRefresh {
                tables,
                statement,
                done: false,
                note,
            },
        ));
    }
    if !dry_run {
        if let Some((_, s)) = subs
            .iter()
            .find(|(_, s)| s.statement.is_some() && !s.tables.absent.is_empty())
        {
            return Err(Error::RefreshBlocked {
                node: s.tables.subscriber.clone(),
                subscription: s.tables.subscription.clone(),
                publisher: s.tables.publisher.clone(),
                tables: s.tables.absent.join(", "),
            });
        }
        for (on, s) in subs.iter_mut() {
            if let Some(stmt) = &s.statement {
                let conn = pair.pg(*on);
                conn.client()
                    .batch_execute(stmt)
                    .await
                    .map_err(conn.query_error("refreshing the subscription"))?;
                s.done = true;
            }
        }
    }
    Ok(RefreshReport {
        dry_run,
        copy_data,
        subscriptions: subs.into_iter().map(|(_, s)| s).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::inventory::ColumnDetail;
    use super::*;

    fn col(name: &str, ty: &str) -> ColumnDetail {
        ColumnDetail {
            name: name.into(),
            data_type: ty.into(),
            not_null: false,
        }
    }

    fn table(name: &str) -> TableDetail {
        TableDetail {
            schema: "public".into(),
            name: name.into(),
            columns: vec![col("id", "bigint"), col("note", "text")],
            primary_key: vec!["id".into()],
            unique_keys: vec![],
            replica_identity: "default".into(),
            published: Some(true),
        }
    }

    fn snap(node: &str, tables: Vec<TableDetail>) -> SchemaSnapshot {
        SchemaSnapshot {
            node: node.into(),
            publication: format!("pub_{node}"),
            publication_exists: true,
            tables,
        }
    }

    #[test]
    fn equal_schemas_have_no_drift() {
        let a = snap("a", vec![table("jobs"), table("users")]);
        let b = snap("b", vec![table("jobs"), table("users")]);
        assert!(diff(&a, &b).is_empty());
    }

    #[test]
    fn every_kind_of_difference_is_named() {
        let mut jobs_b = table("jobs");
        jobs_b.columns.push(col("extra", "integer"));
        jobs_b.columns[1].data_type = "character varying(10)".into();
        jobs_b.columns[0].not_null = true;
        jobs_b.replica_identity = "full".into();
        jobs_b.unique_keys = vec!["note".into()];
        jobs_b.published = Some(false);
        let mut users_a = table("users");
        users_a.primary_key = vec![];
        users_a.columns.remove(1);
        let a = snap("a", vec![table("jobs"), table("only_a"), users_a]);
        let b = snap("b", vec![jobs_b, table("only_b"), table("users")]);
        let d = diff(&a, &b);
        let names = ["a".to_string(), "b".to_string()];
        let by_table: BTreeMap<&str, Vec<String>> = d
            .iter()
            .map(|t| {
                (
                    t.table.as_str(),
                    t.changes.iter().map(|c| c.describe(&names)).collect(),
                )
            })
            .collect();
        assert_eq!(
            by_table["\"public\".\"jobs\""],
            [
                "column \"id\" is NOT NULL on b only",
                "column \"note\" is text on a but character varying(10) on b",
                "column \"extra\" (integer) only on b",
                "unique (note) only on b",
                "replica identity default on a but full on b",
                "not in b's publication pub_b",
            ]
        );
        assert_eq!(by_table["\"public\".\"only_a\""], ["only on a"]);
        assert_eq!(by_table["\"public\".\"only_b\""], ["only on b"]);
        assert_eq!(
            by_table["\"public\".\"users\""],
            [
                "column \"note\" (text) only on b",
                "primary key () on a but (id) on b"
            ]
        );
        assert_eq!(d.len(), 4);
        assert!(matches!(
            d[0].changes[1],
            DriftChange::TypeChanged { ref a, .. } if a == "text"
        ));
    }

    #[test]
    fn findings_and_render_say_what_to_do() {
        let report = DriftReport {
            nodes: ["a".into(), "b".into()],
            publication_missing: vec![],
            tables: diff(
                &snap("a", vec![table("jobs"), table("new_table")]),
                &snap("b", vec![table("jobs")]),
            ),
            subscriptions: vec![SubscriptionTables {
                subscription: "sub_a_to_b".into(),
                subscriber: "b".into(),
                publisher: "a".into(),
                exists: true,
                enabled: true,
                missing: vec!["public.fresh".into()],
                absent: vec!["public.new_table".into()],
                stale: vec![],
            }],
        };
        assert!(report.has_drift() && !report.clean());
        let f = report.findings();
        assert!(
            f[0].starts_with("schema drift in 1 table(s): \"public\".\"new_table\": only on a"),
            "{f:?}"
        );
        assert!(
            f[1].contains("public.fresh") && f[1].contains("refresh --yes"),
            "{f:?}"
        );
        let text = report.render();
        assert!(text.contains("    - only on a"), "{text}");
        assert!(
            text.contains("published but absent on b: public.new_table"),
            "{text}"
        );
    }
}
