//! Health of both directions: subscription, worker, lag, table states, error and conflict
//! counters, the publisher's slot, and an end-to-end heartbeat each node writes and the other
//! reads.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::conflicts::{ApplyState, ConflictSummary, DirectionSummary, conflict_summary};
use super::drift::{DriftReport, drift};
use super::pair::Pair;
use super::plan::Side;
use super::sequences::{SequenceCompliance, check_sequences};
use super::slots::{SlotSafety, slot_safety};
use super::sql::{ConnInfo, literal, qualified};
use crate::Result;
use crate::config::human_bytes;
use crate::pg::PgConn;

/// One word for the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Both directions flow, every table is ready, no errors.
    Healthy,
    /// Flowing, with something to look at (copy in progress, errors counted, lag).
    Degraded,
    /// A direction does not flow.
    Broken,
}

impl Verdict {
    /// `healthy`, `degraded` or `broken`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Broken => "broken",
        }
    }
}

/// A table's sync state in a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableState {
    /// `schema.table` (quoted where needed).
    pub table: String,
    /// `i`, `d`, `f`, `s` or `r`.
    pub state: String,
}

/// The publisher's slot of a direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotStatus {
    /// Slot name.
    pub name: String,
    /// A walsender uses it.
    pub active: bool,
    /// WAL kept for it, in bytes.
    pub retained_bytes: Option<i64>,
    /// `wal_status`: `reserved`, `extended`, `unreserved` or `lost`.
    pub wal_status: Option<String>,
    /// `safe_wal_size`: bytes that can still be written before the slot is in danger (`None`
    /// with `max_slot_wal_keep_size = -1`).
    pub safe_wal_size: Option<i64>,
}

/// One direction (publisher → subscriber).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectionStatus {
    /// Publisher node.
    pub from: String,
    /// Subscriber node.
    pub to: String,
    /// The subscription (on `to`).
    pub subscription: String,
    /// It exists.
    pub exists: bool,
    /// It is enabled.
    pub enabled: bool,
    /// Its apply worker runs (`pg_stat_subscription.pid`).
    pub worker_running: bool,
    /// Where it connects, `password=<redacted>`.
    pub conninfo: Option<String>,
    /// `origin` option.
    pub origin: Option<String>,
    /// WAL the subscriber has not confirmed yet, in bytes (publisher's current LSN minus the
    /// slot's confirmed flush LSN).
    pub lag_bytes: Option<i64>,
    /// Tables ready / all tables.
    pub tables_ready: i64,
    /// All tables of the subscription.
    pub tables_total: i64,
    /// Tables not ready yet, with their states.
    pub tables_not_ready: Vec<TableState>,
    /// `pg_stat_subscription_stats.apply_error_count`.
    pub apply_error_count: i64,
    /// `pg_stat_subscription_stats.sync_error_count`.
    pub sync_error_count: i64,
    /// PostgreSQL 18 conflict counters (`confl_*`), when the server has them.
    pub conflicts: BTreeMap<String, i64>,
    /// The slot on the publisher.
    pub slot: Option<SlotStatus>,
    /// Seconds a fresh heartbeat took from `from` to `to` (measured now), or `None` when it did
    /// not arrive within `replication.heartbeat_timeout`.
    pub heartbeat_lag_s: Option<f64>,
    /// Age in seconds of the last heartbeat `to` holds from `from` (by the two clocks).
    pub last_heartbeat_age_s: Option<f64>,
}

#[cfg(test)]
impl DirectionStatus {
    /// A flowing direction for unit tests: subscription and slot `sub_{to}`, every table ready,
    /// no counters, a heartbeat of 0.1 s.
    pub(crate) fn healthy_for_test(from: &str, to: &str) -> Self {
        DirectionStatus {
            from: from.into(),
            to: to.into(),
            subscription: format!("sub_{to}"),
            exists: true,
            enabled: true,
            worker_running: true,
            conninfo: None,
            origin: Some("none".into()),
            lag_bytes: Some(0),
            tables_ready: 3,
            tables_total: 3,
            tables_not_ready: vec![],
            apply_error_count: 0,
            sync_error_count: 0,
            conflicts: BTreeMap::new(),
            slot: Some(SlotStatus {
                name: format!("sub_{to}"),
                active: true,
                retained_bytes: Some(10),
                wal_status: Some("reserved".into()),
                safe_wal_size: None,
            }),
            heartbeat_lag_s: Some(0.1),
            last_heartbeat_age_s: Some(0.1),
        }
    }
}

