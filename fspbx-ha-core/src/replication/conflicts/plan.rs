//! Remedy plans: the exact SQL of each step, the node it runs on and the consequence (pure).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::detect::{DirectionConflicts, key_predicate};
use super::judge::ApplyState;
use crate::replication::plan::Side;
use crate::replication::sql::{ident, literal};
use crate::{Error, Result};

/// The replication origin a remedy's own changes are made under on the subscriber. The peer
/// subscribes with `origin = none`, so it skips every change that carries an origin: the
/// remedy's deletes and copies are not replicated back.
pub const REMEDY_ORIGIN: &str = "fspbx_ha_remedy";

/// What to do about a stuck subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "remedy")]
pub enum Remedy {
    /// `ALTER SUBSCRIPTION … SKIP (lsn = …)`: the failing remote transaction is not applied.
    Skip,
    /// Replace the subscriber's copy of one table with the publisher's.
    Resync {
        /// The table, `schema.table` (or a name `to_regclass` finds).
        table: String,
    },
    /// Delete the subscriber's conflicting row so that the remote change applies.
    FixRow,
}

impl Remedy {
    /// What it does, in a few words.
    pub fn describe(&self) -> String {
        match self {
            Remedy::Skip => "skip the failing transaction".into(),
            Remedy::Resync { table } => format!("re-sync table {table} from the publisher"),
            Remedy::FixRow => "replace the subscriber's conflicting row".into(),
        }
    }
}

/// How a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemedyAction {
    /// The SQL as it stands.
    Sql,
    /// The SQL in one transaction of a session set up with replication origin
    /// [`REMEDY_ORIGIN`] (`pg_replication_origin_session_setup`): not replicated to the peer.
    Unreplicated,
    /// `BEGIN` and a lock held until [`RemedyAction::Commit`] (rolled back on failure).
    BeginLock,
    /// Reads `pg_current_wal_lsn()` once, then polls the SQL (a boolean, that LSN as `$1`)
    /// until it is true: the subscriber has applied everything the publisher committed before
    /// the lock.
    WaitApplied,
    /// Reads the publisher's rows (one JSON text), kept for [`RemedyAction::WriteRows`].
    ReadRows,
    /// Like [`RemedyAction::Unreplicated`], with the rows read as `$1`.
    WriteRows,
    /// `COMMIT` of the [`RemedyAction::BeginLock`] transaction.
    Commit,
    /// Run only once the worker has resumed (a heartbeat crossed): resets the subscription's
    /// error and conflict counters, so `status` stops counting the resolved conflict.
    ResetStatsWhenResumed,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemedyStep {
    /// The node it runs on.
    pub side: Side,
    /// That node's name.
    pub node: String,
    /// How it runs.
    pub action: RemedyAction,
    /// The exact SQL.
    pub sql: String,
    /// Why, one line.
    pub why: String,
}

/// A remedy for one stuck subscription, shown before anything runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemedyPlan {
    /// The subscription.
    pub subscription: String,
    /// The subscriber.
    pub subscriber: Side,
    /// The subscriber's name.
    pub node: String,
    /// The publisher's name.
    pub publisher: String,
    /// The remedy.
    pub remedy: Remedy,
    /// The steps, in order.
    pub steps: Vec<RemedyStep>,
    /// What it costs, in one sentence.
    pub consequence: String,
    /// What will not survive (rows as JSON, changes not applied), so nothing is lost silently.
    pub lost: Vec<String>,
    /// How many such items there are (`lost` holds at most [`LOST_SHOWN`]).
    pub lost_total: usize,
    /// The conflict the plan answers.
    pub conflict: DirectionConflicts,
}

/// Most items listed in [`RemedyPlan::lost`].
pub const LOST_SHOWN: usize = 1000;

