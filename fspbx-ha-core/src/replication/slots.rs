//! Slot safety: every replication slot of both nodes, the WAL it retains, PostgreSQL's own
//! guard (`max_slot_wal_keep_size`, `wal_status`, `safe_wal_size`) and warnings when a slot is
//! inactive or retains more than `replication.slot_max_retained`.
//!
//! A publisher keeps WAL for each slot until its subscriber confirms it. A subscriber that is
//! down, or an apply worker stuck on a conflict, makes the slot retain WAL without bound.
//! [`judge_slots`] is pure; [`read_slots`] is the query around it.

use serde::Serialize;

use super::pair::Pair;
use super::plan::Side;
use crate::Result;
use crate::config::{ClusterConfig, human_bytes};
use crate::pg::PgConn;

/// What happens when `max_slot_wal_keep_size` is hit, and without it.
pub const KEEP_SIZE_EXPLAINED: &str = "max_slot_wal_keep_size caps the WAL one slot may \
retain. A slot past it becomes wal_status 'unreserved', and at the next checkpoint PostgreSQL \
invalidates it (wal_status 'lost') and frees the WAL: the subscription using it can never \
resume and must be re-created (its tables copied again or verified). With -1 (the default) \
there is no cap: an inactive or stuck slot keeps WAL until the publisher's disk fills and \
PostgreSQL stops.";

/// One replication slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotReport {
    /// Name.
    pub name: String,
    /// `logical` or `physical`.
    pub slot_type: String,
    /// A walsender uses it now.
    pub active: bool,
    /// WAL retained for it (`pg_current_wal_lsn() - restart_lsn`), in bytes.
    pub retained_bytes: Option<i64>,
    /// `reserved`, `extended`, `unreserved` or `lost`.
    pub wal_status: Option<String>,
    /// Bytes that can still be written before the slot is in danger of being invalidated
    /// (`None` with `max_slot_wal_keep_size = -1`, or once lost).
    pub safe_wal_size: Option<i64>,
    /// Since when it is inactive (PostgreSQL 17+).
    pub inactive_since: Option<String>,
    /// Why it was invalidated (PostgreSQL 17+).
    pub invalidation_reason: Option<String>,
}

/// One node's slots and its guard setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeSlots {
    /// Node name.
    pub node: String,
    /// `max_slot_wal_keep_size` as shown (`-1`, `10GB`).
    pub max_slot_wal_keep_size: String,
    /// The same in bytes (`None`: -1, unlimited).
    pub max_slot_wal_keep_bytes: Option<i64>,
    /// Its slots.
    pub slots: Vec<SlotReport>,
}

/// Both nodes' slots, the configured limit and the findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotSafety {
    /// `replication.slot_max_retained` in bytes.
    pub limit_bytes: i64,
    /// A then B.
    pub nodes: Vec<NodeSlots>,
    /// Slots that are lost (invalidated): the subscription cannot resume.
    pub critical: Vec<String>,
    /// Inactive slots, slots over the limit, unreserved slots.
    pub warnings: Vec<String>,
    /// What `max_slot_wal_keep_size` does ([`KEEP_SIZE_EXPLAINED`]).
    pub explanation: &'static str,
}

impl SlotSafety {
    /// One line per node.
    pub fn summary_lines(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| {
                let retained: i64 = n.slots.iter().filter_map(|s| s.retained_bytes).sum();
                format!(
                    "node {}: {} slot(s), {} retained (limit {} per slot), max_slot_wal_keep_size = {}",
                    n.node,
                    n.slots.len(),
                    human_bytes(retained),
                    human_bytes(self.limit_bytes),
                    n.max_slot_wal_keep_size
                )
            })
            .collect()
    }
}

