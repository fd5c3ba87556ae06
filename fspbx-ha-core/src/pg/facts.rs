//! What the checks read from a node's PostgreSQL: version, replication settings and tables that
//! logical replication cannot handle.

use serde::Serialize;

use super::PgConn;
use crate::Result;

/// Server version and the settings bi-directional logical replication depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerFacts {
    /// `server_version_num`, e.g. 170011.
    pub version_num: i32,
    /// `server_version`, e.g. `17.11`.
    pub version: String,
    /// `wal_level`.
    pub wal_level: String,
    /// `max_replication_slots`.
    pub max_replication_slots: i64,
    /// `max_wal_senders`.
    pub max_wal_senders: i64,
    /// `max_worker_processes`.
    pub max_worker_processes: i64,
    /// `track_commit_timestamp`.
    pub track_commit_timestamp: bool,
}

impl ServerFacts {
    /// The major version (17 for 170011).
    pub fn major(&self) -> i32 {
        self.version_num / 10_000
    }
}

/// A schema-qualified table name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRef {
    /// Schema.
    pub schema: String,
    /// Table.
    pub name: String,
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}",
            quote_ident(&self.schema),
            quote_ident(&self.name)
        )
    }
}

/// Quotes an SQL identifier when it needs quoting (upper case, spaces, quotes, keywords-ish).
pub(crate) fn quote_ident(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// Reads version and replication settings.
pub async fn server_facts(conn: &PgConn) -> Result<ServerFacts> {
    let rows = conn
        .client()
        .query(
            "SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY($1)",
            &[&vec![
                "server_version_num",
                "server_version",
                "wal_level",
                "max_replication_slots",
                "max_wal_senders",
                "max_worker_processes",
                "track_commit_timestamp",
            ]],
        )
        .await
        .map_err(conn.query_error("reading server settings"))?;
    let get = |name: &str| -> String {
        rows.iter()
            .find(|r| r.get::<_, &str>(0) == name)
            .map(|r| r.get::<_, String>(1))
            .unwrap_or_default()
    };
    let int = |name: &str| get(name).parse::<i64>().unwrap_or(0);
    Ok(ServerFacts {
        version_num: int("server_version_num") as i32,
        version: get("server_version"),
        wal_level: get("wal_level"),
        max_replication_slots: int("max_replication_slots"),
        max_wal_senders: int("max_wal_senders"),
        max_worker_processes: int("max_worker_processes"),
        track_commit_timestamp: get("track_commit_timestamp") == "on",
    })
}

/// Ordinary and partitioned tables outside the system schemas that have neither a primary key
/// nor a usable replica identity: UPDATE and DELETE on them fail on a publisher.
pub async fn tables_without_identity(conn: &PgConn) -> Result<Vec<TableRef>> {
    let rows = conn
        .client()
        .query(
            "SELECT n.nspname, c.relname
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p')
                AND NOT c.relispartition
                AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_%'
                AND (c.relreplident = 'n'
                     OR (c.relreplident = 'd' AND NOT EXISTS (
                           SELECT 1 FROM pg_catalog.pg_index i
                            WHERE i.indrelid = c.oid AND i.indisprimary)))
              ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(conn.query_error("listing tables without a primary key"))?;
    Ok(rows
        .iter()
        .map(|r| TableRef {
            schema: r.get(0),
            name: r.get(1),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_when_needed() {
        assert_eq!(quote_ident("v_users"), "v_users");
        assert_eq!(quote_ident("CamelCase"), "\"CamelCase\"");
        assert_eq!(quote_ident("with space"), "\"with space\"");
        assert_eq!(quote_ident("quo\"te"), "\"quo\"\"te\"");
        assert_eq!(quote_ident("1abc"), "\"1abc\"");
    }
}
