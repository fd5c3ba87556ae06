//! Pure evaluation: observed server facts in, check items out.

use super::{CheckItem, CheckStatus};
use crate::pg::{ServerFacts, TableRef};

/// Oldest major version with `origin = none` (loop-free bi-directional replication).
pub const MIN_MAJOR: i32 = 16;

/// Thresholds for a numeric setting: below `fail` fails, below `warn` warns.
struct Threshold {
    check: &'static str,
    setting: &'static str,
    fail_below: i64,
    warn_below: i64,
    why: &'static str,
}

const THRESHOLDS: [Threshold; 3] = [
    Threshold {
        check: "postgres.max_replication_slots",
        setting: "max_replication_slots",
        fail_below: 3,
        warn_below: 10,
        why: "one slot for the peer's subscription plus table-sync slots during the initial copy",
    },
    Threshold {
        check: "postgres.max_wal_senders",
        setting: "max_wal_senders",
        fail_below: 3,
        warn_below: 10,
        why: "one sender for the peer's apply worker plus table-sync workers",
    },
    Threshold {
        check: "postgres.max_worker_processes",
        setting: "max_worker_processes",
        fail_below: 4,
        warn_below: 8,
        why: "launcher, apply worker and table-sync workers",
    },
];

/// Version and settings checks of one node.
pub fn evaluate_server(node: &str, f: &ServerFacts) -> Vec<CheckItem> {
    let mut items = Vec::new();
    let version_ok = f.major() >= MIN_MAJOR;
    items.push(CheckItem::new(
        node,
        "postgres.version",
        if version_ok {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        format!("PostgreSQL {} ({})", f.version, f.version_num),
        format!("{MIN_MAJOR} or newer"),
        (!version_ok).then(|| {
            format!(
                "origin = none needs PostgreSQL {MIN_MAJOR} or newer: upgrade this node \
                 (FS PBX installs 17) before setting up bi-directional replication"
            )
        }),
    ));
    let wal_ok = f.wal_level == "logical";
    items.push(CheckItem::new(
        node,
        "postgres.wal_level",
        if wal_ok {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        format!("wal_level = {}", f.wal_level),
        "logical",
        (!wal_ok).then(|| {
            "ALTER SYSTEM SET wal_level = 'logical'; then restart PostgreSQL \
             (a restart is required for wal_level)"
                .to_string()
        }),
    ));
    for t in &THRESHOLDS {
        let value = match t.setting {
            "max_replication_slots" => f.max_replication_slots,
            "max_wal_senders" => f.max_wal_senders,
            _ => f.max_worker_processes,
        };
        let status = if value < t.fail_below {
            CheckStatus::Fail
        } else if value < t.warn_below {
            CheckStatus::Warn
        } else {
            CheckStatus::Pass
        };
        items.push(CheckItem::new(
            node,
            t.check,
            status,
            format!("{} = {value}", t.setting),
            format!(
                "at least {} ({} recommended; {})",
                t.fail_below, t.warn_below, t.why
            ),
            (status != CheckStatus::Pass).then(|| {
                format!(
                    "ALTER SYSTEM SET {} = {}; then restart PostgreSQL",
                    t.setting,
                    t.warn_below.max(value)
                )
            }),
        ));
    }
    items.push(CheckItem::new(
        node,
        "postgres.track_commit_timestamp",
        if f.track_commit_timestamp {
            CheckStatus::Pass
        } else {
            CheckStatus::Warn
        },
        format!(
            "track_commit_timestamp = {}",
            if f.track_commit_timestamp {
                "on"
            } else {
                "off"
            }
        ),
        "on (conflict diagnosis and origin-differs detection need commit timestamps)",
        (!f.track_commit_timestamp).then(|| {
            "ALTER SYSTEM SET track_commit_timestamp = on; then restart PostgreSQL".to_string()
        }),
    ));
    items
}

/// The replica-identity check of one node.
pub fn evaluate_tables(node: &str, tables: &[TableRef]) -> CheckItem {
    if tables.is_empty() {
        return CheckItem::new(
            node,
            "postgres.replica_identity",
            CheckStatus::Pass,
            "every table has a primary key or replica identity",
            "a primary key or replica identity on every replicated table",
            None,
        );
    }
    let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    CheckItem::new(
        node,
        "postgres.replica_identity",
        CheckStatus::Fail,
        format!(
            "{} table(s) without primary key or replica identity: {}",
            tables.len(),
            names.join(", ")
        ),
        "a primary key or replica identity on every replicated table \
         (without one, UPDATE and DELETE fail on the publisher)",
        Some(format!(
            "add a primary key, or: {}",
            names
                .iter()
                .map(|n| format!("ALTER TABLE {n} REPLICA IDENTITY FULL;"))
                .collect::<Vec<_>>()
                .join(" ")
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ServerFacts {
        ServerFacts {
            version_num: 170011,
            version: "17.11".into(),
            wal_level: "logical".into(),
            max_replication_slots: 10,
            max_wal_senders: 10,
            max_worker_processes: 16,
            track_commit_timestamp: true,
        }
    }

    fn status(items: &[CheckItem], check: &str) -> CheckStatus {
        items.iter().find(|i| i.check == check).unwrap().status
    }

    #[test]
    fn good_server_passes_everything() {
        let items = evaluate_server("a", &facts());
        assert_eq!(items.len(), 6);
        assert!(
            items
                .iter()
                .all(|i| i.status == CheckStatus::Pass && i.fix.is_none())
        );
    }

    #[test]
    fn postgres_15_fails_with_origin_message() {
        let mut f = facts();
        f.version_num = 150018;
        f.version = "15.18".into();
        let items = evaluate_server("b", &f);
        let v = items
            .iter()
            .find(|i| i.check == "postgres.version")
            .unwrap();
        assert_eq!(v.status, CheckStatus::Fail);
        assert!(
            v.fix
                .as_deref()
                .unwrap()
                .contains("origin = none needs PostgreSQL 16 or newer")
        );
    }

    #[test]
    fn wal_level_replica_fails_and_says_restart() {
        let mut f = facts();
        f.wal_level = "replica".into();
        let items = evaluate_server("a", &f);
        let w = items
            .iter()
            .find(|i| i.check == "postgres.wal_level")
            .unwrap();
        assert_eq!(w.status, CheckStatus::Fail);
        assert_eq!(w.observed, "wal_level = replica");
        assert!(w.fix.as_deref().unwrap().contains("restart"));
    }

    #[test]
    fn thresholds_warn_then_fail() {
        let mut f = facts();
        f.max_replication_slots = 5;
        f.max_wal_senders = 2;
        f.max_worker_processes = 8;
        f.track_commit_timestamp = false;
        let items = evaluate_server("a", &f);
        assert_eq!(
            status(&items, "postgres.max_replication_slots"),
            CheckStatus::Warn
        );
        assert_eq!(
            status(&items, "postgres.max_wal_senders"),
            CheckStatus::Fail
        );
        assert_eq!(
            status(&items, "postgres.max_worker_processes"),
            CheckStatus::Pass
        );
        assert_eq!(
            status(&items, "postgres.track_commit_timestamp"),
            CheckStatus::Warn
        );
    }

    #[test]
    fn tables_are_named_and_quoted() {
        let t = [
            TableRef {
                schema: "public".into(),
                name: "device_phonebook".into(),
            },
            TableRef {
                schema: "Odd Schema".into(),
                name: "x\"y".into(),
            },
        ];
        let item = evaluate_tables("a", &t);
        assert_eq!(item.status, CheckStatus::Fail);
        assert!(item.observed.contains("public.device_phonebook"));
        assert!(item.observed.contains("\"Odd Schema\".\"x\"\"y\""));
        assert!(
            item.fix
                .unwrap()
                .contains("ALTER TABLE public.device_phonebook REPLICA IDENTITY FULL;")
        );
        assert_eq!(evaluate_tables("a", &[]).status, CheckStatus::Pass);
    }
}
