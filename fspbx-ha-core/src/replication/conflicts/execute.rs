//! Planning a remedy against the live pair and running it, then re-checking the direction.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::detect::{
    ConflictOptions, DirectionConflicts, direction_now, directions, resolve_table,
};
use super::plan::{REMEDY_ORIGIN, Remedy, RemedyAction, RemedyPlan, ResyncFacts, plan_remedy};
use crate::pg::PgConn;
use crate::replication::pair::Pair;
use crate::replication::plan::Side;
use crate::replication::sql::{literal, qualified};
use crate::replication::status::{watch_beat, write_beat};
use crate::{Error, Result};

/// How a remedy runs and is re-checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveOptions {
    /// How long to wait for the apply worker to resume (a heartbeat from the publisher to
    /// arrive), and for the subscriber to catch up before a re-sync's copy.
    pub resume_timeout: Duration,
    /// How the direction is read again afterwards.
    pub detect: ConflictOptions,
}

impl Default for ResolveOptions {
    fn default() -> Self {
        ResolveOptions {
            resume_timeout: Duration::from_secs(60),
            detect: ConflictOptions::default(),
        }
    }
}

/// What a remedy did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemedyOutcome {
    /// The plan that ran.
    pub plan: RemedyPlan,
    /// Rows written by a re-sync's copy.
    pub rows_copied: Option<u64>,
    /// The worker resumed: a fresh heartbeat from the publisher arrived, and the direction
    /// reads as flowing.
    pub resolved: bool,
    /// Seconds the heartbeat took after the remedy (`None`: it did not arrive).
    pub heartbeat_s: Option<f64>,
    /// The direction read again afterwards (a further conflict shows here).
    pub after: DirectionConflicts,
}

/// The subscriber side of a subscription name.
pub fn subscriber_of(pair: &Pair, subscription: &str) -> Result<Side> {
    let d = directions(pair);
    d.iter()
        .find(|(_, n)| n == subscription)
        .map(|(s, _)| *s)
        .ok_or_else(|| Error::ConflictUnknownSubscription {
            subscription: subscription.into(),
            known: format!("{}, {}", d[0].1, d[1].1),
        })
}

/// Reads the direction of `subscription` and plans `remedy` for it (nothing changes).
pub async fn plan_resolution(
    pair: &Pair,
    subscription: &str,
    remedy: &Remedy,
    options: &ConflictOptions,
) -> Result<RemedyPlan> {
    let to = subscriber_of(pair, subscription)?;
    let d = direction_now(pair, to, options).await?;
    let facts = match remedy {
        Remedy::Resync { table } => Some(resync_facts(pair, &d, table).await?),
        _ => None,
    };
    plan_remedy(&d, remedy, facts.as_ref())
}

