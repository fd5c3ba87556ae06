//! What introspection finds on one node: pure, serializable data, and the queries that fill it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::sql::{ConnInfo, literal, qualified};
use crate::Result;
use crate::pg::PgConn;

/// Settings logical replication depends on (`pg_settings` names).
pub const SETTING_NAMES: &[&str] = &[
    "wal_level",
    "max_replication_slots",
    "max_wal_senders",
    "max_worker_processes",
    "max_logical_replication_workers",
    "max_sync_workers_per_subscription",
    "track_commit_timestamp",
    "max_slot_wal_keep_size",
];

/// One server setting: what runs now and what the configuration files say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    /// The value in effect.
    pub current: String,
    /// The value in the configuration files (`postgresql.conf`, `postgresql.auto.conf`) when it
    /// differs from the value in effect (a restart or reload is pending).
    pub configured: Option<String>,
}

/// A user table as logical replication sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableInfo {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Has a primary key.
    pub has_primary_key: bool,
    /// `relreplident`: `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: String,
    /// Planner estimate of its rows (`reltuples`; -1 when never analyzed).
    pub estimated_rows: f64,
    /// Size on disk in bytes (`pg_table_size`).
    pub bytes: i64,
    /// Holds at least one row.
    pub has_rows: bool,
    /// Digest of its shape: columns with types and NOT NULL, primary key columns, replica
    /// identity. Equal on both nodes when the table is the same.
    pub shape: String,
}

impl TableInfo {
    /// `"schema"."name"`.
    pub fn qualified(&self) -> String {
        qualified(&self.schema, &self.name)
    }

    /// UPDATE and DELETE can be published: a primary key, or replica identity FULL/INDEX.
    pub fn replicable(&self) -> bool {
        match self.replica_identity.as_str() {
            "f" | "i" => true,
            "d" => self.has_primary_key,
            _ => false,
        }
    }
}

/// A sequence and its last value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceInfo {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// `last_value`, or `None` when never used.
    pub last_value: Option<i64>,
    /// Increment.
    pub increment: i64,
    /// The column owning it (`schema.table.column`), e.g. a bigserial id.
    pub owned_by: Option<String>,
}

impl SequenceInfo {
    /// `"schema"."name"`.
    pub fn qualified(&self) -> String {
        qualified(&self.schema, &self.name)
    }
}

/// A publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicationInfo {
    /// Name.
    pub name: String,
    /// `FOR ALL TABLES`.
    pub all_tables: bool,
    /// Published operations, e.g. `["insert","update","delete","truncate"]`.
    pub operations: Vec<String>,
    /// Tables it publishes now.
    pub table_count: i64,
}

/// A subscription in this node's database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    /// Name.
    pub name: String,
    /// `oid` (tablesync slots are named after it).
    pub oid: i64,
    /// Enabled.
    pub enabled: bool,
    /// Its slot on the publisher, or `None` after `SET (slot_name = NONE)`.
    pub slot_name: Option<String>,
    /// Publications it subscribes to.
    pub publications: Vec<String>,
    /// `origin` (PostgreSQL 16+): `none` or `any`.
    pub origin: Option<String>,
    /// Where it connects (password redacted).
    pub conninfo: ConnInfo,
    /// Streaming of large transactions: `off`, `on` or `parallel`.
    pub streaming: String,
    /// Tables per sync state (`i` init, `d` data copy, `f` finished copy, `s` synchronized,
    /// `r` ready).
    pub table_states: BTreeMap<String, i64>,
}

impl SubscriptionInfo {
    /// Tables of the subscription.
    pub fn tables_total(&self) -> i64 {
        self.table_states.values().sum()
    }

    /// Tables in state `r`.
    pub fn tables_ready(&self) -> i64 {
        self.table_states.get("r").copied().unwrap_or(0)
    }
}

