//! The checks the tool runs itself: pure judgements of what `replication::heartbeats` (the
//! directions of `status`), drift and the inventories say, and the queries behind them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::plan::Check;
use crate::replication::{self, DirectionStatus, Pair, Side};
use crate::{Error, Result};

/// What a check found: nothing (passed) or one line per problem; plus a note for the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Finding {
    pub problems: Vec<String>,
    pub note: Option<String>,
    /// The first node's user tables, read by a schema check.
    pub tables_first: Option<Vec<String>>,
    /// Tables the migration added (post-check).
    pub new_tables: Vec<String>,
    /// The first node's last migration batch, read by a schema check (`None`: no migrations
    /// table, or no guard configured).
    pub batch_first: Option<i64>,
    /// The first node's migrate started no new batch (read after it ran).
    pub no_new_batch: bool,
}

/// What the checks know of the run so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The node migrated first.
    pub first: Side,
    /// The first node's tables before its migration.
    pub tables_before: Option<&'a [String]>,
    /// The first node's last migration batch before its migration.
    pub batch_before: Option<i64>,
}

/// Why replication is not healthy (pure): a subscription missing, disabled or without its
/// worker, `origin` not `none`, a slot missing, or a heartbeat that did not cross. Counters of
/// past errors and conflicts are not judged here (they only grow; see [`stuck_problems`]).
pub(crate) fn health_problems(directions: &[DirectionStatus]) -> Vec<String> {
    let mut out = Vec::new();
    for d in directions {
        let name = format!("{} -> {} ({})", d.from, d.to, d.subscription);
        if !d.exists {
            out.push(format!("{name}: the subscription does not exist"));
            continue;
        }
        if !d.enabled {
            out.push(format!("{name}: the subscription is disabled"));
        } else if !d.worker_running {
            out.push(format!(
                "{name}: the apply worker is not running (see the PostgreSQL log on {})",
                d.to
            ));
        }
        out.extend(d.wiring_problems().map(|p| format!("{name}: {p}")));
        if d.heartbeat_lag_s.is_none() {
            out.push(format!("{name}: a fresh heartbeat did not arrive"));
        }
    }
    if directions.is_empty() {
        out.push("no replication direction found".into());
    }
    out
}

/// Stuck or conflicting subscriptions (pure), from two reads a moment apart: a worker not
/// running, tables not ready, an inactive slot, or apply/sync errors or conflicts counted
/// *between* the reads (a worker failing in a loop). Counts from before the first read are
/// history (PostgreSQL 18 counts resolved conflicts too) and only noted.
pub(crate) fn stuck_problems(
    before: &[DirectionStatus],
    after: &[DirectionStatus],
) -> (Vec<String>, Option<String>) {
    let mut out = Vec::new();
    let mut history = Vec::new();
    for d in after {
        let name = format!("{} -> {} ({})", d.from, d.to, d.subscription);
        if !d.exists {
            out.push(format!("{name}: the subscription does not exist"));
            continue;
        }
        if !d.enabled {
            out.push(format!("{name}: disabled"));
        } else if !d.worker_running {
            out.push(format!(
                "{name}: the apply worker is not running (failing in a loop? see the PostgreSQL \
                 log on {})",
                d.to
            ));
        }
        let prev = before
            .iter()
            .find(|p| p.subscription == d.subscription && p.to == d.to);
        let errors = |x: &DirectionStatus| x.apply_error_count + x.sync_error_count;
        let conflicts = |x: &DirectionStatus| x.conflicts.values().sum::<i64>();
        let (e0, c0) = prev.map_or((errors(d), conflicts(d)), |p| (errors(p), conflicts(p)));
        if errors(d) > e0 {
            out.push(format!(
                "{name}: {} new apply/sync error(s) while checking (a worker failing in a loop)",
                errors(d) - e0
            ));
        }
        if conflicts(d) > c0 {
            out.push(format!(
                "{name}: {} new conflict(s) while checking",
                conflicts(d) - c0
            ));
        }
        if e0 > 0 || c0 > 0 {
            history.push(format!(
                "{name}: {e0} error(s) and {c0} conflict(s) counted before (history)"
            ));
        }
        if !d.tables_not_ready.is_empty() {
            let t: Vec<String> = d
                .tables_not_ready
                .iter()
                .take(5)
                .map(|t| format!("{} ({})", t.table, t.state))
                .collect();
            out.push(format!(
                "{name}: {} table(s) not ready: {}",
                d.tables_not_ready.len(),
                t.join(", ")
            ));
        }
        if let Some(s) = &d.slot
            && !s.active
        {
            out.push(format!("{name}: slot {} on {} is inactive", s.name, d.from));
        }
        if d.heartbeat_lag_s.is_none() {
            out.push(format!("{name}: a fresh heartbeat did not arrive"));
        }
    }
    (out, (!history.is_empty()).then(|| history.join("; ")))
}