async fn resync_facts(pair: &Pair, d: &DirectionConflicts, table: &str) -> Result<ResyncFacts> {
    let (to, from) = (d.subscriber, d.subscriber.peer());
    let sc = pair.pg(to);
    let Some((schema, name)) = resolve_table(sc, table).await? else {
        return Err(Error::ConflictRemedyUnavailable {
            node: d.to.clone(),
            subscription: d.subscription.clone(),
            remedy: format!("re-sync table {table}"),
            reason: format!("no table {table} on {}", d.to),
            fix: "pass schema.table as the server names it (e.g. public.v_extensions)".into(),
        });
    };
    let t = qualified(&schema, &name);
    let columns: Vec<String> = sc
        .client()
        .query(
            "SELECT attname::text FROM pg_catalog.pg_attribute
              WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped
                AND attgenerated = '' ORDER BY attnum",
            &[&t],
        )
        .await
        .map_err(sc.query_error("reading the table's columns"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let all = format!("SELECT row_to_json(x)::text FROM {t} x");
    let (mine, theirs) = futures_util::future::join(
        sc.client().query(&all, &[]),
        pair.pg(from).client().query(&all, &[]),
    )
    .await;
    let mine = mine.map_err(sc.query_error("reading the subscriber's rows"))?;
    let theirs = theirs.map_err(pair.pg(from).query_error("reading the publisher's rows"))?;
    let theirs: std::collections::HashSet<String> = theirs.iter().map(|r| r.get(0)).collect();
    let subscriber_only = mine
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|r| !theirs.contains(r))
        .collect();
    Ok(ResyncFacts {
        table: t,
        columns,
        subscriber_only,
    })
}

/// Runs `sql` (and `param`, when given, as `$1`) in one transaction of a session whose
/// replication origin is [`REMEDY_ORIGIN`], so the peer's `origin = none` subscription skips
/// the change. The session's origin is reset afterwards, also on failure.
async fn unreplicated(conn: &PgConn, sql: &str, param: Option<&str>) -> Result<u64> {
    let c = conn.client();
    c.batch_execute(&format!(
        "SELECT pg_catalog.pg_replication_origin_create({o})
          WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_origin WHERE roname = {o})",
        o = literal(REMEDY_ORIGIN)
    ))
    .await
    .map_err(conn.query_error("creating the remedy's replication origin"))?;
    let run = async {
        c.batch_execute(&format!(
            "BEGIN; SELECT pg_catalog.pg_replication_origin_session_setup({})",
            literal(REMEDY_ORIGIN)
        ))
        .await
        .map_err(conn.query_error("setting up the remedy's replication origin"))?;
        let n = match param {
            Some(p) => {
                // Several statements with a parameter: the last one takes it.
                let (head, last) = sql.rsplit_once(";\n").unwrap_or(("", sql));
                if !head.is_empty() {
                    c.batch_execute(head)
                        .await
                        .map_err(conn.query_error("running the remedy"))?;
                }
                c.execute(last, &[&p])
                    .await
                    .map_err(conn.query_error("running the remedy"))?
            }
            None => c
                .execute(sql, &[])
                .await
                .map_err(conn.query_error("running the remedy"))?,
        };
        c.batch_execute("COMMIT")
            .await
            .map_err(conn.query_error("committing the remedy"))?;
        Ok::<u64, Error>(n)
    };
    let result = run.await;
    if result.is_err() {
        let _ = c.batch_execute("ROLLBACK").await;
    }
    let reset = c
        .batch_execute(
            "SELECT pg_catalog.pg_replication_origin_session_reset()
              WHERE pg_catalog.pg_replication_origin_session_is_setup()",
        )
        .await
        .map_err(conn.query_error("resetting the session's replication origin"));
    let n = result?;
    reset?;
    Ok(n)
}

/// Runs the plan's steps in order, then watches the direction until a heartbeat from the
/// publisher arrives (or `options.resume_timeout` passes) and reads it again.
pub async fn resolve(
    pair: &Pair,
    plan: &RemedyPlan,
    options: &ResolveOptions,
) -> Result<RemedyOutcome> {
    let mut rows: Option<String> = None;
    let mut rows_copied = None;
    let mut locked: Option<Side> = None;
    let result = async {
        for s in &plan.steps {
            let conn = pair.pg(s.side);
            match s.action {
                RemedyAction::Sql | RemedyAction::Commit => {
                    conn.client()
                        .batch_execute(&s.sql)
                        .await
                        .map_err(conn.query_error("running a remedy step"))?;
                    if s.action == RemedyAction::Commit {
                        locked = None;
                    }
                }
                RemedyAction::BeginLock => {
                    locked = Some(s.side);
                    conn.client()
                        .batch_execute(&s.sql)
                        .await
                        .map_err(conn.query_error("locking the table on the publisher"))?;
                }
                RemedyAction::WaitApplied => {
                    wait_true(conn, &s.sql, options.resume_timeout, plan).await?;
                }
                RemedyAction::ReadRows => {
                    let r = conn
                        .client()
                        .query_one(&s.sql, &[])
                        .await
                        .map_err(conn.query_error("reading the publisher's rows"))?;
                    rows = Some(r.get(0));
                }
                RemedyAction::Unreplicated => {
                    unreplicated(conn, &s.sql, None).await?;
                }
                RemedyAction::ResetStatsWhenResumed => {}
                RemedyAction::WriteRows => {
                    let data = rows.as_deref().unwrap_or("[]");
                    rows_copied = Some(unreplicated(conn, &s.sql, Some(data)).await?);
                }
            }
        }
        Ok::<(), Error>(())
    }
    .await;
    if let Some(side) = locked {
        let _ = pair.pg(side).client().batch_execute("ROLLBACK").await;
    }
    result?;

    let to = plan.subscriber;
    let heartbeat_s = heartbeat(pair, to, &plan.subscription, options.resume_timeout).await?;
    let mut after = direction_now(pair, to, &options.detect).await?;
    let resolved = heartbeat_s.is_some() && !after.stuck();
    if resolved {
        for s in plan
            .steps
            .iter()
            .filter(|s| s.action == RemedyAction::ResetStatsWhenResumed)
        {
            let conn = pair.pg(s.side);
            conn.client()
                .batch_execute(&s.sql)
                .await
                .map_err(conn.query_error("resetting the subscription's error counters"))?;
        }
        if let Some(sample) = super::detect::sample(pair.pg(to), &plan.subscription).await? {
            after.sample = Some(sample);
        }
    }
    Ok(RemedyOutcome {
        plan: plan.clone(),
        rows_copied,
        resolved,
        heartbeat_s,
        after,
    })
}