/// A replication slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    /// Name.
    pub name: String,
    /// `logical` or `physical`.
    pub slot_type: String,
    /// Output plugin (`pgoutput`).
    pub plugin: Option<String>,
    /// Database of a logical slot.
    pub database: Option<String>,
    /// A walsender uses it now.
    pub active: bool,
    /// WAL bytes kept for it (`pg_current_wal_lsn() - restart_lsn`).
    pub retained_bytes: Option<i64>,
}

/// The replication role on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleInfo {
    /// Name.
    pub name: String,
    /// `LOGIN`.
    pub can_login: bool,
    /// `REPLICATION`.
    pub replication: bool,
    /// `SUPERUSER`.
    pub superuser: bool,
    /// Member of `pg_read_all_data` (may read every table for the initial copy).
    pub reads_all_data: bool,
    /// Its stored password is a verifier of the configured one (`None`: not checked).
    pub password_matches: Option<bool>,
}

/// Everything the plan needs to know about one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// Node name.
    pub node: String,
    /// `server_version_num`.
    pub version_num: i32,
    /// `server_version`.
    pub version: String,
    /// The database (`fusionpbx`).
    pub database: String,
    /// The role we are connected as.
    pub user: String,
    /// That role is a superuser (needed for `FOR ALL TABLES` and subscriptions).
    pub superuser: bool,
    /// Settings of [`SETTING_NAMES`].
    pub settings: BTreeMap<String, Setting>,
    /// `hba_file`.
    pub hba_file: String,
    /// pg_hba.conf (as read by `pg_hba_file_rules`) holds the rule for the peer.
    pub hba_peer_rule: bool,
    /// User tables (ordinary and partitioned roots), by schema and name.
    pub tables: Vec<TableInfo>,
    /// Sequences.
    pub sequences: Vec<SequenceInfo>,
    /// Publications.
    pub publications: Vec<PublicationInfo>,
    /// Subscriptions of this database.
    pub subscriptions: Vec<SubscriptionInfo>,
    /// Replication slots.
    pub slots: Vec<SlotInfo>,
    /// The replication role, if it exists.
    pub role: Option<RoleInfo>,
    /// The heartbeat table exists.
    pub heartbeat: bool,
    /// Digest of every table's shape (heartbeat schema excluded): equal on both nodes when the
    /// schemas match.
    pub fingerprint: String,
}

impl Inventory {
    /// The major version (17 for 170011).
    pub fn major(&self) -> i32 {
        self.version_num / 10_000
    }

    /// A setting's value in effect.
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).map(|s| s.current.as_str())
    }

    /// The publication called `name`.
    pub fn publication(&self, name: &str) -> Option<&PublicationInfo> {
        self.publications.iter().find(|p| p.name == name)
    }

    /// The subscription called `name`.
    pub fn subscription(&self, name: &str) -> Option<&SubscriptionInfo> {
        self.subscriptions.iter().find(|s| s.name == name)
    }

    /// The slot called `name`.
    pub fn slot(&self, name: &str) -> Option<&SlotInfo> {
        self.slots.iter().find(|s| s.name == name)
    }

    /// Tables outside the heartbeat schema.
    pub fn user_tables<'a>(
        &'a self,
        heartbeat_schema: &'a str,
    ) -> impl Iterator<Item = &'a TableInfo> {
        self.tables
            .iter()
            .filter(move |t| t.schema != heartbeat_schema)
    }
}

/// What [`collect`] needs beyond the connection.
#[derive(Debug, Clone)]
pub struct InventoryRequest<'a> {
    /// Node name.
    pub node: &'a str,
    /// The replication role to look up.
    pub role: &'a str,
    /// Its configured password, to check the stored verifier (never kept).
    pub role_password: Option<&'a str>,
    /// The heartbeat schema (left out of the fingerprint).
    pub heartbeat_schema: &'a str,
    /// The peer's address and the method, to find its pg_hba rule.
    pub peer: Option<IpAddr>,
    /// pg_hba method.
    pub hba_method: &'a str,
}

const USER_TABLES: &str =
    "c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence = 'p'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')";

