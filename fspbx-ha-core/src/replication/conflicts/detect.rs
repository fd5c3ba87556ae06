//! Reading both directions: two samples of each subscription, the subscriber's server log over
//! SSH, and the conflicting row on both nodes.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::judge::{ApplyState, SubscriptionSample, judge, judge_reads};
use super::log::{LogConflict, parse_log};
use crate::Result;
use crate::pg::PgConn;
use crate::replication::pair::Pair;
use crate::replication::plan::Side;
use crate::replication::sql::{ident, literal, qualified};
use crate::replication::status::subscription_stats;
use crate::ssh::SshSession;

/// How `conflicts` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictOptions {
    /// Time between the two reads of each subscription.
    pub sample_interval: Duration,
    /// Read the subscriber's server log over SSH (`replication.log_command`).
    pub read_log: bool,
}

impl Default for ConflictOptions {
    fn default() -> Self {
        ConflictOptions {
            sample_interval: Duration::from_secs(1),
            read_log: true,
        }
    }
}

/// The two versions of a conflicting row, as JSON text (`row_to_json`), so that neither is ever
/// lost silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowVersions {
    /// `"schema"."table"`.
    pub table: String,
    /// The key, `(id)=(5)`.
    pub key: String,
    /// The subscriber node.
    pub subscriber: String,
    /// The subscriber's row now (`None`: no row with that key there).
    pub subscriber_row: Option<String>,
    /// The publisher node.
    pub publisher: String,
    /// The publisher's row now (`None`: no row with that key there).
    pub publisher_row: Option<String>,
}

impl RowVersions {
    /// The two versions, one line each, every line starting with `indent`.
    pub(crate) fn render_into(&self, out: &mut String, indent: &str) {
        let _ = writeln!(
            out,
            "{indent}on {} (subscriber): {}",
            self.subscriber,
            self.subscriber_row.as_deref().unwrap_or("(none)")
        );
        let _ = writeln!(
            out,
            "{indent}on {} (publisher):  {}",
            self.publisher,
            self.publisher_row.as_deref().unwrap_or("(none)")
        );
    }
}

/// One direction's conflicts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectionConflicts {
    /// Publisher node.
    pub from: String,
    /// Subscriber node.
    pub to: String,
    /// Which node is the subscriber.
    pub subscriber: Side,
    /// The subscription (on `to`).
    pub subscription: String,
    /// Flowing, failing, disabled or missing.
    pub state: ApplyState,
    /// Why that state, one line each.
    pub reasons: Vec<String>,
    /// The second read.
    pub sample: Option<SubscriptionSample>,
    /// How much `apply_error_count` rose between the reads.
    pub error_count_rise: i64,
    /// The newest error of this subscription's apply worker in the log (when stuck).
    pub error: Option<LogConflict>,
    /// The table of that error, `"schema"."table"`, when it exists on the subscriber.
    pub table: Option<String>,
    /// Both versions of the conflicting row, when the key is known.
    pub rows: Option<RowVersions>,
    /// Changes PostgreSQL 18 logged as skipped (`update_missing`, `delete_missing`, …) for
    /// this subscription, newest last (at most 20).
    pub skipped_changes: Vec<LogConflict>,
    /// Why the log could not be read or held nothing for this subscription.
    pub log_note: Option<String>,
}

impl DirectionConflicts {
    /// Changes from the publisher are not being applied.
    pub fn stuck(&self) -> bool {
        self.state.stuck()
    }

    fn render_into(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "{} -> {}  ({} on {}): {}",
            self.from,
            self.to,
            self.subscription,
            self.to,
            self.state.as_str()
        );
        for r in &self.reasons {
            let _ = writeln!(out, "  - {r}");
        }
        if let Some(s) = &self.sample
            && !s.conflicts.is_empty()
        {
            let c: Vec<String> = s
                .conflicts
                .iter()
                .filter(|(_, v)| **v > 0)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !c.is_empty() {
                let _ = writeln!(out, "  conflict counters: {}", c.join(" "));
            }
        }
        if let Some(e) = &self.error {
            let _ = writeln!(out, "  error ({}): {}", e.logged, e.message);
            if let Some(d) = &e.detail {
                let _ = writeln!(out, "  detail: {d}");
            }
            let _ = writeln!(
                out,
                "  remote {} on {} in transaction {} finished at {}",
                e.message_type,
                e.relation.as_deref().unwrap_or("?"),
                e.remote_xid.map_or("?".into(), |x| x.to_string()),
                e.finish_lsn.as_deref().unwrap_or("?")
            );
            if let Some(k) = &e.key {
                let _ = writeln!(out, "  key: {}", k.text);
            }
        }
        if let Some(r) = &self.rows {
            let _ = writeln!(out, "  row {} {}:", r.table, r.key);
            r.render_into(out, "    ");
        }
        for s in &self.skipped_changes {
            let _ = writeln!(
                out,
                "  skipped ({}): {} {} on {} key {}",
                s.logged,
                s.kind.name(),
                s.message_type,
                s.relation.as_deref().unwrap_or("?"),
                s.key.as_ref().map_or("?", |k| k.text.as_str())
            );
        }
        if let Some(n) = &self.log_note {
            let _ = writeln!(out, "  log: {n}");
        }
        if self.stuck() {
            let _ = writeln!(
                out,
                "  remedies: fspbx-ha replication resolve --subscription {} (--skip | --resync \
                 TABLE | --fix-row)",
                self.subscription
            );
        }
    }
}