async fn wait_true(conn: &PgConn, sql: &str, timeout: Duration, plan: &RemedyPlan) -> Result<()> {
    let started = Instant::now();
    let lsn: String = conn
        .client()
        .query_one("SELECT pg_catalog.pg_current_wal_lsn()::text", &[])
        .await
        .map_err(conn.query_error("reading the publisher's WAL position"))?
        .get(0);
    loop {
        let ok: Option<bool> = conn
            .client()
            .query_opt(sql, &[&lsn])
            .await
            .map_err(conn.query_error("waiting for the subscriber to catch up"))?
            .and_then(|r| r.get(0));
        if ok == Some(true) {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(Error::ConflictRemedyUnavailable {
                node: plan.node.clone(),
                subscription: plan.subscription.clone(),
                remedy: plan.remedy.describe(),
                reason: format!(
                    "{} did not catch up with {} within {timeout:?} (another conflict?); the \
                     lock was released and nothing was copied, so {}'s copy of the table holds \
                     only what replicated since it was emptied (its former rows were listed in \
                     the plan)",
                    plan.node, plan.publisher, plan.node
                ),
                fix: "run `fspbx-ha replication conflicts`, resolve what it shows, then run the \
                      re-sync again"
                    .into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes a heartbeat on the publisher of the direction into `to` and waits for it there.
/// `None`: it did not arrive within `timeout` (or there is no heartbeat table), or the apply
/// worker failed twice more meanwhile (a further conflict: waiting longer would not help; one
/// failure may be an attempt that started before the remedy).
async fn heartbeat(pair: &Pair, to: Side, sub: &str, timeout: Duration) -> Result<Option<f64>> {
    let from = to.peer();
    let table = qualified(&pair.config().replication.heartbeat_schema, "heartbeat");
    let errors_at =
        |s: Option<super::judge::SubscriptionSample>| s.map_or(0, |s| s.apply_error_count);
    let errors_before = errors_at(super::detect::sample(pair.pg(to), sub).await?);
    let seq = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    if !write_beat(pair.pg(from), &table, pair.node_name(from), seq).await? {
        return Ok(None);
    }
    let wrote_at = Instant::now();
    loop {
        let remaining = timeout.saturating_sub(wrote_at.elapsed());
        let window = remaining.min(Duration::from_secs(1));
        let (lag, _) = watch_beat(
            pair.pg(to),
            &table,
            pair.node_name(from),
            seq,
            Instant::now(),
            window,
        )
        .await?;
        if lag.is_some() {
            return Ok(Some(wrote_at.elapsed().as_secs_f64()));
        }
        if remaining <= window {
            return Ok(None);
        }
        let errors = errors_at(super::detect::sample(pair.pg(to), sub).await?);
        if errors >= errors_before + 2 {
            return Ok(None);
        }
    }
}