impl DirectionStatus {
    /// What is wired wrong whatever the traffic (pure): `origin` other than `none` (changes can
    /// loop) and no slot on the publisher. One line each, without the direction's name.
    pub(crate) fn wiring_problems(&self) -> impl Iterator<Item = String> + '_ {
        let origin = (self.origin.as_deref() != Some("none")).then(|| {
            format!(
                "origin is {}, changes can loop",
                self.origin.as_deref().unwrap_or("any")
            )
        });
        let slot = self
            .slot
            .is_none()
            .then(|| format!("no replication slot on {}", self.from));
        origin.into_iter().chain(slot)
    }
}

/// Both directions and a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicationStatus {
    /// healthy / degraded / broken.
    pub verdict: Verdict,
    /// Why, one line per finding (empty when healthy).
    pub reasons: Vec<String>,
    /// Worth knowing, not a finding: error and conflict counters (cumulative since the
    /// statistics were reset, so they are history once the changes flow again).
    pub notes: Vec<String>,
    /// A → B, then B → A.
    pub directions: Vec<DirectionStatus>,
    /// Whether each direction's changes are being applied: flowing when its fresh heartbeat
    /// crossed, else judged from several reads a moment apart (a worker failing in a loop,
    /// e.g. on a duplicate key); `fspbx-ha replication conflicts` adds the error, key and
    /// rows. `None`: not readable, a reason says why.
    pub conflicts: Option<ConflictSummary>,
    /// Schema drift between the nodes and tables a subscription does not include yet
    /// (`None`: not readable, the reason says why).
    pub drift: Option<DriftReport>,
    /// The sequence strategy and whether the serial/identity sequences comply with it.
    pub sequences: Option<SequenceCompliance>,
    /// Every slot of both nodes with its retained WAL, `max_slot_wal_keep_size`, and warnings.
    pub slots: Option<SlotSafety>,
}

impl ReplicationStatus {
    /// A human summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "replication: {}", self.verdict.as_str());
        for r in &self.reasons {
            let _ = writeln!(out, "  - {r}");
        }
        for n in &self.notes {
            let _ = writeln!(out, "  note: {n}");
        }
        if let Some(c) = &self.conflicts {
            let states: Vec<String> = c
                .directions
                .iter()
                .map(|d| format!("{} -> {} {}", d.from, d.to, d.state.as_str()))
                .collect();
            let _ = writeln!(out, "apply: {} ({} stuck)", states.join(", "), c.stuck());
        }
        for d in &self.directions {
            let _ = writeln!(
                out,
                "\n{} -> {}  ({} on {})",
                d.from, d.to, d.subscription, d.to
            );
            if !d.exists {
                let _ = writeln!(out, "  subscription missing");
                continue;
            }
            let _ = writeln!(
                out,
                "  enabled: {}  worker: {}  origin: {}",
                d.enabled,
                if d.worker_running {
                    "running"
                } else {
                    "stopped"
                },
                d.origin.as_deref().unwrap_or("?")
            );
            if let Some(c) = &d.conninfo {
                let _ = writeln!(out, "  connection: {c}");
            }
            let _ = writeln!(out, "  tables: {}/{} ready", d.tables_ready, d.tables_total);
            let _ = writeln!(
                out,
                "  lag: {} bytes, heartbeat {}",
                d.lag_bytes.map_or("?".into(), |b| b.to_string()),
                d.heartbeat_lag_s
                    .map_or("not seen".into(), |s| format!("{:.3} s", s))
            );
            let _ = writeln!(
                out,
                "  errors: apply {}, sync {}{}",
                d.apply_error_count,
                d.sync_error_count,
                if d.conflicts.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", conflicts {}",
                        d.conflicts
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    )
                }
            );
            if let Some(s) = &d.slot {
                let _ = writeln!(
                    out,
                    "  slot {} on {}: {}, {} of WAL retained, wal_status {}{}",
                    s.name,
                    d.from,
                    if s.active { "active" } else { "INACTIVE" },
                    s.retained_bytes.map_or("?".into(), human_bytes),
                    s.wal_status.as_deref().unwrap_or("?"),
                    s.safe_wal_size
                        .map(|b| format!(", safe_wal_size {}", human_bytes(b)))
                        .unwrap_or_default()
                );
            }
        }
        let _ = writeln!(out);
        if let Some(d) = &self.drift {
            let _ = writeln!(out, "schema: {}", d.summary());
        }
        if let Some(s) = &self.sequences {
            let _ = writeln!(out, "sequences: {}", s.summary());
        }
        if let Some(s) = &self.slots {
            let _ = writeln!(out, "slots:");
            for l in s.summary_lines() {
                let _ = writeln!(out, "  {l}");
            }
            let _ = writeln!(out, "  ({})", s.explanation);
        }
        out
    }
}