/// Reads a node's inventory.
pub async fn collect(conn: &PgConn, req: &InventoryRequest<'_>) -> Result<Inventory> {
    let c = conn.client();
    let head = c
        .query_one(
            "SELECT current_setting('server_version_num')::int4, current_setting('server_version'),
                    current_database()::text, current_user::text,
                    (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user),
                    current_setting('hba_file')",
            &[],
        )
        .await
        .map_err(conn.query_error("reading the server version"))?;
    let version_num: i32 = head.get(0);
    let superuser: bool = head.get(4);

    let mut settings = BTreeMap::new();
    let names: Vec<&str> = SETTING_NAMES.to_vec();
    for r in c
        .query(
            "SELECT s.name, s.setting,
                    (SELECT f.setting FROM pg_catalog.pg_file_settings f
                      WHERE f.name = s.name ORDER BY f.seqno DESC LIMIT 1)
               FROM pg_catalog.pg_settings s WHERE s.name = ANY($1)",
            &[&names],
        )
        .await
        .map_err(conn.query_error("reading server settings"))?
    {
        let current: String = r.get(1);
        let configured: Option<String> = r.get(2);
        settings.insert(
            r.get::<_, String>(0),
            Setting {
                configured: configured.filter(|v| !same_setting(v, &current)),
                current,
            },
        );
    }

    let tables = read_tables(conn).await?;
    let fingerprint = fingerprint_of(&tables, req.heartbeat_schema);
    let sequences = read_sequences(conn).await?;

    let publications = c
        .query(
            "SELECT p.pubname::text, p.puballtables,
                    array_remove(ARRAY[CASE WHEN p.pubinsert THEN 'insert' END,
                                       CASE WHEN p.pubupdate THEN 'update' END,
                                       CASE WHEN p.pubdelete THEN 'delete' END,
                                       CASE WHEN p.pubtruncate THEN 'truncate' END], NULL),
                    (SELECT count(*) FROM pg_catalog.pg_publication_tables t
                      WHERE t.pubname = p.pubname)
               FROM pg_catalog.pg_publication p ORDER BY 1",
            &[],
        )
        .await
        .map_err(conn.query_error("listing publications"))?
        .iter()
        .map(|r| PublicationInfo {
            name: r.get(0),
            all_tables: r.get(1),
            operations: r.get(2),
            table_count: r.get(3),
        })
        .collect();

    let subscriptions = read_subscriptions(conn, version_num).await?;

    let slots = c
        .query(
            "SELECT slot_name::text, slot_type, plugin::text, database::text, active,
                    CASE WHEN restart_lsn IS NOT NULL
                         THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(),
                                                         restart_lsn)::int8 END
               FROM pg_catalog.pg_replication_slots ORDER BY 1",
            &[],
        )
        .await
        .map_err(conn.query_error("listing replication slots"))?
        .iter()
        .map(|r| SlotInfo {
            name: r.get(0),
            slot_type: r.get(1),
            plugin: r.get(2),
            database: r.get(3),
            active: r.get(4),
            retained_bytes: r.get(5),
        })
        .collect();

    let role = if superuser {
        read_role(conn, req.role, req.role_password).await?
    } else {
        None
    };

    let heartbeat: bool = c
        .query_one(
            "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
            &[&qualified(req.heartbeat_schema, "heartbeat")],
        )
        .await
        .map_err(conn.query_error("looking for the heartbeat table"))?
        .get(0);

    let hba_peer_rule = match req.peer {
        Some(peer) if superuser => {
            hba_has_rule(
                conn,
                &head.get::<_, String>(2),
                req.role,
                peer,
                req.hba_method,
            )
            .await?
        }
        _ => false,
    };

    Ok(Inventory {
        node: req.node.to_string(),
        version_num,
        version: head.get(1),
        database: head.get(2),
        user: head.get(3),
        superuser,
        settings,
        hba_file: head.get(5),
        hba_peer_rule,
        tables,
        sequences,
        publications,
        subscriptions,
        slots,
        role,
        heartbeat,
        fingerprint,
    })
}

