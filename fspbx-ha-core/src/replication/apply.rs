//! Running a plan: each step's postcondition is checked first (skip when already true), then the
//! step runs, then the postcondition is checked again. A failed run leaves every finished step
//! in place, so the next run resumes at the failed one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::hba;
use super::inventory::{self, read_role, read_sequences, read_tables};
use super::pair::Pair;
use super::plan::{
    Action, PlanKind, Postcondition, ReplicationPlan, SecretUse, Side, Step, Want, sequences_behind,
};
use super::progress::{ApplyObserver, CopyProgress};
use super::scram;
use super::sql::{REDACTED, literal, qualified};
use crate::pg::PgConn;
use crate::{Error, Result, shell};

/// What happened to one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    /// Its postcondition already held: nothing was done.
    AlreadyDone,
    /// It ran and its postcondition holds now.
    Executed,
}

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepOutcome {
    /// Step id.
    pub id: String,
    /// Node.
    pub node: String,
    /// Skipped or executed.
    pub result: StepResult,
    /// Time spent, in seconds.
    pub elapsed_s: f64,
}

/// The outcome of a whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplyReport {
    /// Setup or teardown.
    pub kind: PlanKind,
    /// Every step, in order.
    pub steps: Vec<StepOutcome>,
    /// Total time in seconds.
    pub elapsed_s: f64,
}

impl ApplyReport {
    /// Steps that ran.
    pub fn executed(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.result == StepResult::Executed)
            .count()
    }
}