impl RemedyPlan {
    /// A human rendering: the conflict, the steps with node and SQL, the consequence and
    /// everything that will be lost.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "remedy for {} on {}: {}",
            self.subscription,
            self.node,
            self.remedy.describe()
        );
        for (i, s) in self.steps.iter().enumerate() {
            let how = match s.action {
                RemedyAction::Unreplicated | RemedyAction::WriteRows => {
                    format!(" (origin {REMEDY_ORIGIN}: not replicated)")
                }
                _ => String::new(),
            };
            let _ = writeln!(out, "  {}. on {}{}: {}", i + 1, s.node, how, s.why);
            for line in s.sql.lines() {
                let _ = writeln!(out, "       {line}");
            }
        }
        if let Some(r) = &self.conflict.rows {
            let _ = writeln!(out, "row {} {} now:", r.table, r.key);
            r.render_into(&mut out, "  ");
        }
        let _ = writeln!(out, "consequence: {}", self.consequence);
        if self.lost_total > 0 {
            let _ = writeln!(out, "lost ({}):", self.lost_total);
            for l in &self.lost {
                let _ = writeln!(out, "  {l}");
            }
            if self.lost_total > self.lost.len() {
                let _ = writeln!(out, "  … and {} more", self.lost_total - self.lost.len());
            }
        }
        out
    }
}

/// What a re-sync needs to know about the table (read by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResyncFacts {
    /// `"schema"."table"`.
    pub table: String,
    /// Columns that take values (not generated), in order.
    pub columns: Vec<String>,
    /// Rows only the subscriber has, or has in another version (JSON).
    pub subscriber_only: Vec<String>,
}

fn unavailable(d: &DirectionConflicts, remedy: &Remedy, reason: &str, fix: &str) -> Error {
    Error::ConflictRemedyUnavailable {
        node: d.to.clone(),
        subscription: d.subscription.clone(),
        remedy: remedy.describe(),
        reason: reason.into(),
        fix: fix.into(),
    }
}