/// The findings for `nodes` with a per-slot limit of `limit` bytes (pure): lost slots are
/// critical; inactive, over-the-limit and unreserved slots are warnings, with a note when no
/// `max_slot_wal_keep_size` caps them.
pub fn judge_slots(nodes: Vec<NodeSlots>, limit: i64) -> SlotSafety {
    let mut critical = Vec::new();
    let mut warnings = Vec::new();
    for n in &nodes {
        let uncapped = n.max_slot_wal_keep_bytes.is_none();
        let mut risky = false;
        for s in &n.slots {
            let retained = s.retained_bytes.map_or("?".into(), human_bytes);
            if s.wal_status.as_deref() == Some("lost") {
                critical.push(format!(
                    "node {}: slot {} was invalidated (wal_status lost{}): its subscription can \
                     never resume; re-create the subscription (`fspbx-ha replication teardown \
                     --yes` then `apply`)",
                    n.node,
                    s.name,
                    s.invalidation_reason
                        .as_deref()
                        .map(|r| format!(", {r}"))
                        .unwrap_or_default()
                ));
                continue;
            }
            if !s.active {
                risky = true;
                warnings.push(format!(
                    "node {}: slot {} is inactive{} and retains {retained} of WAL: node {} keeps \
                     that WAL until the subscriber comes back or the slot is dropped",
                    n.node,
                    s.name,
                    s.inactive_since
                        .as_deref()
                        .map(|t| format!(" since {t}"))
                        .unwrap_or_default(),
                    n.node
                ));
            }
            if s.retained_bytes.is_some_and(|b| b > limit) {
                risky = true;
                warnings.push(format!(
                    "node {}: slot {} retains {retained} of WAL, above replication.slot_max_retained \
                     ({})",
                    n.node,
                    s.name,
                    human_bytes(limit)
                ));
            }
            if s.wal_status.as_deref() == Some("unreserved") {
                warnings.push(format!(
                    "node {}: slot {} is past max_slot_wal_keep_size ({}) (wal_status \
                     unreserved): it will be invalidated at the next checkpoint unless its \
                     subscriber catches up",
                    n.node, s.name, n.max_slot_wal_keep_size
                ));
            }
        }
        if risky && uncapped {
            warnings.push(format!(
                "node {}: max_slot_wal_keep_size is -1: nothing stops these slots from filling \
                 the disk; set it (e.g. ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; SELECT \
                 pg_reload_conf()) to trade a full disk for an invalidated slot",
                n.node
            ));
        }
    }
    SlotSafety {
        limit_bytes: limit,
        nodes,
        critical,
        warnings,
        explanation: KEEP_SIZE_EXPLAINED,
    }
}

/// Reads one node's slots and `max_slot_wal_keep_size`.
pub async fn read_slots(conn: &PgConn, node: &str) -> Result<NodeSlots> {
    let c = conn.client();
    let head = c
        .query_one(
            "SELECT current_setting('server_version_num')::int4,
                    current_setting('max_slot_wal_keep_size'),
                    (SELECT CASE WHEN setting::int8 < 0 THEN NULL
                                 ELSE setting::int8 * 1024 * 1024 END
                       FROM pg_catalog.pg_settings WHERE name = 'max_slot_wal_keep_size')",
            &[],
        )
        .await
        .map_err(conn.query_error("reading max_slot_wal_keep_size"))?;
    let version: i32 = head.get(0);
    let newer = if version >= 170_000 {
        "inactive_since::text, invalidation_reason::text"
    } else {
        "NULL::text, NULL::text"
    };
    let slots = c
        .query(
            &format!(
                "SELECT slot_name::text, slot_type, active,
                        CASE WHEN restart_lsn IS NOT NULL
                             THEN pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(),
                                                             restart_lsn)::int8 END,
                        wal_status, safe_wal_size::int8, {newer}
                   FROM pg_catalog.pg_replication_slots ORDER BY 1"
            ),
            &[],
        )
        .await
        .map_err(conn.query_error("reading the replication slots"))?
        .iter()
        .map(|r| SlotReport {
            name: r.get(0),
            slot_type: r.get(1),
            active: r.get(2),
            retained_bytes: r.get(3),
            wal_status: r.get(4),
            safe_wal_size: r.get(5),
            inactive_since: r.get(6),
            invalidation_reason: r.get(7),
        })
        .collect();
    Ok(NodeSlots {
        node: node.to_string(),
        max_slot_wal_keep_size: head.get(1),
        max_slot_wal_keep_bytes: head.get(2),
        slots,
    })
}