/// Runs `plan` on the pair. Stops at the first failing step with an error naming node, step
/// and fix; what ran before stays done.
pub async fn apply(
    pair: &mut Pair,
    plan: &ReplicationPlan,
    observer: &dyn ApplyObserver,
) -> Result<ApplyReport> {
    let started = Instant::now();
    let mut outcomes = Vec::with_capacity(plan.steps.len());
    // Open the SSH sessions the plan needs up front, both nodes at once.
    let needs_ssh = |side: Side| {
        plan.steps.iter().any(|s| match &s.action {
            Action::EditHba { .. } | Action::Restart { .. } => s.side == side,
            Action::CopySchema { from, .. } => s.side == side || *from == side,
            _ => false,
        })
    };
    pair.prepare_ssh([needs_ssh(Side::A), needs_ssh(Side::B)])
        .await;
    for (i, step) in plan.steps.iter().enumerate() {
        observer.step_started(step, i, plan.steps.len());
        let t = Instant::now();
        let wrap = |e: Error| wrap_step(step, e);
        let result = if holds(pair, step).await.map_err(wrap)? {
            tracing::info!(step = %step.id, node = %step.node, "already done");
            StepResult::AlreadyDone
        } else {
            tracing::info!(step = %step.id, node = %step.node, "running");
            execute(pair, step, observer).await.map_err(wrap)?;
            if !holds(pair, step).await.map_err(wrap)? {
                return Err(Error::ReplicationStepIncomplete {
                    node: step.node.clone(),
                    step: step.id.clone(),
                    postcondition: step.postcondition.to_string(),
                    fix: "look at the node's PostgreSQL log, fix the cause and apply again".into(),
                });
            }
            StepResult::Executed
        };
        let outcome = StepOutcome {
            id: step.id.clone(),
            node: step.node.clone(),
            result,
            elapsed_s: t.elapsed().as_secs_f64(),
        };
        observer.step_finished(step, &outcome);
        outcomes.push(outcome);
    }
    Ok(ApplyReport {
        kind: plan.kind,
        steps: outcomes,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

fn wrap_step(step: &Step, e: Error) -> Error {
    if matches!(
        e,
        Error::ReplicationStep { .. }
            | Error::ReplicationTimeout { .. }
            | Error::ReplicationStepIncomplete { .. }
            | Error::ReplicationPasswordMissing { .. }
            | Error::Secret { .. }
    ) {
        return e;
    }
    let fix = match &step.action {
        Action::Sql {
            secret: Some(SecretUse::ConnInfoPassword { publisher, .. }),
            ..
        } => format!(
            "check that node {} accepts {} from this node's address (pg_hba.conf, firewall, \
             replication.password); nothing was created, apply again after fixing",
            match publisher {
                Side::A => "A",
                Side::B => "B",
            },
            "connections"
        ),
        Action::EditHba { .. } | Action::Restart { .. } | Action::CopySchema { .. } => {
            "check SSH access to the node and the command's output above; apply again after fixing"
                .into()
        }
        _ => "fix the cause named above and apply again: finished steps are skipped".into(),
    };
    Error::ReplicationStep {
        node: step.node.clone(),
        step: step.id.clone(),
        fix,
        source: Box::new(e),
    }
}

async fn query_bool(conn: &PgConn, what: &'static str, sql: &str, name: &str) -> Result<bool> {
    Ok(conn
        .client()
        .query_one(sql, &[&name])
        .await
        .map_err(conn.query_error(what))?
        .get(0))
}

/// Whether the step's postcondition holds now.
async fn holds(pair: &Pair, step: &Step) -> Result<bool> {
    use Postcondition::*;
    let conn = pair.pg(step.side);
    let r = &pair.config().replication;
    match &step.postcondition {
        SettingsConfigured { settings } => settings_hold(conn, settings, true).await,
        SettingsActive { settings } => settings_hold(conn, settings, false).await,
        HbaRule { peer, role, method } => {
            let db: String = conn
                .client()
                .query_one("SELECT current_database()::text", &[])
                .await
                .map_err(conn.query_error("reading the database name"))?
                .get(0);
            inventory::hba_has_rule(conn, &db, role, *peer, method).await
        }
        RoleReady { role } => {
            let pw = pair.replication_password(step.side)?;
            Ok(read_role(conn, role, Some(pw.expose())).await?.is_some_and(|ro| {
                ro.can_login
                    && ro.replication
                    && (ro.reads_all_data || ro.superuser)
                    && ro.password_matches == Some(true)
            }))
        }
        SchemaMatches { reference } => {
            let (mine, theirs) = futures_util::future::join(
                read_tables(conn),
                read_tables(pair.pg(*reference)),
            )
            .await;
            Ok(inventory::fingerprint_of(&mine?, &r.heartbeat_schema)
                == inventory::fingerprint_of(&theirs?, &r.heartbeat_schema))
        }
        TablesEmpty { except_schema } => Ok(read_tables(conn)
            .await?
            .iter()
            .all(|t| &t.schema == except_schema || !t.has_rows)),
        HeartbeatTable { schema } => {
            query_bool(
                conn,
                "looking for the heartbeat table",
                "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
                &qualified(schema, "heartbeat"),
            )
            .await
        }
        ReplicaIdentity { schema, table } => {
            query_bool(
                conn,
                "reading a table's replica identity",
                "SELECT c.relreplident IN ('f', 'i') OR (c.relreplident = 'd' AND EXISTS (
                        SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
                   FROM pg_catalog.pg_class c WHERE c.oid = $1::text::regclass",
                &qualified(schema, table),
            )
            .await
        }
        Publication { name } => {
            query_bool(
                conn,
                "looking for a publication",
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)",
                name,
            )
            .await
        }
        SubscriptionEnabled { name } => {
            query_bool(conn, "looking for a subscription", &sub_query("s.subenabled"), name).await
        }
        AllTablesReady { subscription } => {
            query_bool(
                conn,
                "reading table sync states",
                &sub_query(
                    "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_subscription_rel r
                                  WHERE r.srsubid = s.oid AND r.srsubstate <> 'r')",
                ),
                subscription,
            )
            .await
        }
        SubscriptionCoversPublication { name, publisher, publication } => {
            let pc = pair.pg(*publisher);
            let published: Vec<String> = pc
                .client()
                .query(
                    "SELECT format('%I.%I', schemaname, tablename) FROM pg_catalog.pg_publication_tables
                      WHERE pubname = $1",
                    &[&publication],
                )
                .await
                .map_err(pc.query_error("listing published tables"))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let subscribed: Vec<String> = conn
                .client()
                .query(
                    &format!(
                        "SELECT format('%I.%I', n.nspname, c.relname)
                           FROM pg_catalog.pg_subscription s
                           JOIN pg_catalog.pg_subscription_rel r ON r.srsubid = s.oid
                           JOIN pg_catalog.pg_class c ON c.oid = r.srrelid
                           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                          WHERE s.subname = $1 AND {THIS_DB}"
                    ),
                    &[&name],
                )
                .await
                .map_err(conn.query_error("listing subscribed tables"))?
                .iter()
                .map(|r| r.get(0))
                .collect();
            Ok(published.iter().all(|t| subscribed.contains(t)))
        }
        SequencesCaughtUp { from } => {
            let (mine, theirs) =
                futures_util::future::join(read_sequences(conn), read_sequences(pair.pg(*from))).await;
            Ok(behind(&mine?, &theirs?).is_empty())
        }
        SubscriptionDisabled { name } => {
            query_bool(conn, "looking for a subscription", &sub_query_absent_or("NOT s.subenabled"), name).await
        }
        SubscriptionDetached { name } => {
            query_bool(
                conn,
                "looking for a subscription",
                &sub_query_absent_or("s.subslotname IS NULL"),
                name,
            )
            .await
        }
        SubscriptionAbsent { name } => {
            query_bool(conn, "looking for a subscription", &sub_query_absent_or("false"), name).await
        }
        SlotAbsent { name } => {
            query_bool(
                conn,
                "looking for a replication slot",
                "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)",
                name,
            )
            .await
        }
        PublicationAbsent { name } => {
            query_bool(
                conn,
                "looking for a publication",
                "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)",
                name,
            )
            .await
        }
        SchemaAbsent { name } => {
            query_bool(
                conn,
                "looking for a schema",
                "SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
                name,
            )
            .await
        }
    }
}

const THIS_DB: &str =
    "s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())";

/// `SELECT coalesce(<expr>, false)` for the subscription named `$1` in this database.
fn sub_query(expr: &str) -> String {
    format!(
        "SELECT coalesce((SELECT {expr} FROM pg_catalog.pg_subscription s
                           WHERE s.subname = $1 AND {THIS_DB}), false)"
    )
}

