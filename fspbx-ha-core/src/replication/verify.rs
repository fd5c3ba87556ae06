//! Table-by-table comparison of the two nodes: row count and an order-independent digest of
//! every row, computed by each server as it scans (an aggregate), so neither side holds a table
//! in memory however big it is.

use std::time::Instant;

use serde::Serialize;

use super::inventory::read_tables;
use super::pair::Pair;
use super::plan::Side;
use super::status;
use crate::Result;
use crate::pg::PgConn;

/// One table on both nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableComparison {
    /// `schema.table` (quoted where needed).
    pub table: String,
    /// Rows on A (`None`: the table is missing there).
    pub rows_a: Option<i64>,
    /// Rows on B.
    pub rows_b: Option<i64>,
    /// Digest on A.
    pub digest_a: Option<String>,
    /// Digest on B.
    pub digest_b: Option<String>,
    /// Same rows on both.
    pub equal: bool,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Every table, in name order.
    pub tables: Vec<TableComparison>,
    /// Tables that differ (or exist on one node only).
    pub differing: Vec<String>,
    /// Rows compared (A's count summed).
    pub rows_compared: i64,
    /// Seconds taken.
    pub elapsed_s: f64,
    /// Whether both directions' heartbeats crossed before comparing (replication caught up).
    pub caught_up: bool,
}

impl VerifyReport {
    /// No table differs.
    pub fn clean(&self) -> bool {
        self.differing.is_empty()
    }

    /// A human summary.
    pub fn render(&self) -> String {
        let mut s = format!(
            "verify: {} table(s), {} row(s) compared in {:.2} s: {}\n",
            self.tables.len(),
            self.rows_compared,
            self.elapsed_s,
            if self.clean() {
                "identical".to_string()
            } else {
                format!("{} differ", self.differing.len())
            }
        );
        for t in self.tables.iter().filter(|t| !t.equal) {
            s.push_str(&format!(
                "  DIFFERS {}: rows A={} B={}\n",
                t.table,
                t.rows_a.map_or("missing".into(), |n| n.to_string()),
                t.rows_b.map_or("missing".into(), |n| n.to_string())
            ));
        }
        s
    }
}

const SESSION: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
     SET extra_float_digits = 3; SET bytea_output = 'hex'";

async fn digest(conn: &PgConn, table: &str) -> Result<(i64, String)> {
    // Each row's text form hashed (md5, first 64 bits) and summed as numeric: order does not
    // matter, duplicates count, and the server streams the scan through the aggregate.
    let sql = format!(
        "SELECT count(*)::int8, coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::int8::numeric), 0)::text
           FROM {table} AS t"
    );
    let row = conn
        .client()
        .query_one(&sql, &[])
        .await
        .map_err(conn.query_error("digesting a table"))?;
    Ok((row.get(0), row.get(1)))
}

/// Waits for a fresh heartbeat to cross both ways (so earlier writes have been applied), then
/// compares every user table (heartbeat schema aside) on both nodes; tables that differ are
/// compared once more after another heartbeat, since writes may have been in flight.
pub async fn verify(pair: &Pair) -> Result<VerifyReport> {
    let started = Instant::now();
    let hb = pair.config().replication.heartbeat_schema.clone();
    for side in Side::BOTH {
        let c = pair.pg(side);
        c.client()
            .batch_execute(SESSION)
            .await
            .map_err(c.query_error("setting the session up"))?;
    }
    let caught_up = barrier(pair).await?;
    let (ta, tb) =
        futures_util::future::join(read_tables(pair.pg(Side::A)), read_tables(pair.pg(Side::B)))
            .await;
    let mut names: Vec<String> = ta?
        .iter()
        .chain(tb?.iter())
        .filter(|t| t.schema != hb)
        .map(|t| t.qualified())
        .collect();
    names.sort();
    names.dedup();
    let mut tables = Vec::with_capacity(names.len());
    for name in &names {
        tables.push(compare(pair, name).await?);
    }
    if tables.iter().any(|t| !t.equal) && barrier(pair).await? {
        for t in tables.iter_mut().filter(|t| !t.equal) {
            *t = compare(pair, &t.table.clone()).await?;
        }
    }
    let differing = tables
        .iter()
        .filter(|t| !t.equal)
        .map(|t| t.table.clone())
        .collect();
    let rows_compared = tables.iter().filter_map(|t| t.rows_a).sum();
    Ok(VerifyReport {
        tables,
        differing,
        rows_compared,
        elapsed_s: started.elapsed().as_secs_f64(),
        caught_up,
    })
}

async fn table_exists(conn: &PgConn, table: &str) -> Result<bool> {
    Ok(conn
        .client()
        .query_one("SELECT pg_catalog.to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(conn.query_error("looking for a table"))?
        .get(0))
}

async fn digest_if_exists(conn: &PgConn, table: &str) -> Result<Option<(i64, String)>> {
    if table_exists(conn, table).await? {
        digest(conn, table).await.map(Some)
    } else {
        Ok(None)
    }
}

async fn compare(pair: &Pair, name: &str) -> Result<TableComparison> {
    let one = |side: Side| digest_if_exists(pair.pg(side), name);
    let (a, b) = futures_util::future::join(one(Side::A), one(Side::B)).await;
    let (a, b) = (a?, b?);
    Ok(TableComparison {
        table: name.to_string(),
        rows_a: a.as_ref().map(|x| x.0),
        rows_b: b.as_ref().map(|x| x.0),
        equal: a.is_some() && a == b,
        digest_a: a.map(|x| x.1),
        digest_b: b.map(|x| x.1),
    })
}

/// True when a fresh heartbeat crossed in both directions.
async fn barrier(pair: &Pair) -> Result<bool> {
    let s = status::status(pair).await?;
    Ok(s.directions.iter().all(|d| d.heartbeat_lag_s.is_some()))
}