/// The plan for `remedy` on the stuck direction `d` (pure). `resync` is required for
/// [`Remedy::Resync`], which also serves a flowing direction (to make a table that differs
/// after a skip the publisher's again).
pub fn plan_remedy(
    d: &DirectionConflicts,
    remedy: &Remedy,
    resync: Option<&ResyncFacts>,
) -> Result<RemedyPlan> {
    // A re-sync also mends a flowing direction whose table differs (after a skip, say).
    let resync_ok = matches!(remedy, Remedy::Resync { .. }) && d.state == ApplyState::Flowing;
    if !d.stuck() && !resync_ok {
        return Err(unavailable(
            d,
            remedy,
            &format!(
                "the subscription is {} (nothing is stuck)",
                d.state.as_str()
            ),
            "run `fspbx-ha replication conflicts` to see both directions",
        ));
    }
    let sub = ident(&d.subscription);
    let (to, from) = (d.subscriber, d.subscriber.peer());
    let step = |side: Side, action: RemedyAction, sql: String, why: &str| RemedyStep {
        side,
        node: if side == to {
            d.to.clone()
        } else {
            d.from.clone()
        },
        action,
        sql,
        why: why.to_string(),
    };
    let enabled = d.sample.as_ref().is_some_and(|s| s.enabled);
    let enable = step(
        to,
        RemedyAction::Sql,
        format!("ALTER SUBSCRIPTION {sub} ENABLE"),
        "the subscription is disabled (disable_on_error): enable it so the worker resumes",
    );
    let err = d.error.as_ref();
    let change = err.map(|e| {
        format!(
            "{} on {} key {} in remote transaction {} finished at {}",
            e.message_type,
            e.relation.as_deref().unwrap_or("?"),
            e.key.as_ref().map_or("?", |k| k.text.as_str()),
            e.remote_xid.map_or("?".into(), |x| x.to_string()),
            e.finish_lsn.as_deref().unwrap_or("?")
        )
    });
    let mut steps = Vec::new();
    let (consequence, lost) = match remedy {
        Remedy::Skip => {
            let Some(lsn) = err.and_then(|e| e.finish_lsn.clone()) else {
                return Err(unavailable(
                    d,
                    remedy,
                    "the failing transaction's finish LSN is not known (no apply error with \
                     `finished at` in the log)",
                    "check replication.log_command, or look for `CONTEXT: processing remote \
                     data … finished at X/Y` in the subscriber's PostgreSQL log",
                ));
            };
            steps.push(step(
                to,
                RemedyAction::Sql,
                format!("ALTER SUBSCRIPTION {sub} SKIP (lsn = {})", literal(&lsn)),
                "skip the remote transaction that fails",
            ));
            let carried = d
                .rows
                .as_ref()
                .and_then(|r| r.publisher_row.clone())
                .or_else(|| err.and_then(|e| e.remote_row.clone()));
            let lost = vec![format!(
                "not applied on {}: {} (and any other change of that transaction){}",
                d.to,
                change.clone().unwrap_or_default(),
                carried.map_or(String::new(), |r| format!(
                    "; the row as {} has it now: {r}",
                    d.from
                ))
            )];
            (
                format!(
                    "remote transaction {} from {} is not applied on {}: its changes are missing \
                     there and the two nodes keep different versions of what it touched until \
                     fixed by hand",
                    err.and_then(|e| e.remote_xid)
                        .map_or("?".into(), |x| x.to_string()),
                    d.from,
                    d.to
                ),
                lost,
            )
        }
        Remedy::FixRow => {
            let (Some(table), Some(e)) = (d.table.as_ref(), err) else {
                return Err(unavailable(
                    d,
                    remedy,
                    "the failing table is not known (no apply error in the log)",
                    "check replication.log_command, or use --resync TABLE or --skip",
                ));
            };
            let Some(pred) = e
                .key
                .as_ref()
                .and_then(|k| key_predicate(&k.columns, &k.values))
            else {
                return Err(unavailable(
                    d,
                    remedy,
                    "the conflicting key is not known or not unambiguous",
                    "use --resync TABLE or --skip",
                ));
            };
            let row = d.rows.as_ref().and_then(|r| r.subscriber_row.clone());
            let Some(row) = row else {
                return Err(unavailable(
                    d,
                    remedy,
                    &format!(
                        "{} has no row {} in {table} (the conflict is on another constraint?)",
                        d.to,
                        e.key.as_ref().map_or("?", |k| k.text.as_str())
                    ),
                    "use --resync TABLE or --skip",
                ));
            };
            steps.push(step(
                to,
                RemedyAction::Unreplicated,
                format!("DELETE FROM {table} WHERE {pred}"),
                "delete the subscriber's conflicting row without replicating the delete",
            ));
            (
                format!(
                    "{}'s version of row {} in {table} is deleted (shown below) so that {}'s \
                     change applies; {} keeps its own version",
                    d.to,
                    e.key.as_ref().map_or("?", |k| k.text.as_str()),
                    d.from,
                    d.from
                ),
                vec![format!("{}'s row: {row}", d.to)],
            )
        }
        Remedy::Resync { .. } => {
            let Some(facts) = resync else {
                return Err(unavailable(
                    d,
                    remedy,
                    "the table was not read",
                    "pass the table to re-sync",
                ));
            };
            let Some(slot) = d.sample.as_ref().and_then(|s| s.slot_name.clone()) else {
                return Err(unavailable(
                    d,
                    remedy,
                    "the subscription has no slot",
                    "recreate the subscription (fspbx-ha replication apply)",
                ));
            };
            let t = &facts.table;
            if d.stuck()
                && let Some(failing) = &d.table
                && failing != t
            {
                return Err(unavailable(
                    d,
                    remedy,
                    &format!("the failing change is on {failing}, not on {t}"),
                    &format!("re-sync {failing}, or use --fix-row or --skip"),
                ));
            }
            let cols = facts
                .columns
                .iter()
                .map(|c| ident(c))
                .collect::<Vec<_>>()
                .join(", ");
            steps.push(step(
                to,
                RemedyAction::Unreplicated,
                format!("DELETE FROM {t}"),
                "empty the subscriber's copy, so the failing change and those after it apply",
            ));
            if !enabled {
                steps.push(enable.clone());
            }
            steps.push(step(
                from,
                RemedyAction::BeginLock,
                format!("BEGIN;\nLOCK TABLE {t} IN EXCLUSIVE MODE"),
                "hold writes to the table on the publisher (reads go on) until the copy is in",
            ));
            steps.push(step(
                from,
                RemedyAction::WaitApplied,
                format!(
                    "SELECT confirmed_flush_lsn >= $1::text::pg_lsn FROM pg_replication_slots \
                     WHERE slot_name = {}",
                    literal(&slot)
                ),
                "wait until the subscriber confirmed everything committed before the lock ($1 = \
                 pg_current_wal_lsn(), read once right after the lock)",
            ));
            steps.push(step(
                from,
                RemedyAction::ReadRows,
                format!("SELECT coalesce(json_agg(x), '[]')::text FROM {t} x"),
                "read the publisher's rows",
            ));
            steps.push(step(
                to,
                RemedyAction::WriteRows,
                format!(
                    "DELETE FROM {t};\nINSERT INTO {t} ({cols}) OVERRIDING SYSTEM VALUE\n  SELECT \
                     {cols} FROM json_populate_recordset(NULL::{t}, $1::text::json)"
                ),
                "replace the subscriber's rows with the publisher's, without replicating",
            ));
            steps.push(step(
                from,
                RemedyAction::Commit,
                "COMMIT".into(),
                "release the lock",
            ));
            let lost = facts
                .subscriber_only
                .iter()
                .map(|r| format!("{}'s row: {r}", d.to))
                .collect();
            (
                format!(
                    "{}'s copy of {t} becomes {}'s: rows only {} has, or has in another version, \
                     are lost (listed below); {t} is empty on {} and locked against writes on {} \
                     for the seconds the copy takes",
                    d.to, d.from, d.to, d.to, d.from
                ),
                lost,
            )
        }
    };
    if !enabled && !matches!(remedy, Remedy::Resync { .. }) {
        steps.push(enable);
    }
    steps.push(step(
        to,
        RemedyAction::ResetStatsWhenResumed,
        format!(
            "SELECT pg_stat_reset_subscription_stats(oid) FROM pg_subscription WHERE subname = {}",
            literal(&d.subscription)
        ),
        "once the worker has resumed: reset its error counters (status counts errors since)",
    ));
    let lost_total = lost.len();
    Ok(RemedyPlan {
        subscription: d.subscription.clone(),
        subscriber: to,
        node: d.to.clone(),
        publisher: d.from.clone(),
        remedy: remedy.clone(),
        steps,
        consequence,
        lost: lost.into_iter().take(LOST_SHOWN).collect(),
        lost_total,
        conflict: d.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::conflicts::detect::RowVersions;
    use crate::replication::conflicts::judge::SubscriptionSample;
    use crate::replication::conflicts::log::parse_log;

    fn stuck(enabled: bool) -> DirectionConflicts {
        let log = include_str!("testdata/pg17_subscriber.log");
        let error = parse_log(log).pop();
        DirectionConflicts {
            from: "a".into(),
            to: "b".into(),
            subscriber: Side::B,
            subscription: "fspbx_subscription_a_to_b".into(),
            state: if enabled {
                ApplyState::Failing
            } else {
                ApplyState::Disabled
            },
            reasons: vec![],
            sample: Some(SubscriptionSample {
                oid: 16406,
                enabled,
                worker_pid: None,
                apply_error_count: 5,
                sync_error_count: 0,
                conflicts: Default::default(),
                slot_name: Some("fspbx_subscription_a_to_b".into()),
                origin_lsn: None,
            }),
            error_count_rise: 2,
            error,
            table: Some("\"public\".\"u\"".into()),
            rows: Some(RowVersions {
                table: "\"public\".\"u\"".into(),
                key: "(id)=(11111111-1111-1111-1111-111111111111)".into(),
                subscriber: "b".into(),
                subscriber_row: Some(r#"{"id":"1111…","v":"from b"}"#.into()),
                publisher: "a".into(),
                publisher_row: Some(r#"{"id":"1111…","v":"from a"}"#.into()),
            }),
            skipped_changes: vec![],
            log_note: None,
        }
    }

    #[test]
    fn skip_plan() {
        let p = plan_remedy(&stuck(true), &Remedy::Skip, None).unwrap();
        assert_eq!(p.steps.len(), 2);
        assert_eq!(p.steps[1].action, RemedyAction::ResetStatsWhenResumed);
        assert_eq!(
            p.steps[0].sql,
            "ALTER SUBSCRIPTION \"fspbx_subscription_a_to_b\" SKIP (lsn = '0/14C09E8')"
        );
        assert_eq!(p.steps[0].node, "b");
        assert!(
            p.consequence.contains("transaction 743"),
            "{}",
            p.consequence
        );
        let text = p.render();
        assert!(text.contains("from a") && text.contains("from b"), "{text}");
        assert!(text.contains("INSERT on public.u key (id)=(1111"), "{text}");
        // Disabled (disable_on_error): the plan enables it again.
        let p = plan_remedy(&stuck(false), &Remedy::Skip, None).unwrap();
        assert_eq!(
            p.steps[1].sql,
            "ALTER SUBSCRIPTION \"fspbx_subscription_a_to_b\" ENABLE"
        );
        // No LSN known: refused with the fix.
        let mut d = stuck(true);
        d.error = None;
        let e = plan_remedy(&d, &Remedy::Skip, None).unwrap_err();
        assert!(e.to_string().contains("replication.log_command"), "{e}");
        assert!(
            e.to_string()
                .starts_with("node b: subscription fspbx_subscription_a_to_b")
        );
    }

    #[test]
    fn fix_row_plan() {
        let p = plan_remedy(&stuck(true), &Remedy::FixRow, None).unwrap();
        assert_eq!(p.steps[0].action, RemedyAction::Unreplicated);
        assert_eq!(
            p.steps[0].sql,
            "DELETE FROM \"public\".\"u\" WHERE \"id\" = '11111111-1111-1111-1111-111111111111'"
        );
        assert_eq!(p.lost, [r#"b's row: {"id":"1111…","v":"from b"}"#]);
        let mut flowing = stuck(true);
        flowing.state = ApplyState::Flowing;
        assert!(plan_remedy(&flowing, &Remedy::FixRow, None).is_err());
    }

    #[test]
    fn resync_plan() {
        let facts = ResyncFacts {
            table: "\"public\".\"u\"".into(),
            columns: vec!["id".into(), "v".into()],
            subscriber_only: vec!["{\"v\":\"from b\"}".into()],
        };
        let p = plan_remedy(
            &stuck(false),
            &Remedy::Resync {
                table: "public.u".into(),
            },
            Some(&facts),
        )
        .unwrap();
        let actions: Vec<(RemedyAction, &str)> = p
            .steps
            .iter()
            .map(|s| (s.action, s.node.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                (RemedyAction::Unreplicated, "b"),
                (RemedyAction::Sql, "b"),
                (RemedyAction::BeginLock, "a"),
                (RemedyAction::WaitApplied, "a"),
                (RemedyAction::ReadRows, "a"),
                (RemedyAction::WriteRows, "b"),
                (RemedyAction::Commit, "a"),
                (RemedyAction::ResetStatsWhenResumed, "b"),
            ]
        );
        assert!(
            p.steps[5]
                .sql
                .contains("INSERT INTO \"public\".\"u\" (\"id\", \"v\")")
        );
        assert_eq!(p.lost_total, 1);
        assert_eq!(p.lost[0], "b's row: {\"v\":\"from b\"}");
        // A flowing direction can be re-synced (a table left different by a skip), not
        // skipped.
        let mut flowing = stuck(true);
        flowing.state = ApplyState::Flowing;
        let remedy = Remedy::Resync {
            table: "public.u".into(),
        };
        assert!(plan_remedy(&flowing, &remedy, Some(&facts)).is_ok());
        assert!(plan_remedy(&flowing, &Remedy::Skip, None).is_err());
        flowing.state = ApplyState::Missing;
        assert!(plan_remedy(&flowing, &remedy, Some(&facts)).is_err());
        // A stuck direction fails on another table: re-syncing this one would not help.
        let other = ResyncFacts {
            table: "\"public\".\"jobs\"".into(),
            ..facts
        };
        let e = plan_remedy(&stuck(true), &remedy, Some(&other)).unwrap_err();
        assert!(e.to_string().contains("re-sync \"public\".\"u\""), "{e}");
    }
}