/// Values PostgreSQL shows differently from how they are written (`on`/`true`).
fn same_setting(a: &str, b: &str) -> bool {
    let norm = |s: &str| match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => "on".to_string(),
        "false" | "no" | "0" => "off".to_string(),
        other => other.to_string(),
    };
    norm(a) == norm(b)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest of the tables' shapes outside `except_schema`.
pub(crate) fn fingerprint_of(tables: &[TableInfo], except_schema: &str) -> String {
    let mut lines: Vec<String> = tables
        .iter()
        .filter(|t| t.schema != except_schema)
        .map(|t| format!("{}\t{}\t{}", t.schema, t.name, t.shape))
        .collect();
    lines.sort();
    hex(&Sha256::digest(lines.join("\n").as_bytes()))
}

/// Sequences with their last values.
pub(crate) async fn read_sequences(conn: &PgConn) -> Result<Vec<SequenceInfo>> {
    Ok(conn
        .client()
        .query(
            "SELECT s.schemaname::text, s.sequencename::text, s.last_value, s.increment_by,
                    (SELECT format('%s.%s.%s', tn.nspname, t.relname, a.attname)
                       FROM pg_catalog.pg_depend d
                       JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
                       JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
                       JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
                      WHERE d.classid = 'pg_catalog.pg_class'::regclass
                        AND d.objid = format('%I.%I', s.schemaname, s.sequencename)::regclass
                        AND d.deptype IN ('a', 'i') LIMIT 1)
               FROM pg_catalog.pg_sequences s
              WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
              ORDER BY 1, 2",
            &[],
        )
        .await
        .map_err(conn.query_error("listing sequences"))?
        .iter()
        .map(|r| SequenceInfo {
            schema: r.get(0),
            name: r.get(1),
            last_value: r.get(2),
            increment: r.get(3),
            owned_by: r.get(4),
        })
        .collect())
}

/// User tables with their shapes and whether they hold rows.
pub(crate) async fn read_tables(conn: &PgConn) -> Result<Vec<TableInfo>> {
    let sql = format!(
        "SELECT n.nspname::text, c.relname::text,
                EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
                c.relreplident::text, c.reltuples::float8, pg_catalog.pg_table_size(c.oid),
                md5(concat_ws('|', c.relreplident::text,
                  (SELECT string_agg(format('%s:%s:%s', a.attname,
                                            pg_catalog.format_type(a.atttypid, a.atttypmod),
                                            a.attnotnull), ',' ORDER BY a.attnum)
                     FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
                  (SELECT string_agg(a.attname, ',' ORDER BY a.attname)
                     FROM pg_catalog.pg_index i
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                    WHERE i.indrelid = c.oid AND i.indisprimary)))
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_TABLES}
          ORDER BY 1, 2"
    );
    let rows = conn
        .client()
        .query(&sql, &[])
        .await
        .map_err(conn.query_error("listing tables"))?;
    let mut tables: Vec<TableInfo> = rows
        .iter()
        .map(|r| TableInfo {
            schema: r.get(0),
            name: r.get(1),
            has_primary_key: r.get(2),
            replica_identity: r.get(3),
            estimated_rows: r.get(4),
            bytes: r.get(5),
            has_rows: false,
            shape: r.get(6),
        })
        .collect();
    // Which tables hold rows: one EXISTS per table, in batches of 200.
    for chunk in tables.chunks_mut(200) {
        let probes: Vec<String> = chunk
            .iter()
            .map(|t| format!("EXISTS (SELECT 1 FROM {})", t.qualified()))
            .collect();
        let row = conn
            .client()
            .query_one(&format!("SELECT ARRAY[{}]::bool[]", probes.join(", ")), &[])
            .await
            .map_err(conn.query_error("looking for rows"))?;
        let flags: Vec<bool> = row.get(0);
        for (t, f) in chunk.iter_mut().zip(flags) {
            t.has_rows = f;
        }
    }
    Ok(tables)
}