/// The slots of every node that can be reached, each read on its own: what is left to show
/// when the pair cannot be read as a whole (a node down). That is when retained WAL matters
/// most: the survivor's slot for the missing node keeps WAL until the node returns. Nodes that
/// cannot be reached are returned with their error (`None` slots when no node answered).
pub async fn reachable_slots(config: &ClusterConfig) -> (Option<SlotSafety>, Vec<String>) {
    let opened = futures_util::future::join_all(
        config
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| super::pair::open(format!("nodes[{i}]"), n)),
    )
    .await;
    let mut nodes = Vec::new();
    let mut unreachable = Vec::new();
    for (spec, conn) in config.nodes.iter().zip(opened) {
        match conn {
            Ok(c) => match read_slots(&c.pg, &spec.name).await {
                Ok(s) => nodes.push(s),
                Err(e) => unreachable.push(e.to_string()),
            },
            Err(e) => unreachable.push(e.to_string()),
        }
    }
    if nodes.is_empty() {
        return (None, unreachable);
    }
    let limit = config.replication.slot_max_retained.bytes();
    (
        Some(judge_slots(nodes, i64::try_from(limit).unwrap_or(i64::MAX))),
        unreachable,
    )
}

/// Both nodes' slots, judged against `replication.slot_max_retained`.
pub async fn slot_safety(pair: &Pair) -> Result<SlotSafety> {
    let (a, b) = futures_util::future::join(
        read_slots(pair.pg(Side::A), pair.node_name(Side::A)),
        read_slots(pair.pg(Side::B), pair.node_name(Side::B)),
    )
    .await;
    let limit = pair.config().replication.slot_max_retained.bytes();
    Ok(judge_slots(
        vec![a?, b?],
        i64::try_from(limit).unwrap_or(i64::MAX),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(name: &str, active: bool, retained: i64, status: &str) -> SlotReport {
        SlotReport {
            name: name.into(),
            slot_type: "logical".into(),
            active,
            retained_bytes: Some(retained),
            wal_status: Some(status.into()),
            safe_wal_size: None,
            inactive_since: (!active).then(|| "2026-11-30 03:00:00+00".into()),
            invalidation_reason: (status == "lost").then(|| "wal_removed".into()),
        }
    }

    fn node(name: &str, keep: Option<i64>, slots: Vec<SlotReport>) -> NodeSlots {
        NodeSlots {
            node: name.into(),
            max_slot_wal_keep_size: keep.map_or("-1".into(), |b| format!("{}MB", b >> 20)),
            max_slot_wal_keep_bytes: keep,
            slots,
        }
    }

    #[test]
    fn healthy_slots_give_no_finding() {
        let s = judge_slots(
            vec![node(
                "a",
                None,
                vec![slot("sub_a_to_b", true, 4096, "reserved")],
            )],
            1 << 30,
        );
        assert!(s.critical.is_empty() && s.warnings.is_empty(), "{s:?}");
        assert_eq!(
            s.summary_lines(),
            [
                "node a: 1 slot(s), 4.0 kB retained (limit 1.0 GB per slot), max_slot_wal_keep_size = -1"
            ]
        );
    }

    #[test]
    fn inactive_over_limit_unreserved_and_lost_are_reported() {
        let s = judge_slots(
            vec![
                node(
                    "a",
                    None,
                    vec![slot("sub_a_to_b", false, 2 << 30, "extended")],
                ),
                node(
                    "b",
                    Some(64 << 20),
                    vec![
                        slot("sub_b_to_a", true, 70 << 20, "unreserved"),
                        slot("old", false, 0, "lost"),
                    ],
                ),
            ],
            1 << 30,
        );
        assert_eq!(s.critical.len(), 1);
        assert!(
            s.critical[0]
                .contains("node b: slot old was invalidated (wal_status lost, wal_removed)")
        );
        let w = s.warnings.join("\n");
        assert!(
            w.contains("node a: slot sub_a_to_b is inactive since 2026-11-30"),
            "{w}"
        );
        assert!(
            w.contains("retains 2.0 GB of WAL, above replication.slot_max_retained (1.0 GB)"),
            "{w}"
        );
        assert!(w.contains("node a: max_slot_wal_keep_size is -1"), "{w}");
        assert!(
            w.contains("node b: slot sub_b_to_a is past max_slot_wal_keep_size (64MB)"),
            "{w}"
        );
        assert!(!w.contains("node b: max_slot_wal_keep_size is -1"), "{w}");
        assert!(s.explanation.contains("invalidates"));
    }
}