/// Lag in bytes above which a direction counts as degraded.
const LAG_BYTES_DEGRADED: i64 = 64 * 1024 * 1024;

/// Reads both directions, writes a heartbeat on each node and waits (up to
/// `replication.heartbeat_timeout`) for it to appear on the other.
pub async fn status(pair: &Pair) -> Result<ReplicationStatus> {
    // The heartbeat round trip and the other reads wait on different things: run them
    // together.
    let (beats, (drift, sequences, slots)) = futures_util::future::join(
        directions_with_beats(pair),
        futures_util::future::join3(drift(pair), check_sequences(pair), slot_safety(pair)),
    )
    .await;
    let (directions, written) = beats?;
    // A fresh heartbeat applied on the other side proves its apply worker got past every
    // earlier change: flowing. Only without that proof are the workers read a few times over
    // (≈0.4 s) to tell a worker failing in a loop from one that is just slow.
    let conflicts = if directions.iter().all(|d| d.heartbeat_lag_s.is_some()) {
        Ok(flowing_by_heartbeat(&directions))
    } else {
        conflict_summary(pair).await
    };
    let max_lag = pair.config().policy.max_replication_lag.as_secs_f64();
    let (verdict, reasons) = judge(&directions, max_lag, written);
    let notes = history_notes(&directions);
    let mut unreadable = Vec::new();
    let conflicts = keep(&mut unreadable, "the apply workers' state", conflicts);
    let drift = keep(&mut unreadable, "schema drift", drift);
    let sequences = keep(&mut unreadable, "sequences", sequences);
    let slots = keep(&mut unreadable, "replication slots", slots);
    let (mut broken, mut degraded) =
        extra_findings(drift.as_ref(), sequences.as_ref(), slots.as_ref());
    broken.extend(stuck_findings(conflicts.as_ref()));
    degraded.extend(unreadable);
    let (verdict, reasons) = merge((verdict, reasons), broken, degraded);
    Ok(ReplicationStatus {
        verdict,
        reasons,
        notes,
        directions,
        conflicts,
        drift,
        sequences,
        slots,
    })
}

/// Both directions with a fresh heartbeat round trip each way, and nothing else of
/// [`status`] (no drift, sequence, slot or apply-state reads): what a periodic lag
/// measurement needs, such as the failover controller's replication-lag gate.
pub async fn heartbeats(pair: &Pair) -> Result<Vec<DirectionStatus>> {
    Ok(directions_with_beats(pair).await?.0)
}

/// Both directions as their subscribers and publishers report them, with a fresh heartbeat
/// written on each node and watched for on the other (up to `replication.heartbeat_timeout`);
/// also which nodes had a heartbeat table to write to.
async fn directions_with_beats(pair: &Pair) -> Result<(Vec<DirectionStatus>, [bool; 2])> {
    let r = &pair.config().replication;
    let hb_table = qualified(&r.heartbeat_schema, "heartbeat");
    let mut directions = Vec::new();
    for (to, sub) in [
        (Side::B, &r.subscription_a_to_b),
        (Side::A, &r.subscription_b_to_a),
    ] {
        directions.push(direction(pair, to.peer(), to, sub).await?);
    }
    // Heartbeats: write on both, then watch the other side.
    let seq = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let mut written = [false, false];
    for side in Side::BOTH {
        written[side.index()] =
            write_beat(pair.pg(side), &hb_table, pair.node_name(side), seq).await?;
    }
    let wrote_at = Instant::now();
    let timeout = r.heartbeat_timeout;
    for d in directions.iter_mut() {
        let (from, to) = if d.from == pair.node_name(Side::A) {
            (Side::A, Side::B)
        } else {
            (Side::B, Side::A)
        };
        if !written[from.index()] {
            continue;
        }
        let (lag, age) = watch_beat(
            pair.pg(to),
            &hb_table,
            pair.node_name(from),
            seq,
            wrote_at,
            timeout,
        )
        .await?;
        d.heartbeat_lag_s = lag;
        d.last_heartbeat_age_s = age;
    }
    Ok((directions, written))
}