/// One line for a stuck direction of `replication conflicts` (pure): its state and reasons,
/// and the apply worker's error with the conflicting key when the log told it.
pub(crate) fn conflict_problem(d: &replication::conflicts::DirectionConflicts) -> String {
    let mut line = format!(
        "{} -> {} ({}): {}",
        d.from,
        d.to,
        d.subscription,
        d.state.as_str()
    );
    if !d.reasons.is_empty() {
        line.push_str(&format!(" ({})", d.reasons.join("; ")));
    }
    if let Some(e) = &d.error {
        line.push_str(&format!(": {}", e.message));
        if let Some(k) = &e.key {
            line.push_str(&format!(", key {}", k.text));
        }
        if let Some(lsn) = &e.finish_lsn {
            line.push_str(&format!(", finish LSN {lsn}"));
        }
    }
    line.push_str(" (see `fspbx-ha replication conflicts`; remedy with `replication resolve`)");
    line
}

/// Tables `published` that are not in `subscribed` with state `r` (pure), sorted.
pub(crate) fn not_ready(published: &[String], subscribed: &[(String, String)]) -> Vec<String> {
    let ready: BTreeSet<&str> = subscribed
        .iter()
        .filter(|(_, s)| s == "r")
        .map(|(t, _)| t.as_str())
        .collect();
    let mut out: Vec<String> = published
        .iter()
        .filter(|t| !ready.contains(t.as_str()))
        .cloned()
        .collect();
    out.sort();
    out
}

/// Tables of `now` not in `before` (pure), sorted.
pub(crate) fn added(before: &[String], now: &[String]) -> Vec<String> {
    let b: BTreeSet<&str> = before.iter().map(String::as_str).collect();
    let mut out: Vec<String> = now
        .iter()
        .filter(|t| !b.contains(t.as_str()))
        .cloned()
        .collect();
    out.sort();
    out
}

fn publication(pair: &Pair, side: Side) -> &str {
    let r = &pair.config().replication;
    match side {
        Side::A => &r.publication_a,
        Side::B => &r.publication_b,
    }
}

/// The subscription on node `side` (to its peer).
fn subscription(pair: &Pair, side: Side) -> &str {
    let r = &pair.config().replication;
    match side {
        Side::A => &r.subscription_b_to_a,
        Side::B => &r.subscription_a_to_b,
    }
}