/// Both directions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictReport {
    /// A → B (subscription on B), then B → A.
    pub directions: Vec<DirectionConflicts>,
}

impl ConflictReport {
    /// Directions whose apply worker is stuck.
    pub fn stuck(&self) -> impl Iterator<Item = &DirectionConflicts> {
        self.directions.iter().filter(|d| d.stuck())
    }

    /// Any direction is stuck.
    pub fn any(&self) -> bool {
        self.stuck().next().is_some()
    }

    /// A human report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let n = self.stuck().count();
        let _ = writeln!(
            out,
            "{}",
            if n == 0 {
                "conflicts: none (both apply workers flowing)".to_string()
            } else {
                format!("conflicts: {n} subscription(s) stuck")
            }
        );
        for d in &self.directions {
            out.push('\n');
            d.render_into(&mut out);
        }
        out
    }
}

/// One direction in [`ConflictSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectionSummary {
    /// Publisher node.
    pub from: String,
    /// Subscriber node.
    pub to: String,
    /// The subscription.
    pub subscription: String,
    /// From several reads: flowing, failing (worker absent, replaced or its errors rising),
    /// disabled or missing.
    pub state: ApplyState,
    /// `apply_error_count` since the statistics were reset.
    pub apply_error_count: i64,
    /// Sum of the PostgreSQL 18 `confl_*` counters.
    pub conflicts_counted: i64,
}

/// A cheap per-direction state for `status` (several reads, no log, no SSH).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConflictSummary {
    /// A → B, then B → A.
    pub directions: Vec<DirectionSummary>,
}

impl ConflictSummary {
    /// How many directions look stuck.
    pub fn stuck(&self) -> usize {
        self.directions.iter().filter(|d| d.state.stuck()).count()
    }
}

/// The pair's two directions: (subscriber, subscription name).
pub(crate) fn directions(pair: &Pair) -> [(Side, String); 2] {
    let r = &pair.config().replication;
    [
        (Side::B, r.subscription_a_to_b.clone()),
        (Side::A, r.subscription_b_to_a.clone()),
    ]
}

/// Reads one sample of `sub` on `conn`; `None` when it does not exist.
pub(crate) async fn sample(conn: &PgConn, sub: &str) -> Result<Option<SubscriptionSample>> {
    let row = conn
        .client()
        .query_opt(
            "SELECT s.oid::int8, s.subenabled, s.subslotname::text,
                    (SELECT w.pid FROM pg_catalog.pg_stat_subscription w
                      WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL
                      ORDER BY w.pid LIMIT 1),
                    (SELECT o.remote_lsn::text FROM pg_catalog.pg_replication_origin_status o
                      WHERE o.external_id = 'pg_' || s.oid::text)
               FROM pg_catalog.pg_subscription s
              WHERE s.subname = $1
                AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database
                                  WHERE datname = current_database())",
            &[&sub],
        )
        .await
        .map_err(conn.query_error("reading the subscription"))?;
    let Some(row) = row else { return Ok(None) };
    let oid: i64 = row.get(0);
    let stats = subscription_stats(conn, oid).await?;
    Ok(Some(SubscriptionSample {
        oid: u32::try_from(oid).unwrap_or_default(),
        enabled: row.get(1),
        worker_pid: row.get(3),
        apply_error_count: stats.apply_error_count,
        sync_error_count: stats.sync_error_count,
        conflicts: stats.conflicts,
        slot_name: row.get(2),
        origin_lsn: row.get(4),
    }))
}