/// The apply state when every direction's fresh heartbeat arrived: each flowing (pure).
fn flowing_by_heartbeat(dirs: &[DirectionStatus]) -> ConflictSummary {
    ConflictSummary {
        directions: dirs
            .iter()
            .map(|d| DirectionSummary {
                from: d.from.clone(),
                to: d.to.clone(),
                subscription: d.subscription.clone(),
                state: ApplyState::Flowing,
                apply_error_count: d.apply_error_count,
                conflicts_counted: d.conflicts.values().sum(),
            })
            .collect(),
    }
}

/// Directions whose apply worker fails in a loop (pure). Disabled and missing subscriptions
/// are already findings of the direction itself.
pub(crate) fn stuck_findings(conflicts: Option<&ConflictSummary>) -> Vec<String> {
    conflicts
        .map(|c| {
            c.directions
                .iter()
                .filter(|d| d.state == ApplyState::Failing)
                .map(|d| {
                    format!(
                        "{} -> {}: the apply worker of {} fails in a loop ({} apply error(s) \
                         counted) and the publisher keeps WAL for it: `fspbx-ha replication \
                         conflicts` shows the error, the key and the remedies",
                        d.from, d.to, d.subscription, d.apply_error_count
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Error and conflict counters as notes (pure). They are cumulative since the statistics
/// were reset, so a count alone does not say the direction is in trouble now: a publisher
/// restart counts an apply error, and PostgreSQL 18 counts conflicts it resolved (a row last
/// changed by the other node, `*_origin_differs`). Changes it skipped (`*_missing`) mean the
/// nodes may differ: `verify` tells.
pub(crate) fn history_notes(dirs: &[DirectionStatus]) -> Vec<String> {
    let mut notes = Vec::new();
    for d in dirs.iter().filter(|d| d.exists) {
        let name = format!("{} -> {}", d.from, d.to);
        if d.apply_error_count > 0 || d.sync_error_count > 0 {
            notes.push(format!(
                "{name}: {} apply and {} sync error(s) counted since the statistics were reset \
                 (history unless the apply state says failing)",
                d.apply_error_count, d.sync_error_count
            ));
        }
        let counted: Vec<String> = d
            .conflicts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{}={n}", k.trim_start_matches("confl_")))
            .collect();
        if !counted.is_empty() {
            let missing = d
                .conflicts
                .iter()
                .any(|(k, n)| k.ends_with("_missing") && *n > 0);
            notes.push(format!(
                "{name}: conflicts counted {}{}",
                counted.join(" "),
                if missing {
                    " (a change found no row and was skipped: run `fspbx-ha replication verify`)"
                } else {
                    ""
                }
            ));
        }
    }
    notes
}

/// The value, or `None` with a line saying what could not be read.
fn keep<T>(unreadable: &mut Vec<String>, what: &str, r: Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            unreadable.push(format!("cannot read {what}: {e}"));
            None
        }
    }
}

/// Findings of drift, sequences and slots: (broken, degraded) lines (pure). A lost slot
/// breaks its direction; drift, tables to refresh, non-compliant sequences and slot warnings
/// degrade.
pub(crate) fn extra_findings(
    drift: Option<&DriftReport>,
    sequences: Option<&SequenceCompliance>,
    slots: Option<&SlotSafety>,
) -> (Vec<String>, Vec<String>) {
    let mut broken = Vec::new();
    let mut degraded = Vec::new();
    if let Some(d) = drift {
        degraded.extend(d.findings());
    }
    if let Some(s) = sequences
        && !s.compliant
    {
        let shown: Vec<&String> = s.problems.iter().take(3).collect();
        degraded.push(format!(
            "sequences do not comply with strategy {}: {}{}",
            s.strategy,
            shown
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            if s.problems.len() > 3 {
                format!(" (and {} more)", s.problems.len() - 3)
            } else {
                String::new()
            }
        ));
    }
    if let Some(s) = slots {
        broken.extend(s.critical.iter().cloned());
        degraded.extend(s.warnings.iter().cloned());
    }
    (broken, degraded)
}

/// Adds findings to a verdict: any broken line makes it broken, any degraded line at least
/// degraded (pure). Broken reasons come first.
pub(crate) fn merge(
    (verdict, mut reasons): (Verdict, Vec<String>),
    broken: Vec<String>,
    degraded: Vec<String>,
) -> (Verdict, Vec<String>) {
    let verdict = if !broken.is_empty() || verdict == Verdict::Broken {
        Verdict::Broken
    } else if !degraded.is_empty() || verdict == Verdict::Degraded {
        Verdict::Degraded
    } else {
        Verdict::Healthy
    };
    reasons.splice(0..0, broken);
    reasons.extend(degraded);
    (verdict, reasons)
}

async fn direction(pair: &Pair, from: Side, to: Side, sub: &str) -> Result<DirectionStatus> {
    let sc = pair.pg(to);
    let pc = pair.pg(from);
    let mut d = DirectionStatus {
        from: pair.node_name(from).into(),
        to: pair.node_name(to).into(),
        subscription: sub.into(),
        exists: false,
        enabled: false,
        worker_running: false,
        conninfo: None,
        origin: None,
        lag_bytes: None,
        tables_ready: 0,
        tables_total: 0,
        tables_not_ready: Vec::new(),
        apply_error_count: 0,
        sync_error_count: 0,
        conflicts: BTreeMap::new(),
        slot: None,
        heartbeat_lag_s: None,
        last_heartbeat_age_s: None,
    };
    let version: i32 = sc
        .client()
        .query_one("SELECT current_setting('server_version_num')::int4", &[])
        .await
        .map_err(sc.query_error("reading the server version"))?
        .get(0);
    let origin = if version >= 160_000 {
        "s.suborigin::text"
    } else {
        "NULL::text"
    };
    let row = sc
        .client()
        .query_opt(
            &format!(
                "SELECT s.oid::int8, s.subenabled, s.subslotname::text, s.subconninfo, {origin},
                        EXISTS (SELECT 1 FROM pg_catalog.pg_stat_subscription w
                                 WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL)
                   FROM pg_catalog.pg_subscription s
                  WHERE s.subname = $1
                    AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())"
            ),
            &[&sub],
        )
        .await
        .map_err(sc.query_error("reading the subscription"))?;
    let Some(row) = row else { return Ok(d) };
    let oid: i64 = row.get(0);
    d.exists = true;
    d.enabled = row.get(1);
    let slot: Option<String> = row.get(2);
    d.conninfo = Some(ConnInfo::parse(&row.get::<_, String>(3)).render());
    d.origin = row.get(4);
    d.worker_running = row.get(5);

    for r in sc
        .client()
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname), r.srsubstate::text
               FROM pg_catalog.pg_subscription_rel r
               JOIN pg_catalog.pg_class c ON c.oid = r.srrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE r.srsubid = $1::int8::oid ORDER BY 1",
            &[&oid],
        )
        .await
        .map_err(sc.query_error("reading table sync states"))?
    {
        d.tables_total += 1;
        let state: String = r.get(1);
        if state == "r" {
            d.tables_ready += 1;
        } else {
            d.tables_not_ready.push(TableState {
                table: r.get(0),
                state,
            });
        }
    }

    // Error and (PostgreSQL 18) conflict counters.
    let stats = subscription_stats(sc, oid).await?;
    d.apply_error_count = stats.apply_error_count;
    d.sync_error_count = stats.sync_error_count;
    d.conflicts = stats.conflicts;

    if let Some(slot) = slot {
        let s = pc
            .client()
            .query_opt(
                "SELECT active,
                        pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), restart_lsn)::int8,
                        pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), confirmed_flush_lsn)::int8,
                        wal_status, safe_wal_size::int8
                   FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(pc.query_error("reading the publisher's slot"))?;
        if let Some(s) = s {
            d.slot = Some(SlotStatus {
                name: slot,
                active: s.get(0),
                retained_bytes: s.get(1),
                wal_status: s.get(3),
                safe_wal_size: s.get(4),
            });
            d.lag_bytes = s.get(2);
        } else {
            d.slot = None;
        }
    }
    Ok(d)
}