/// Tables node `publisher`'s publication holds, `schema.table` quoted as needed.
async fn published(pair: &Pair, publisher: Side) -> Result<Vec<String>> {
    let conn = pair.pg(publisher);
    Ok(conn
        .client()
        .query(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_catalog.pg_publication_tables
              WHERE pubname = $1",
            &[&publication(pair, publisher)],
        )
        .await
        .map_err(conn.query_error("listing published tables"))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Tables of node `side`'s subscription with their states.
async fn subscribed(pair: &Pair, side: Side) -> Result<Vec<(String, String)>> {
    let conn = pair.pg(side);
    Ok(conn
        .client()
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname), r.srsubstate::text
               FROM pg_catalog.pg_subscription s
               JOIN pg_catalog.pg_subscription_rel r ON r.srsubid = s.oid
               JOIN pg_catalog.pg_class c ON c.oid = r.srrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE s.subname = $1
                AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())",
            &[&subscription(pair, side)],
        )
        .await
        .map_err(conn.query_error("listing subscribed tables"))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// User tables of node `side` (heartbeat schema excluded), `schema.table` quoted as needed.
async fn user_tables(pair: &Pair, side: Side) -> Result<Vec<String>> {
    let conn = pair.pg(side);
    let hb = &pair.config().replication.heartbeat_schema;
    Ok(conn
        .client()
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname)
               FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
                AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname <> $1
                AND n.nspname NOT LIKE 'pg\\_%'
              ORDER BY 1",
            &[hb],
        )
        .await
        .map_err(conn.query_error("listing tables"))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// One line per drifting table (pure), at most `max`, then how many more.
pub(crate) fn drift_problems(d: &replication::DriftReport, max: usize) -> Vec<String> {
    let mut out: Vec<String> = d
        .tables
        .iter()
        .take(max)
        .map(|t| format!("schema drift in {}: {}", t.table, t.describe(&d.nodes)))
        .collect();
    if d.tables.len() > max {
        out.push(format!("{} more table(s) drift", d.tables.len() - max));
    }
    out
}

/// The last batch in node `side`'s `upgrade.migrations_table` (`None`: guard off, no such
/// table, or no `batch` column).
async fn max_batch(pair: &Pair, side: Side) -> Result<Option<i64>> {
    let table = &pair.config().upgrade.migrations_table;
    if table.is_empty() {
        return Ok(None);
    }
    let conn = pair.pg(side);
    let found: Option<String> = conn
        .client()
        .query_one("SELECT pg_catalog.to_regclass($1)::text", &[table])
        .await
        .map_err(conn.query_error("looking for the migrations table"))?
        .get(0);
    let Some(regclass) = found else {
        return Ok(None);
    };
    // The name as PostgreSQL prints a regclass is quoted where needed.
    match conn
        .client()
        .query_one(&format!("SELECT max(batch)::int8 FROM {regclass}"), &[])
        .await
    {
        Ok(row) => Ok(row.get(0)),
        Err(e) => {
            tracing::warn!(table = %regclass, error = %e, "no batch column: the batch guard is off");
            Ok(None)
        }
    }
}

async fn schema_matches(pair: &Pair, first: Side) -> Result<Finding> {
    let d = replication::drift(pair).await?;
    Ok(Finding {
        problems: drift_problems(&d, 10),
        tables_first: Some(user_tables(pair, first).await?),
        batch_first: max_batch(pair, first).await?,
        ..Finding::default()
    })
}

/// Runs `check` once. `side` is the step's node (for checks of one node).
pub(crate) async fn run_once(
    pair: &Pair,
    check: Check,
    side: Option<Side>,
    cx: Context<'_>,
) -> Result<Finding> {
    let first = cx.first;
    match check {
        Check::ReplicationHealthy => {
            let directions = replication::heartbeats(pair).await?;
            Ok(Finding {
                problems: health_problems(&directions),
                ..Finding::default()
            })
        }
        Check::NoStuckSubscription => {
            let options = replication::conflicts::ConflictOptions {
                sample_interval: Duration::from_millis(500),
                read_log: true,
            };
            let before = replication::heartbeats(pair).await?;
            // Two reads of each subscription half a second apart, and for a stuck one the apply
            // worker's error from the subscriber's log (table, key, finish LSN).
            let mut report = replication::conflicts(pair, &options).await?;
            let after = replication::heartbeats(pair).await?;
            let (mut problems, note) = stuck_problems(&before, &after);
            // A worker failing in a loop is alive for a moment every few seconds: when the
            // heartbeat reads saw it stuck and the conflict reads caught it alive, read again.
            for _ in 0..3 {
                if problems.is_empty() || report.any() {
                    break;
                }
                report = replication::conflicts(pair, &options).await?;
            }
            problems.extend(report.stuck().map(conflict_problem));
            Ok(Finding {
                problems,
                note,
                ..Finding::default()
            })
        }
        Check::SchemaMatches => schema_matches(pair, first).await,
        Check::SecondCaughtUp => {
            let within = pair.config().upgrade.sync_timeout;
            let lag = replication::wait_caught_up(pair, first, within).await?;
            let batch_now = max_batch(pair, first).await?;
            let no_new_batch = cx.batch_before.is_some() && batch_now == cx.batch_before;
            let note = match (lag, no_new_batch) {
                (Some(l), false) => Some(format!("caught up in {:.3} s", l.as_secs_f64())),
                (Some(l), true) => Some(format!(
                    "caught up in {:.3} s; {}'s migrate started no new batch (last batch still \
                     {}): delete-last-batch and migrate on {} are not needed",
                    l.as_secs_f64(),
                    pair.node_name(first),
                    batch_now.unwrap_or_default(),
                    pair.node_name(first.peer())
                )),
                (None, _) => None,
            };
            Ok(Finding {
                no_new_batch,
                problems: match lag {
                    Some(_) => Vec::new(),
                    None => vec![format!(
                        "a heartbeat written on {} did not arrive on {} within {within:?}",
                        pair.node_name(first),
                        pair.node_name(first.peer())
                    )],
                },
                note,
                ..Finding::default()
            })
        }
        Check::SubscriptionCovers => {
            let Some(on) = side else {
                return Ok(Finding::default());
            };
            let (p, s) =
                futures_util::future::join(published(pair, on.peer()), subscribed(pair, on)).await;
            let subscribed: BTreeSet<String> = s?.into_iter().map(|(t, _)| t).collect();
            let missing: Vec<String> = p?.into_iter().filter(|t| !subscribed.contains(t)).collect();
            Ok(Finding {
                problems: if missing.is_empty() {
                    Vec::new()
                } else {
                    vec![format!(
                        "{} of {} is not in subscription {} on {}: {}",
                        if missing.len() == 1 {
                            "table"
                        } else {
                            "tables"
                        },
                        pair.node_name(on.peer()),
                        subscription(pair, on),
                        pair.node_name(on),
                        missing.join(", ")
                    )]
                },
                ..Finding::default()
            })
        }
        Check::TablesReady => {
            let mut problems = Vec::new();
            for on in Side::BOTH {
                let (p, s) =
                    futures_util::future::join(published(pair, on.peer()), subscribed(pair, on))
                        .await;
                let missing = not_ready(&p?, &s?);
                if !missing.is_empty() {
                    problems.push(format!(
                        "subscription {} on {}: not in state r: {}",
                        subscription(pair, on),
                        pair.node_name(on),
                        missing.join(", ")
                    ));
                }
            }
            let new_tables = match cx.tables_before {
                Some(before) => added(before, &user_tables(pair, first).await?),
                None => Vec::new(),
            };
            Ok(Finding {
                note: Some(if new_tables.is_empty() {
                    "the migration added no table".into()
                } else {
                    format!("new tables ready both ways: {}", new_tables.join(", "))
                }),
                problems,
                new_tables,
                ..Finding::default()
            })
        }
        Check::HeartbeatFlows => {
            let directions = replication::heartbeats(pair).await?;
            let problems: Vec<String> = directions
                .iter()
                .filter(|d| d.heartbeat_lag_s.is_none())
                .map(|d| format!("{} -> {}: a fresh heartbeat did not arrive", d.from, d.to))
                .collect();
            let note = directions
                .iter()
                .filter_map(|d| {
                    d.heartbeat_lag_s
                        .map(|l| format!("{} -> {} {:.3} s", d.from, d.to, l))
                })
                .collect::<Vec<_>>()
                .join(", ");
            Ok(Finding {
                problems,
                note: (!note.is_empty()).then(|| format!("heartbeat {note}")),
                ..Finding::default()
            })
        }
    }
}

/// Whether a failing `check` is worth waiting for (it settles by itself: copies, refreshes,
/// heartbeats), and for how long.
pub(crate) fn patience(check: Check, sync_timeout: Duration) -> Duration {
    match check {
        Check::SubscriptionCovers | Check::TablesReady | Check::HeartbeatFlows => sync_timeout,
        // Right after a migration the second node's schema is final once its command returned.
        _ => Duration::ZERO,
    }
}

/// Runs `check`, retrying while it fails and patience lasts; `tick` is called about every
/// two seconds with the time waited.
pub(crate) async fn run(
    pair: &Pair,
    check: Check,
    side: Option<Side>,
    cx: Context<'_>,
    tick: &(dyn Fn(Duration) + Send + Sync),
) -> Result<Finding> {
    let within = patience(check, pair.config().upgrade.sync_timeout);
    let started = Instant::now();
    let mut last_tick = Instant::now();
    loop {
        let f = run_once(pair, check, side, cx).await?;
        if f.problems.is_empty() || started.elapsed() >= within {
            return Ok(f);
        }
        if last_tick.elapsed() >= Duration::from_secs(2) {
            tick(started.elapsed());
            last_tick = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The error for a failed check.
pub(crate) fn failed(step: &str, node: &str, check: Check, problems: Vec<String>) -> Error {
    let fix = match check {
        Check::ReplicationHealthy | Check::NoStuckSubscription => {
            "bring replication back to healthy first (`fspbx-ha replication status`), then run \
             the upgrade again"
        }
        Check::SchemaMatches => {
            "make both schemas equal (the migration that differs, or a missed step), then run \
             the upgrade again: it resumes at this step"
        }
        Check::SecondCaughtUp => {
            "replication from the first node is behind or stopped; fix it, then run the upgrade \
             again: it resumes at this step"
        }
        Check::SubscriptionCovers | Check::TablesReady => {
            "check the refresh command and the subscriber's PostgreSQL log (table sync errors), \
             then run the upgrade again: it resumes at this step"
        }
        Check::HeartbeatFlows => {
            "a direction stopped after the upgrade: see `fspbx-ha replication status` and the \
             PostgreSQL logs, then run the upgrade again: it resumes at this step"
        }
    };
    Error::UpgradeCheckFailed {
        step: step.to_string(),
        node: node.to_string(),
        problems,
        fix: fix.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn not_ready_lists_published_tables_missing_or_syncing() {
        let published = s(&["public.a", "public.b", "public.new"]);
        let subscribed = vec![
            ("public.a".to_string(), "r".to_string()),
            ("public.b".to_string(), "d".to_string()),
        ];
        assert_eq!(
            not_ready(&published, &subscribed),
            s(&["public.b", "public.new"])
        );
        let all = vec![
            ("public.a".to_string(), "r".to_string()),
            ("public.b".to_string(), "r".to_string()),
            ("public.new".to_string(), "r".to_string()),
        ];
        assert!(not_ready(&published, &all).is_empty());
    }

    #[test]
    fn added_tables_are_the_difference() {
        assert_eq!(
            added(&s(&["public.a"]), &s(&["public.z", "public.a", "public.b"])),
            s(&["public.b", "public.z"])
        );
        assert!(added(&s(&["public.a"]), &s(&["public.a"])).is_empty());
    }

    #[test]
    fn health_ignores_history_but_not_a_stopped_direction() {
        let ok = [
            DirectionStatus::healthy_for_test("a", "b"),
            DirectionStatus::healthy_for_test("b", "a"),
        ];
        assert!(health_problems(&ok).is_empty());
        let mut old_conflicts = ok.clone();
        old_conflicts[1]
            .conflicts
            .insert("confl_delete_origin_differs".into(), 1);
        old_conflicts[0].apply_error_count = 4;
        assert!(health_problems(&old_conflicts).is_empty());
        let (now, note) = stuck_problems(&old_conflicts, &old_conflicts);
        assert!(now.is_empty(), "{now:?}");
        assert!(note.unwrap().contains("(history)"));

        let mut broken = ok.clone();
        broken[1].worker_running = false;
        broken[1].heartbeat_lag_s = None;
        broken[0].origin = Some("any".into());
        let p = health_problems(&broken);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("a -> b (sub_b): origin is any"), "{p:?}");
        assert!(p[1].contains("apply worker is not running"), "{p:?}");
        assert!(p[2].contains("heartbeat did not arrive"), "{p:?}");
    }

    #[test]
    fn errors_growing_between_reads_mean_stuck() {
        let before = [
            DirectionStatus::healthy_for_test("a", "b"),
            DirectionStatus::healthy_for_test("b", "a"),
        ];
        let mut after = before.clone();
        after[0].apply_error_count = 2;
        after[1].conflicts.insert("confl_insert_exists".into(), 1);
        after[1].tables_not_ready = vec![crate::replication::TableState {
            table: "public.t".into(),
            state: "d".into(),
        }];
        let (p, note) = stuck_problems(&before, &after);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("2 new apply/sync error(s)"), "{p:?}");
        assert!(p[1].contains("1 new conflict(s)"), "{p:?}");
        assert!(p[2].contains("public.t (d)"), "{p:?}");
        assert!(note.is_none());
    }

    #[test]
    fn only_settling_checks_are_waited_for() {
        let t = Duration::from_secs(60);
        assert_eq!(patience(Check::TablesReady, t), t);
        assert_eq!(patience(Check::SchemaMatches, t), Duration::ZERO);
        assert_eq!(patience(Check::ReplicationHealthy, t), Duration::ZERO);
    }
}