async fn read_subscriptions(conn: &PgConn, version_num: i32) -> Result<Vec<SubscriptionInfo>> {
    let origin = if version_num >= 160_000 {
        "s.suborigin::text"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT s.oid::int8, s.subname::text, s.subenabled, s.subslotname::text,
                s.subpublications::text[], s.subconninfo, s.substream::text, {origin}
           FROM pg_catalog.pg_subscription s
          WHERE s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
          ORDER BY 2"
    );
    let rows = conn
        .client()
        .query(&sql, &[])
        .await
        .map_err(conn.query_error("listing subscriptions"))?;
    let states = conn
        .client()
        .query(
            "SELECT srsubid::int8, srsubstate::text, count(*)
               FROM pg_catalog.pg_subscription_rel GROUP BY 1, 2",
            &[],
        )
        .await
        .map_err(conn.query_error("reading subscription table states"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let oid: i64 = r.get(0);
            let conninfo: String = r.get(5);
            let stream: String = r.get(6);
            SubscriptionInfo {
                name: r.get(1),
                oid,
                enabled: r.get(2),
                slot_name: r.get(3),
                publications: r.get(4),
                origin: r.get(7),
                conninfo: ConnInfo::parse(&conninfo),
                streaming: match stream.as_str() {
                    "t" | "true" => "on".into(),
                    "f" | "false" => "off".into(),
                    "p" => "parallel".into(),
                    other => other.to_string(),
                },
                table_states: states
                    .iter()
                    .filter(|s| s.get::<_, i64>(0) == oid)
                    .map(|s| (s.get::<_, String>(1), s.get::<_, i64>(2)))
                    .collect(),
            }
        })
        .collect())
}

/// The replication role, and whether its password matches `password`.
pub(crate) async fn read_role(
    conn: &PgConn,
    role: &str,
    password: Option<&str>,
) -> Result<Option<RoleInfo>> {
    let row = conn
        .client()
        .query_opt(
            "SELECT rolcanlogin, rolreplication, rolsuper,
                    pg_catalog.pg_has_role(oid, 'pg_read_all_data', 'MEMBER'), rolpassword
               FROM pg_catalog.pg_authid WHERE rolname = $1",
            &[&role],
        )
        .await
        .map_err(conn.query_error("reading the replication role"))?;
    Ok(row.map(|r| {
        let stored: Option<String> = r.get(4);
        RoleInfo {
            name: role.to_string(),
            can_login: r.get(0),
            replication: r.get(1),
            superuser: r.get(2),
            reads_all_data: r.get(3),
            password_matches: password.map(|pw| {
                stored
                    .as_deref()
                    .is_some_and(|s| super::scram::matches(s, pw))
            }),
        }
    }))
}

/// Whether pg_hba.conf (as the server parses it from disk) has a rule admitting exactly `peer`
/// to `db` as `role` with `method`.
pub(crate) async fn hba_has_rule(
    conn: &PgConn,
    db: &str,
    role: &str,
    peer: IpAddr,
    method: &str,
) -> Result<bool> {
    let mask = if peer.is_ipv4() {
        "255.255.255.255"
    } else {
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    };
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_hba_file_rules
                         WHERE type = 'host' AND error IS NULL
                           AND database = ARRAY[{}] AND user_name = ARRAY[{}]
                           AND address = {} AND netmask = {} AND auth_method = {})",
        literal(db),
        literal(role),
        literal(&peer.to_string()),
        literal(mask),
        literal(method)
    );
    Ok(conn
        .client()
        .query_one(&sql, &[])
        .await
        .map_err(conn.query_error("reading pg_hba_file_rules"))?
        .get(0))
}

/// A column of a table, as drift compares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDetail {
    /// Name.
    pub name: String,
    /// Type with modifiers (`character varying(255)`).
    pub data_type: String,
    /// `NOT NULL`.
    pub not_null: bool,
}