/// A subscription's counters in `pg_stat_subscription_stats` (zero where the server has no
/// row or no such column).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SubscriptionStats {
    /// `apply_error_count`.
    pub apply_error_count: i64,
    /// `sync_error_count`.
    pub sync_error_count: i64,
    /// PostgreSQL 18 conflict counters (`confl_*`), when the server has them.
    pub conflicts: BTreeMap<String, i64>,
}

/// Reads the counters of the subscription with oid `oid` on `conn` (its subscriber).
pub(crate) async fn subscription_stats(conn: &PgConn, oid: i64) -> Result<SubscriptionStats> {
    let mut out = SubscriptionStats::default();
    let stats = conn
        .client()
        .query_opt(
            "SELECT * FROM pg_catalog.pg_stat_subscription_stats WHERE subid = $1::int8::oid",
            &[&oid],
        )
        .await
        .map_err(conn.query_error("reading subscription statistics"))?;
    let Some(stats) = stats else { return Ok(out) };
    for (i, col) in stats.columns().iter().enumerate() {
        if col.type_() != &tokio_postgres::types::Type::INT8 {
            continue;
        }
        let n: i64 = stats.get::<_, Option<i64>>(i).unwrap_or(0);
        match col.name() {
            "apply_error_count" => out.apply_error_count = n,
            "sync_error_count" => out.sync_error_count = n,
            k if k.starts_with("confl_") => {
                out.conflicts.insert(k.to_string(), n);
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Replaces this node's heartbeat row (delete + insert, so a peer missing the row still gets
/// it). Returns false when there is no heartbeat table.
pub(super) async fn write_beat(conn: &PgConn, table: &str, node: &str, seq: i64) -> Result<bool> {
    let exists: bool = conn
        .client()
        .query_one("SELECT pg_catalog.to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(conn.query_error("looking for the heartbeat table"))?
        .get(0);
    if !exists {
        return Ok(false);
    }
    conn.client()
        .batch_execute(&format!(
            "BEGIN; DELETE FROM {table} WHERE node = {n}; \
             INSERT INTO {table} (node, seq, beat_at) VALUES ({n}, {seq}, now()); COMMIT",
            n = literal(node)
        ))
        .await
        .map_err(conn.query_error("writing the heartbeat"))?;
    Ok(true)
}

pub(super) async fn watch_beat(
    conn: &PgConn,
    table: &str,
    from_node: &str,
    seq: i64,
    wrote_at: Instant,
    timeout: Duration,
) -> Result<(Option<f64>, Option<f64>)> {
    let exists: bool = conn
        .client()
        .query_one("SELECT pg_catalog.to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(conn.query_error("looking for the heartbeat table"))?
        .get(0);
    if !exists {
        return Ok((None, None));
    }
    let sql = format!(
        "SELECT seq, extract(epoch FROM now() - beat_at)::float8 FROM {table} WHERE node = $1"
    );
    loop {
        let row = conn
            .client()
            .query_opt(&sql, &[&from_node])
            .await
            .map_err(conn.query_error("reading the heartbeat"))?;
        let age = row.as_ref().map(|r| r.get::<_, f64>(1));
        if row.as_ref().is_some_and(|r| r.get::<_, i64>(0) >= seq) {
            return Ok((Some(wrote_at.elapsed().as_secs_f64()), age));
        }
        if wrote_at.elapsed() >= timeout {
            return Ok((None, age));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The verdict and its reasons (pure).
fn judge(dirs: &[DirectionStatus], max_lag_s: f64, written: [bool; 2]) -> (Verdict, Vec<String>) {
    let mut broken = Vec::new();
    let mut degraded = Vec::new();
    for d in dirs {
        let name = format!("{} -> {}", d.from, d.to);
        if !d.exists {
            broken.push(format!(
                "{name}: subscription {} does not exist",
                d.subscription
            ));
            continue;
        }
        if !d.enabled {
            broken.push(format!(
                "{name}: subscription {} is disabled",
                d.subscription
            ));
        } else if !d.worker_running {
            broken.push(format!(
                "{name}: the apply worker is not running (it may be failing and restarting: see \
                 the PostgreSQL log on {})",
                d.to
            ));
        }
        // An inactive slot is reported by the slot safety findings.
        broken.extend(d.wiring_problems().map(|p| format!("{name}: {p}")));
        if d.tables_ready < d.tables_total {
            degraded.push(format!(
                "{name}: {} of {} tables ready (initial copy running?)",
                d.tables_ready, d.tables_total
            ));
        }
        // Error and conflict counters are history (`history_notes`); a worker failing now is
        // a finding of the apply state (`stuck_findings`).
        if d.lag_bytes.is_some_and(|b| b > LAG_BYTES_DEGRADED) {
            degraded.push(format!("{name}: {} bytes behind", d.lag_bytes.unwrap_or(0)));
        }
        let from_written = written.iter().any(|w| *w);
        match d.heartbeat_lag_s {
            None if from_written => {
                broken.push(format!("{name}: a fresh heartbeat did not arrive"))
            }
            Some(s) if s > max_lag_s => degraded.push(format!("{name}: heartbeat took {s:.1} s")),
            _ => {}
        }
    }
    if !written.iter().any(|w| *w) {
        degraded.push(
            "no heartbeat table on either node: end-to-end lag is unknown (apply creates it)"
                .to_string(),
        );
    }
    if !broken.is_empty() {
        broken.extend(degraded);
        (Verdict::Broken, broken)
    } else if !degraded.is_empty() {
        (Verdict::Degraded, degraded)
    } else {
        (Verdict::Healthy, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let ok = [
            DirectionStatus::healthy_for_test("a", "b"),
            DirectionStatus::healthy_for_test("b", "a"),
        ];
        assert_eq!(judge(&ok, 30.0, [true, true]), (Verdict::Healthy, vec![]));

        let mut copying = ok.clone();
        copying[0].tables_ready = 1;
        let (v, why) = judge(&copying, 30.0, [true, true]);
        assert_eq!(v, Verdict::Degraded);
        assert!(why[0].contains("1 of 3 tables ready"), "{why:?}");

        let mut stopped = ok.clone();
        stopped[1].worker_running = false;
        stopped[1].heartbeat_lag_s = None;
        let (v, why) = judge(&stopped, 30.0, [true, true]);
        assert_eq!(v, Verdict::Broken);
        assert!(
            why.iter()
                .any(|w| w.starts_with("b -> a: the apply worker")),
            "{why:?}"
        );
        assert!(
            why.iter().any(|w| w.contains("heartbeat did not arrive")),
            "{why:?}"
        );

        // Counters are history: noted, not judged.
        let mut conflicts = ok.clone();
        conflicts[0]
            .conflicts
            .insert("confl_update_origin_differs".into(), 50);
        conflicts[0].apply_error_count = 1;
        assert_eq!(judge(&conflicts, 30.0, [true, true]).0, Verdict::Healthy);
        let notes = history_notes(&conflicts);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(
            notes[0].contains("1 apply and 0 sync error(s)"),
            "{notes:?}"
        );
        assert!(notes[1].contains("update_origin_differs=50"), "{notes:?}");
        assert!(!notes[1].contains("verify"), "{notes:?}");
        conflicts[1]
            .conflicts
            .insert("confl_update_missing".into(), 1);
        assert!(history_notes(&conflicts)[2].contains("replication verify"));

        let mut no_beats = ok.clone();
        no_beats.iter_mut().for_each(|d| d.heartbeat_lag_s = None);
        let (v, why) = judge(&no_beats, 30.0, [false, false]);
        assert_eq!(v, Verdict::Degraded);
        assert!(why[0].starts_with("no heartbeat table"), "{why:?}");

        let mut missing = ok;
        missing[0].exists = false;
        assert_eq!(judge(&missing, 30.0, [true, true]).0, Verdict::Broken);
    }

    #[test]
    fn only_a_failing_worker_is_a_stuck_finding() {
        use crate::replication::conflicts::DirectionSummary;
        let dir = |from: &str, to: &str, state| DirectionSummary {
            from: from.into(),
            to: to.into(),
            subscription: format!("sub_{from}_{to}"),
            state,
            apply_error_count: 7,
            conflicts_counted: 0,
        };
        let c = ConflictSummary {
            directions: vec![
                dir("a", "b", ApplyState::Failing),
                dir("b", "a", ApplyState::Flowing),
            ],
        };
        let f = stuck_findings(Some(&c));
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].starts_with("a -> b: the apply worker of sub_a_b fails in a loop (7 apply"));
        assert!(f[0].contains("replication conflicts"));
        let disabled = ConflictSummary {
            directions: vec![dir("a", "b", ApplyState::Disabled)],
        };
        assert!(stuck_findings(Some(&disabled)).is_empty());
        assert!(stuck_findings(None).is_empty());
    }
}