/// True when the subscription `$1` is absent, else `<expr>`.
fn sub_query_absent_or(expr: &str) -> String {
    format!(
        "SELECT coalesce((SELECT {expr} FROM pg_catalog.pg_subscription s
                           WHERE s.subname = $1 AND {THIS_DB}), true)"
    )
}

fn behind(
    to: &[super::inventory::SequenceInfo],
    from: &[super::inventory::SequenceInfo],
) -> Vec<(String, i64)> {
    let wrap = |s: &[super::inventory::SequenceInfo], node: &str| super::inventory::Inventory {
        node: node.into(),
        version_num: 0,
        version: String::new(),
        database: String::new(),
        user: String::new(),
        superuser: false,
        settings: Default::default(),
        hba_file: String::new(),
        hba_peer_rule: false,
        tables: Vec::new(),
        sequences: s.to_vec(),
        publications: Vec::new(),
        subscriptions: Vec::new(),
        slots: Vec::new(),
        role: None,
        heartbeat: false,
        fingerprint: String::new(),
    };
    sequences_behind(&wrap(to, "to"), &wrap(from, "from"))
}

async fn settings_hold(conn: &PgConn, wants: &[Want], configured_ok: bool) -> Result<bool> {
    let names: Vec<&str> = wants.iter().map(|w| w.name.as_str()).collect();
    let rows = conn
        .client()
        .query(
            "SELECT s.name, s.setting,
                    (SELECT f.setting FROM pg_catalog.pg_file_settings f
                      WHERE f.name = s.name ORDER BY f.seqno DESC LIMIT 1)
               FROM pg_catalog.pg_settings s WHERE s.name = ANY($1)",
            &[&names],
        )
        .await
        .map_err(conn.query_error("reading server settings"))?;
    let map: HashMap<String, (String, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    Ok(wants.iter().all(|w| match map.get(&w.name) {
        None => false,
        Some((current, configured)) => {
            if configured_ok {
                w.satisfied_by(configured.as_deref()) || w.satisfied_by(Some(current))
            } else {
                w.satisfied_by(Some(current))
            }
        }
    }))
}

async fn execute(pair: &mut Pair, step: &Step, observer: &dyn ApplyObserver) -> Result<()> {
    match &step.action {
        Action::Sql { statements, secret } => {
            run_sql(pair, step.side, statements, secret.as_ref()).await?;
            if let Postcondition::SubscriptionEnabled { name } = &step.postcondition {
                // Return once changes flow: the launcher starts the apply worker within
                // seconds, and the worker then attaches to its slot on the publisher.
                wait_for_flow(pair, step.side, name, Duration::from_secs(15)).await?;
            }
            Ok(())
        }
        Action::EditHba { file, block } => edit_hba(pair, step.side, file, block).await,
        Action::Restart { command } => {
            let timeout = pair.config().nodes[step.side.index()]
                .postgres
                .connect_timeout;
            let ssh = pair.ssh(step.side).await?;
            ssh.exec_checked(command).await?;
            pair.reconnect(step.side, timeout.max(Duration::from_secs(30)) * 2)
                .await
        }
        Action::CopySchema {
            from,
            drop_schemas,
            exclude_schema,
        } => copy_schema(pair, step.side, *from, drop_schemas, exclude_schema).await,
        Action::WaitForCopy {
            subscription,
            publisher,
        } => wait_for_copy(pair, step, subscription, *publisher, observer).await,
        Action::SyncSequences { from } => sync_sequences(pair, step.side, *from).await,
        Action::DropSlot { slot } => drop_slot(pair.pg(step.side), slot).await,
    }
}

async fn run_sql(
    pair: &Pair,
    side: Side,
    statements: &[String],
    secret: Option<&SecretUse>,
) -> Result<()> {
    let conn = pair.pg(side);
    for st in statements {
        let (text, quiet) = match secret {
            Some(SecretUse::RoleVerifier) if st.contains(&format!("PASSWORD '{REDACTED}'")) => {
                let pw = pair.replication_password(side)?;
                let verifier = scram::verifier(pw.expose());
                (
                    st.replace(
                        &format!("PASSWORD '{REDACTED}'"),
                        &format!("PASSWORD {}", literal(&verifier)),
                    ),
                    true,
                )
            }
            Some(SecretUse::ConnInfoPassword {
                publisher,
                conninfo,
            }) => {
                let shown = literal(&conninfo.render());
                if st.contains(&shown) {
                    let pw = pair.replication_password(*publisher)?;
                    (
                        st.replace(&shown, &literal(&conninfo.with_password(pw.expose()))),
                        true,
                    )
                } else {
                    (st.clone(), false)
                }
            }
            _ => (st.clone(), false),
        };
        if quiet {
            // Keep the statement out of the server log even if it fails.
            conn.client()
                .batch_execute("SET log_statement = 'none'; SET log_min_error_statement = 'panic'")
                .await
                .map_err(conn.query_error("quieting the statement log"))?;
        }
        let result = conn.client().simple_query(&text).await;
        if quiet {
            let _ = conn
                .client()
                .batch_execute("RESET log_statement; RESET log_min_error_statement")
                .await;
        }
        result.map_err(conn.query_error("running the step's SQL"))?;
    }
    Ok(())
}

async fn edit_hba(pair: &mut Pair, side: Side, file: &str, block: &[String]) -> Result<()> {
    let ssh = pair.ssh(side).await?;
    let current = ssh
        .exec_checked(&format!("cat -- {}", shell::quote(file)))
        .await?;
    if let Some(text) = hba::with_block(&current.stdout_str(), block) {
        let tmp = format!("{file}.fspbx-ha.tmp");
        // `cat tmp > file` keeps the file's owner and mode.
        let cmd = format!(
            "cat > {t} && cat {t} > {f} && rm -f {t}",
            t = shell::quote(&tmp),
            f = shell::quote(file)
        );
        let out = ssh.exec_with_input(&cmd, text.as_bytes()).await?;
        if !out.success() {
            return Err(Error::SshCommandFailed {
                node: pair.node_name(side).to_string(),
                command: cmd,
                status: out.status_text(),
                stderr: out.stderr_str().trim().to_string(),
            });
        }
    }
    reload(pair.pg(side)).await
}

/// `pg_reload_conf()`, then wait until the server has reread its files (`pg_conf_load_time()`
/// moves; the postmaster handles SIGHUP asynchronously).
async fn reload(conn: &PgConn) -> Result<()> {
    let load_time = "SELECT pg_catalog.pg_conf_load_time()::text";
    let before: String = conn
        .client()
        .query_one(load_time, &[])
        .await
        .map_err(conn.query_error("reading the configuration load time"))?
        .get(0);
    conn.client()
        .simple_query("SELECT pg_catalog.pg_reload_conf()")
        .await
        .map_err(conn.query_error("reloading the configuration"))?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        // A new session sees the reloaded state; ours does too after the next command.
        let now: String = conn
            .client()
            .query_one(load_time, &[])
            .await
            .map_err(conn.query_error("reading the configuration load time"))?
            .get(0);
        if now != before {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

async fn copy_schema(
    pair: &mut Pair,
    side: Side,
    from: Side,
    drop_schemas: &[String],
    exclude_schema: &str,
) -> Result<()> {
    let r = pair.config().replication.clone();
    let src_db = pair.config().nodes[from.index()].postgres.dbname.clone();
    let dst_db = pair.config().nodes[side.index()].postgres.dbname.clone();
    let conn = pair.pg(side);
    for s in drop_schemas {
        let mut sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", super::sql::ident(s));
        if s == "public" {
            sql.push_str("; CREATE SCHEMA public AUTHORIZATION pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC");
        }
        conn.client()
            .batch_execute(&sql)
            .await
            .map_err(conn.query_error("dropping a schema"))?;
    }
    let mut dump_cmd: Vec<String> = r.pg_dump_command.clone();
    dump_cmd.extend([
        "--schema-only".to_string(),
        "--no-publications".into(),
        "--no-subscriptions".into(),
        format!("--exclude-schema={exclude_schema}"),
        src_db,
    ]);
    let dump_line = shell::join(&dump_cmd);
    let dump = pair.ssh(from).await?.exec_checked(&dump_line).await?;
    let mut load_cmd = r.psql_command.clone();
    load_cmd.extend(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"].map(String::from));
    load_cmd.push(dst_db);
    let load_line = shell::join(&load_cmd);
    let out = pair
        .ssh(side)
        .await?
        .exec_with_input(&load_line, &dump.stdout)
        .await?;
    if !out.success() {
        return Err(Error::SshCommandFailed {
            node: pair.node_name(side).to_string(),
            command: load_line,
            status: out.status_text(),
            stderr: tail(&out.stderr_str(), 800),
        });
    }
    Ok(())
}

fn tail(s: &str, n: usize) -> String {
    let s = s.trim();
    if s.len() <= n {
        return s.to_string();
    }
    let mut start = s.len() - n;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

struct TableEstimate {
    rows: u64,
    bytes: u64,
}

async fn wait_for_copy(
    pair: &Pair,
    step: &Step,
    subscription: &str,
    publisher: Side,
    observer: &dyn ApplyObserver,
) -> Result<()> {
    let timeout = pair.config().replication.copy_timeout;
    let sub_conn = pair.pg(step.side);
    let pub_conn = pair.pg(publisher);
    let pub_name = match publisher {
        Side::A => &pair.config().replication.publication_a,
        Side::B => &pair.config().replication.publication_b,
    };
    let estimates: HashMap<String, TableEstimate> = pub_conn
        .client()
        .query(
            "SELECT format('%I.%I', t.schemaname, t.tablename),
                    greatest(c.reltuples, 0)::int8, pg_catalog.pg_table_size(c.oid)
               FROM pg_catalog.pg_publication_tables t
               JOIN pg_catalog.pg_namespace n ON n.nspname = t.schemaname
               JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename
              WHERE t.pubname = $1",
            &[&pub_name],
        )
        .await
        .map_err(pub_conn.query_error("estimating the published tables"))?
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                TableEstimate {
                    rows: r.get::<_, i64>(1) as u64,
                    bytes: r.get::<_, i64>(2) as u64,
                },
            )
        })
        .collect();
    let rows_total: u64 = estimates.values().map(|e| e.rows).sum();
    let bytes_total: u64 = estimates.values().map(|e| e.bytes).sum();
    let errors_at_start = sync_errors(sub_conn, subscription).await?;
    let started = Instant::now();
    let mut errors_seen_at: Option<Instant> = None;
    loop {
        let states = sub_conn
            .client()
            .query(
                &format!(
                    "SELECT format('%I.%I', n.nspname, c.relname), r.srsubstate::text
                       FROM pg_catalog.pg_subscription s
                       JOIN pg_catalog.pg_subscription_rel r ON r.srsubid = s.oid
                       JOIN pg_catalog.pg_class c ON c.oid = r.srrelid
                       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                      WHERE s.subname = $1 AND {THIS_DB}"
                ),
                &[&subscription],
            )
            .await
            .map_err(sub_conn.query_error("reading table sync states"))?;
        let running = sub_conn
            .client()
            .query(
                "SELECT coalesce(sum(tuples_processed), 0)::int8, coalesce(sum(bytes_processed), 0)::int8
                   FROM pg_catalog.pg_stat_progress_copy WHERE datname = current_database()",
                &[],
            )
            .await
            .map_err(sub_conn.query_error("reading copy progress"))?;
        let (run_rows, run_bytes): (i64, i64) = (running[0].get(0), running[0].get(1));
        let total = states.len() as u64;
        let mut done = 0u64;
        let (mut rows, mut bytes) = (run_rows.max(0) as u64, run_bytes.max(0) as u64);
        for r in &states {
            let state: String = r.get(1);
            if matches!(state.as_str(), "r" | "s" | "f") {
                if state == "r" {
                    done += 1;
                }
                if let Some(e) = estimates.get(&r.get::<_, String>(0)) {
                    rows += e.rows;
                    bytes += e.bytes;
                }
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let rate = if elapsed > 0.0 {
            rows as f64 / elapsed
        } else {
            0.0
        };
        let eta = (rate > 0.0 && rows_total > rows).then(|| (rows_total - rows) as f64 / rate);
        observer.copy_progress(&CopyProgress {
            node: step.node.clone(),
            subscription: subscription.to_string(),
            tables_done: done,
            tables_total: total,
            rows_copied: rows.min(rows_total.max(rows)),
            rows_total,
            bytes_copied: bytes,
            bytes_total,
            elapsed_s: elapsed,
            rows_per_s: rate,
            eta_s: if done == total { Some(0.0) } else { eta },
        });
        if total > 0 && done == total {
            return Ok(());
        }
        if total == 0 {
            // The subscription vanished or has no tables: the postcondition check decides.
            return Ok(());
        }
        let errors = sync_errors(sub_conn, subscription).await?;
        if errors > errors_at_start {
            let first = *errors_seen_at.get_or_insert_with(Instant::now);
            if first.elapsed() > Duration::from_secs(3) {
                let stuck: Vec<String> = states
                    .iter()
                    .filter(|r| r.get::<_, String>(1) != "r")
                    .map(|r| r.get::<_, String>(0))
                    .take(5)
                    .collect();
                return Err(Error::ReplicationTimeout {
                    node: step.node.clone(),
                    step: step.id.clone(),
                    what: format!(
                        "the initial copy ({} table-sync error(s); tables not ready: {})",
                        errors - errors_at_start,
                        stuck.join(", ")
                    ),
                    after: started.elapsed(),
                    fix: "read node's PostgreSQL log for the table-sync error (often rows that \
                          already exist on this node, or a missing table), fix it; the \
                          subscription keeps retrying and apply resumes the wait"
                        .into(),
                });
            }
        }
        if started.elapsed() > timeout {
            return Err(Error::ReplicationTimeout {
                node: step.node.clone(),
                step: step.id.clone(),
                what: format!("the initial copy ({done} of {total} tables ready)"),
                after: timeout,
                fix: "raise replication.copy_timeout for big databases and apply again; the copy \
                      goes on meanwhile"
                    .into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_flow(pair: &Pair, on: Side, subscription: &str, within: Duration) -> Result<()> {
    let started = Instant::now();
    let conn = pair.pg(on);
    let publisher = pair.pg(on.peer());
    let worker = sub_query(
        "EXISTS (SELECT 1 FROM pg_catalog.pg_stat_subscription w
                  WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL)",
    );
    let slot_sql = format!(
        "SELECT s.subslotname::text FROM pg_catalog.pg_subscription s WHERE s.subname = $1 AND {THIS_DB}"
    );
    while started.elapsed() < within {
        if query_bool(conn, "looking for the apply worker", &worker, subscription).await? {
            let slot: Option<String> = conn
                .client()
                .query_opt(&slot_sql, &[&subscription])
                .await
                .map_err(conn.query_error("reading the subscription's slot"))?
                .and_then(|r| r.get(0));
            let Some(slot) = slot else { return Ok(()) };
            let active = query_bool(
                publisher,
                "looking at the publisher's slot",
                "SELECT coalesce((SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = $1), false)",
                &slot,
            )
            .await?;
            if active {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::warn!(subscription, "the subscription is not streaming yet");
    Ok(())
}

async fn sync_errors(conn: &PgConn, subscription: &str) -> Result<i64> {
    let sql = format!(
        "SELECT coalesce((SELECT st.sync_error_count FROM pg_catalog.pg_stat_subscription_stats st
                           JOIN pg_catalog.pg_subscription s ON s.oid = st.subid
                          WHERE s.subname = $1 AND {THIS_DB}), 0)::int8"
    );
    Ok(conn
        .client()
        .query_one(&sql, &[&subscription])
        .await
        .map_err(conn.query_error("reading sync errors"))?
        .get(0))
}

async fn sync_sequences(pair: &Pair, side: Side, from: Side) -> Result<()> {
    super::catchup::move_sequences(pair, side, from, 0, false).await?;
    Ok(())
}

async fn drop_slot(conn: &PgConn, slot: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let row = conn
            .client()
            .query_opt(
                "SELECT active, active_pid FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(conn.query_error("looking for a replication slot"))?;
        let Some(row) = row else { return Ok(()) };
        let active: bool = row.get(0);
        if !active {
            conn.client()
                .execute("SELECT pg_catalog.pg_drop_replication_slot($1)", &[&slot])
                .await
                .map_err(conn.query_error("dropping a replication slot"))?;
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(10) {
            // Its subscription is disabled or gone: the walsender left is stale.
            let pid: Option<i32> = row.get(1);
            if let Some(pid) = pid {
                conn.client()
                    .execute("SELECT pg_catalog.pg_terminate_backend($1)", &[&pid])
                    .await
                    .map_err(conn.query_error("ending a stale walsender"))?;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