/// Runs `replication.log_command` on `side` over SSH and returns its output.
pub(crate) async fn read_log(pair: &Pair, side: Side) -> std::result::Result<String, String> {
    let spec = &pair.config().nodes[side.index()];
    let session = SshSession::connect(&spec.ssh.target(&spec.name))
        .await
        .map_err(|e| format!("cannot read the server log over SSH: {e}"))?;
    let out = session
        .exec(&pair.config().replication.log_command)
        .await
        .map_err(|e| format!("cannot read the server log over SSH: {e}"));
    session.close().await;
    let out = out?;
    if !out.success() {
        return Err(format!(
            "replication.log_command failed on {} ({}): {}; set replication.log_command to a \
             command printing the end of the PostgreSQL log",
            spec.name,
            out.status_text(),
            out.stderr_str().trim()
        ));
    }
    Ok(out.stdout_str().into_owned())
}

/// `"schema"."table"` of a relation logged as `schema.table`, when it exists on `conn`.
pub(crate) async fn resolve_table(conn: &PgConn, logged: &str) -> Result<Option<(String, String)>> {
    let row = conn
        .client()
        .query_opt(
            "SELECT n.nspname::text, c.relname::text
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p')
                AND (n.nspname || '.' || c.relname = $1
                     OR c.oid = pg_catalog.to_regclass($1))
              ORDER BY (n.nspname || '.' || c.relname = $1) DESC
              LIMIT 1",
            &[&logged],
        )
        .await
        .map_err(conn.query_error("looking up the conflicting table"))?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// `"c1" = 'v1' AND "c2" = 'v2'` (values are literals the column type parses).
pub(crate) fn key_predicate(columns: &[String], values: &[String]) -> Option<String> {
    if columns.is_empty() || columns.len() != values.len() {
        return None;
    }
    Some(
        columns
            .iter()
            .zip(values)
            .map(|(c, v)| format!("{} = {}", ident(c), literal(v)))
            .collect::<Vec<_>>()
            .join(" AND "),
    )
}

/// The row matching `predicate` as JSON text.
pub(crate) async fn read_row(
    conn: &PgConn,
    table: &str,
    predicate: &str,
) -> Result<Option<String>> {
    let row = conn
        .client()
        .query_opt(
            &format!("SELECT row_to_json(x)::text FROM {table} x WHERE {predicate} LIMIT 1"),
            &[],
        )
        .await
        .map_err(conn.query_error("reading the conflicting row"))?;
    Ok(row.map(|r| r.get(0)))
}

/// Everything about one direction.
async fn direction(
    pair: &Pair,
    to: Side,
    sub: &str,
    first: Option<SubscriptionSample>,
    second: Option<SubscriptionSample>,
    seconds: f64,
    log: Option<&std::result::Result<String, String>>,
) -> Result<DirectionConflicts> {
    let from = to.peer();
    let mut d = DirectionConflicts {
        from: pair.node_name(from).into(),
        to: pair.node_name(to).into(),
        subscriber: to,
        subscription: sub.into(),
        state: ApplyState::Missing,
        reasons: vec![format!(
            "subscription {sub} does not exist on {}",
            pair.node_name(to)
        )],
        sample: None,
        error_count_rise: 0,
        error: None,
        table: None,
        rows: None,
        skipped_changes: Vec::new(),
        log_note: None,
    };
    let (Some(first), Some(second)) = (first, second) else {
        return Ok(d);
    };
    let (state, reasons) = judge(&first, &second, seconds);
    d.state = state;
    d.reasons = reasons;
    d.error_count_rise = second.apply_error_count - first.apply_error_count;
    let oid = second.oid;
    d.sample = Some(second);
    let Some(log) = log else {
        if d.stuck() {
            d.log_note = Some("not read".into());
        }
        return Ok(d);
    };
    let text = match log {
        Ok(t) => t,
        Err(e) => {
            d.log_note = Some(e.clone());
            return Ok(d);
        }
    };
    let mine: Vec<LogConflict> = parse_log(text)
        .into_iter()
        .filter(|c| c.subscription_oid == Some(oid))
        .collect();
    let skipped: Vec<&LogConflict> = mine.iter().filter(|c| !c.stops_worker()).collect();
    d.skipped_changes = skipped[skipped.len().saturating_sub(20)..]
        .iter()
        .map(|c| (*c).clone())
        .collect();
    if !d.stuck() {
        return Ok(d);
    }
    d.error = mine.iter().rev().find(|c| c.stops_worker()).cloned();
    let Some(err) = d.error.clone() else {
        d.log_note = Some(format!(
            "no apply error of origin pg_{oid} in the log's tail; check replication.log_command"
        ));
        return Ok(d);
    };
    if let Some(rel) = &err.relation
        && let Some((schema, name)) = resolve_table(pair.pg(to), rel).await?
    {
        let table = qualified(&schema, &name);
        d.table = Some(table.clone());
        if let Some(key) = &err.key
            && let Some(pred) = key_predicate(&key.columns, &key.values)
        {
            let (mine, theirs) = futures_util::future::join(
                read_row(pair.pg(to), &table, &pred),
                read_row(pair.pg(from), &table, &pred),
            )
            .await;
            d.rows = Some(RowVersions {
                table,
                key: key.text.clone(),
                subscriber: pair.node_name(to).into(),
                subscriber_row: mine?,
                publisher: pair.node_name(from).into(),
                publisher_row: theirs?,
            });
        }
    }
    Ok(d)
}

async fn samples(pair: &Pair) -> Result<[Option<SubscriptionSample>; 2]> {
    let [(a_side, a_sub), (b_side, b_sub)] = directions(pair);
    let (x, y) = futures_util::future::join(
        sample(pair.pg(a_side), &a_sub),
        sample(pair.pg(b_side), &b_sub),
    )
    .await;
    Ok([x?, y?])
}

/// Reads both directions twice `options.sample_interval` apart and, for a stuck one, the
/// subscriber's log (error, table, key, finish LSN) and both versions of the conflicting row.
pub async fn conflicts(pair: &Pair, options: &ConflictOptions) -> Result<ConflictReport> {
    let started = Instant::now();
    let first = samples(pair).await?;
    tokio::time::sleep(options.sample_interval).await;
    let second = samples(pair).await?;
    let seconds = started.elapsed().as_secs_f64();
    let dirs = directions(pair);
    let mut out = Vec::new();
    for ((to, sub), (f, s)) in dirs.iter().zip(first.into_iter().zip(second)) {
        // The log is read for every existing subscription (PostgreSQL 18's skipped changes
        // are reported even when flowing), over SSH only when asked.
        let log = if options.read_log && s.is_some() {
            Some(read_log(pair, *to).await)
        } else {
            None
        };
        out.push(direction(pair, *to, sub, f, s, seconds, log.as_ref()).await?);
    }
    Ok(ConflictReport { directions: out })
}

/// Re-reads one direction (after a remedy).
pub(crate) async fn direction_now(
    pair: &Pair,
    to: Side,
    options: &ConflictOptions,
) -> Result<DirectionConflicts> {
    let sub = directions(pair)
        .into_iter()
        .find(|(s, _)| *s == to)
        .map(|(_, n)| n)
        .unwrap_or_default();
    let started = Instant::now();
    let f = sample(pair.pg(to), &sub).await?;
    tokio::time::sleep(options.sample_interval).await;
    let s = sample(pair.pg(to), &sub).await?;
    let seconds = started.elapsed().as_secs_f64();
    let log = if options.read_log && s.is_some() {
        Some(read_log(pair, to).await)
    } else {
        None
    };
    direction(pair, to, &sub, f, s, seconds, log.as_ref()).await
}

/// Reads in [`conflict_summary`], and the time between two.
const SUMMARY_READS: usize = 5;
const SUMMARY_GAP: Duration = Duration::from_millis(100);

/// A cheap count per direction for `status`: five reads of each subscription 100 ms apart (no
/// log, no SSH). A direction counts as stuck when its subscription is disabled, or its apply
/// worker is absent from every read, replaced between reads, or its error count rose; the
/// full [`conflicts`] adds the error, key and rows from the log.
pub async fn conflict_summary(pair: &Pair) -> Result<ConflictSummary> {
    let started = Instant::now();
    let mut reads: [Vec<SubscriptionSample>; 2] = [Vec::new(), Vec::new()];
    let mut exists = [true, true];
    for i in 0..SUMMARY_READS {
        if i > 0 {
            tokio::time::sleep(SUMMARY_GAP).await;
        }
        for (k, s) in samples(pair).await?.into_iter().enumerate() {
            match s {
                Some(s) => reads[k].push(s),
                None => exists[k] = false,
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut directions_out = Vec::new();
    for (k, (to, sub)) in directions(pair).into_iter().enumerate() {
        let from = to.peer();
        let last = reads[k].last();
        directions_out.push(DirectionSummary {
            from: pair.node_name(from).into(),
            to: pair.node_name(to).into(),
            subscription: sub,
            state: if exists[k] {
                judge_reads(&reads[k], seconds).0
            } else {
                ApplyState::Missing
            },
            apply_error_count: last.map_or(0, |s| s.apply_error_count),
            conflicts_counted: last.map_or(0, |s| s.conflicts.values().sum()),
        });
    }
    Ok(ConflictSummary {
        directions: directions_out,
    })
}