/// A table's shape in detail: what logical replication matches on (columns by name and type),
/// its keys, its replica identity and whether the node's publication publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDetail {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Columns in their order.
    pub columns: Vec<ColumnDetail>,
    /// Primary key columns in key order (empty: none).
    pub primary_key: Vec<String>,
    /// Other unique indexes, each as `col1,col2` (sorted).
    pub unique_keys: Vec<String>,
    /// `default`, `nothing`, `full` or `index (col,…)`.
    pub replica_identity: String,
    /// In the node's publication (`None`: the publication does not exist).
    pub published: Option<bool>,
}

impl TableDetail {
    /// `"schema"."name"`.
    pub fn qualified(&self) -> String {
        qualified(&self.schema, &self.name)
    }
}

/// Every user table of a node in detail ([`TableDetail`]), for the schema drift report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaSnapshot {
    /// Node name.
    pub node: String,
    /// The node's publication.
    pub publication: String,
    /// It exists.
    pub publication_exists: bool,
    /// Tables by schema and name.
    pub tables: Vec<TableDetail>,
}

/// Reads a node's tables in detail, `except_schema` (the heartbeat's) left out; `publication`
/// is the node's own publication.
pub async fn read_schema(
    conn: &PgConn,
    node: &str,
    publication: &str,
    except_schema: &str,
) -> Result<SchemaSnapshot> {
    let c = conn.client();
    let publication_exists: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)",
            &[&publication],
        )
        .await
        .map_err(conn.query_error("looking for the publication"))?
        .get(0);
    let sql = format!(
        "WITH pub AS MATERIALIZED (SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables
                                    WHERE pubname = $1)
         SELECT n.nspname::text, c.relname::text,
                coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{{}}'),
                coalesce((SELECT array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
                            FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{{}}'),
                coalesce((SELECT array_agg(a.attnotnull ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '{{}}'),
                coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                            FROM pg_catalog.pg_index i
                            CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                            JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                           WHERE i.indrelid = c.oid AND i.indisprimary), '{{}}'),
                coalesce((SELECT array_agg(u.cols ORDER BY u.cols) FROM (
                            SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) AS cols
                              FROM pg_catalog.pg_index i
                              CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                              JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                             WHERE i.indrelid = c.oid AND i.indisunique AND NOT i.indisprimary
                             GROUP BY i.indexrelid) u), '{{}}'),
                CASE c.relreplident WHEN 'd' THEN 'default' WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full'
                  ELSE 'index (' || coalesce((SELECT string_agg(a.attname::text, ',' ORDER BY k.ord)
                            FROM pg_catalog.pg_index i
                            CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                            JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                           WHERE i.indrelid = c.oid AND i.indisreplident), '?') || ')' END,
                EXISTS (SELECT 1 FROM pub WHERE pub.schemaname = n.nspname AND pub.tablename = c.relname)
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_TABLES} AND n.nspname <> $2
          ORDER BY 1, 2"
    );
    let rows = c
        .query(&sql, &[&publication, &except_schema])
        .await
        .map_err(conn.query_error("reading table columns and keys"))?;
    let tables = rows
        .iter()
        .map(|r| {
            let names: Vec<String> = r.get(2);
            let types: Vec<String> = r.get(3);
            let not_null: Vec<bool> = r.get(4);
            TableDetail {
                schema: r.get(0),
                name: r.get(1),
                columns: names
                    .into_iter()
                    .zip(types)
                    .zip(not_null)
                    .map(|((name, data_type), not_null)| ColumnDetail {
                        name,
                        data_type,
                        not_null,
                    })
                    .collect(),
                primary_key: r.get(5),
                unique_keys: r.get(6),
                replica_identity: r.get(7),
                published: publication_exists.then(|| r.get(8)),
            }
        })
        .collect();
    Ok(SchemaSnapshot {
        node: node.to_string(),
        publication: publication.to_string(),
        publication_exists,
        tables,
    })
}
