//! The planner against hand-built inventories: every decision without a server.

use std::collections::BTreeMap;

use super::*;
use crate::SecretRef;
use crate::replication::inventory::{
    PublicationInfo, RoleInfo, SequenceInfo, Setting, SlotInfo, SubscriptionInfo, TableInfo,
};

fn config() -> ClusterConfig {
    let mut c = ClusterConfig::from_toml_str(&ClusterConfig::template()).unwrap();
    c.replication.password = Some(SecretRef::env("FSPBX_HA_TEST_REPL_PASSWORD"));
    c
}

fn table(schema: &str, name: &str, pk: bool, rows: bool) -> TableInfo {
    TableInfo {
        schema: schema.into(),
        name: name.into(),
        has_primary_key: pk,
        replica_identity: "d".into(),
        estimated_rows: if rows { 10.0 } else { 0.0 },
        bytes: 8192,
        has_rows: rows,
        shape: format!("shape-of-{name}"),
    }
}

fn settings(wal_level: &str) -> BTreeMap<String, Setting> {
    [
        ("wal_level", wal_level),
        ("max_replication_slots", "10"),
        ("max_wal_senders", "10"),
        ("max_worker_processes", "16"),
        ("track_commit_timestamp", "on"),
    ]
    .into_iter()
    .map(|(k, v)| {
        (
            k.to_string(),
            Setting {
                current: v.into(),
                configured: None,
            },
        )
    })
    .collect()
}

/// A node with FS PBX-like tables; `rows` says whether they hold data.
fn node(name: &str, version_num: i32, rows: bool, tables: bool) -> Inventory {
    let mut t = Vec::new();
    if tables {
        t.push(table("public", "v_extensions", true, rows));
        t.push(table("public", "jobs", true, rows));
        t.push(table("public", "device_phonebook", false, rows));
        t.push(table("Billing Data", "Call \"Detail\" Records", true, rows));
    }
    let mut inv = Inventory {
        node: name.into(),
        version_num,
        version: format!("{}.1", version_num / 10_000),
        database: "fusionpbx".into(),
        user: "fusionpbx".into(),
        superuser: true,
        settings: settings("logical"),
        hba_file: "/etc/postgresql/17/main/pg_hba.conf".into(),
        hba_peer_rule: false,
        tables: t,
        sequences: vec![SequenceInfo {
            schema: "public".into(),
            name: "jobs_id_seq".into(),
            last_value: rows.then_some(42),
            increment: 1,
            owned_by: Some("public.jobs.id".into()),
        }],
        publications: vec![],
        subscriptions: vec![],
        slots: vec![],
        role: None,
        heartbeat: false,
        fingerprint: String::new(),
    };
    inv.fingerprint = crate::replication::inventory::fingerprint_of(&inv.tables, "fspbx_ha");
    inv
}

fn ids(plan: &ReplicationPlan) -> Vec<&str> {
    plan.steps.iter().map(|s| s.id.as_str()).collect()
}

/// Both nodes as a finished setup leaves them.
fn healthy_pair(c: &ClusterConfig) -> (Inventory, Inventory) {
    let mut a = node("a", 170_011, true, true);
    let mut b = node("b", 170_011, true, true);
    for (inv, peer_ip, pubname, subname, publisher_pub, oid) in [
        (
            &mut a,
            "192.0.2.20",
            "fspbx_publication_a",
            "fspbx_subscription_b_to_a",
            "fspbx_publication_b",
            16500,
        ),
        (
            &mut b,
            "192.0.2.10",
            "fspbx_publication_b",
            "fspbx_subscription_a_to_b",
            "fspbx_publication_a",
            16600,
        ),
    ] {
        inv.hba_peer_rule = true;
        inv.heartbeat = true;
        inv.tables.iter_mut().for_each(|t| {
            if !t.has_primary_key {
                t.replica_identity = "f".into()
            }
        });
        inv.publications.push(PublicationInfo {
            name: pubname.into(),
            all_tables: true,
            operations: ["insert", "update", "delete", "truncate"]
                .map(String::from)
                .to_vec(),
            table_count: 5,
        });
        inv.subscriptions.push(SubscriptionInfo {
            name: subname.into(),
            oid,
            enabled: true,
            slot_name: Some(subname.into()),
            publications: vec![publisher_pub.into()],
            origin: Some("none".into()),
            conninfo: ConnInfo::new(peer_ip, 5432, "fusionpbx", &c.replication.role),
            streaming: "off".into(),
            table_states: [("r".to_string(), 5)].into_iter().collect(),
        });
        inv.role = Some(RoleInfo {
            name: c.replication.role.clone(),
            can_login: true,
            replication: true,
            superuser: false,
            reads_all_data: true,
            password_matches: Some(true),
        });
    }
    a.slots.push(SlotInfo {
        name: "fspbx_subscription_a_to_b".into(),
        slot_type: "logical".into(),
        plugin: Some("pgoutput".into()),
        database: Some("fusionpbx".into()),
        active: true,
        retained_bytes: Some(100),
    });
    b.slots.push(SlotInfo {
        name: "fspbx_subscription_b_to_a".into(),
        ..a.slots[0].clone()
    });
    a.fingerprint = crate::replication::inventory::fingerprint_of(&a.tables, "fspbx_ha");
    b.fingerprint = a.fingerprint.clone();
    (a, b)
}

#[test]
fn fresh_pair_gets_every_step_in_fspbx_order() {
    let c = config();
    let a = node("a", 170_011, true, true);
    let b = node("b", 170_011, false, false);
    let plan = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap();
    assert_eq!(
        ids(&plan),
        [
            "hba.a",
            "hba.b",
            "role.a",
            "role.b",
            "identity.a.public.device_phonebook",
            "schema.b",
            "identity.b.public.device_phonebook",
            "heartbeat.a",
            "heartbeat.b",
            "publication.a",
            "publication.b",
            "subscription.b",
            "copy.b",
            "sequences.b",
            "subscription.a",
        ]
    );
    assert!(
        !plan.is_destructive(),
        "B is empty: copying the schema destroys nothing"
    );
    let sub_b = plan
        .steps
        .iter()
        .find(|s| s.id == "subscription.b")
        .unwrap();
    let Action::Sql { statements, secret } = &sub_b.action else {
        panic!("{sub_b:?}")
    };
    assert_eq!(
        statements[0],
        "CREATE SUBSCRIPTION \"fspbx_subscription_a_to_b\" CONNECTION 'host=192.0.2.10 port=5432 \
         dbname=fusionpbx user=fspbx_replicator password=<redacted> application_name=fspbx-ha' \
         PUBLICATION \"fspbx_publication_a\" WITH (copy_data = true, origin = none)"
    );
    assert!(matches!(
        secret,
        Some(SecretUse::ConnInfoPassword {
            publisher: Side::A,
            ..
        })
    ));
    let sub_a = plan
        .steps
        .iter()
        .find(|s| s.id == "subscription.a")
        .unwrap();
    let Action::Sql { statements, .. } = &sub_a.action else {
        panic!()
    };
    assert!(
        statements[0].contains("host=192.0.2.20"),
        "A subscribes to B's address"
    );
    assert!(statements[0].contains("copy_data = false, origin = none"));
    let Action::EditHba { block, .. } = &plan.steps[0].action else {
        panic!()
    };
    assert!(
        block[2].contains("192.0.2.20/32"),
        "node A admits node B's address only: {block:?}"
    );
    assert!(block[2].ends_with("scram-sha-256"));
}

#[test]
fn a_healthy_pair_needs_nothing_and_is_adopted() {
    let c = config();
    let (a, b) = healthy_pair(&c);
    let plan = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap();
    assert!(plan.is_empty(), "{:#?}", plan.steps);
    assert_eq!(plan.adopted.len(), 4, "{:?}", plan.adopted);
    assert!(
        plan.adopted
            .iter()
            .any(|s| s.starts_with("subscription fspbx_subscription_a_to_b on b"))
    );
    assert!(plan.render().contains("0 step(s)"));
}

#[test]
fn fspbx_script_pair_is_adopted_with_a_note_about_its_user() {
    let c = config();
    let (mut a, mut b) = healthy_pair(&c);
    for inv in [&mut a, &mut b] {
        inv.subscriptions[0].conninfo = ConnInfo::parse(&format!(
            "host={} dbname=fusionpbx user=fusionpbx password=secret",
            if inv.node == "a" {
                "192.0.2.20"
            } else {
                "192.0.2.10"
            }
        ));
        inv.role = None; // the script never made a dedicated role
        inv.hba_peer_rule = false; // its md5 lines are not our block
    }
    let plan = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap();
    assert!(plan.is_empty(), "nothing recreated: {:?}", ids(&plan));
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("logs in as fusionpbx")),
        "{:?}",
        plan.notes
    );
    let json = serde_json::to_string(&plan).unwrap();
    assert!(!json.contains("secret"), "{json}");
    assert!(plan.render().contains("password=<redacted>"));
}

#[test]
fn postgresql_15_is_refused_naming_node_and_version() {
    let c = config();
    let a = node("a", 170_011, true, true);
    let b = node("b", 150_014, false, true);
    let err = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::ReplicationServerTooOld { ref node, needed: 16, .. } if node == "b"),
        "{err:?}"
    );
    assert!(
        text.contains("node b")
            && text.contains("PostgreSQL 15.1")
            && text.contains("origin = none"),
        "{text}"
    );
    assert!(text.contains("16 or newer"), "{text}");
}

#[test]
fn wal_level_replica_needs_consent_to_restart() {
    let c = config();
    let mut a = node("a", 170_011, true, true);
    a.settings = settings("replica");
    let b = node("b", 170_011, false, false);
    let err = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap_err();
    assert!(
        matches!(&err, Error::ReplicationRestartNeeded { node, step, .. } if node == "a" && step == "settings.a")
    );
    assert!(
        err.to_string()
            .contains("wal_level = replica (needs logical)"),
        "{err}"
    );
    assert!(err.to_string().contains("--allow-restart"), "{err}");

    let intent = Intent {
        allow_restart: true,
        ..Intent::default()
    };
    let plan = ReplicationPlan::new(&a, &b, &c, &intent).unwrap();
    assert_eq!(&ids(&plan)[..2], ["settings.a", "restart.a"]);
    let Action::Sql { statements, .. } = &plan.steps[0].action else {
        panic!()
    };
    assert_eq!(statements, &["ALTER SYSTEM SET wal_level = 'logical'"]);
    assert!(
        matches!(&plan.steps[1].action, Action::Restart { command } if command == "systemctl restart postgresql")
    );

    // Already configured, only the restart is pending.
    a.settings.get_mut("wal_level").unwrap().configured = Some("logical".into());
    let plan = ReplicationPlan::new(&a, &b, &c, &intent).unwrap();
    assert_eq!(ids(&plan)[0], "restart.a");
}

#[test]
fn a_subscription_with_origin_any_is_an_error_with_the_fix() {
    let c = config();
    let (a, mut b) = healthy_pair(&c);
    b.subscriptions[0].origin = Some("any".into());
    let err = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("node b: step subscription.b: subscription \"fspbx_subscription_a_to_b\" exists with other settings"), "{text}");
    assert!(
        text.contains("ALTER SUBSCRIPTION \"fspbx_subscription_a_to_b\" SET (origin = none)"),
        "{text}"
    );

    let (a, mut b) = healthy_pair(&c);
    b.subscriptions[0].publications = vec!["other_pub".into()];
    let text = ReplicationPlan::new(&a, &b, &c, &Intent::default())
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("publications [\"other_pub\"]") && text.contains("teardown"),
        "{text}"
    );
}

#[test]
fn a_publication_for_some_tables_is_an_error() {
    let c = config();
    let (mut a, b) = healthy_pair(&c);
    a.publications[0].all_tables = false;
    let err = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap_err();
    assert!(
        matches!(&err, Error::ReplicationObjectMismatch { node, step, .. } if node == "a" && step == "publication.a")
    );
}

#[test]
fn rows_on_b_need_the_destructive_flag() {
    let c = config();
    let a = node("a", 170_011, true, true);
    let b = node("b", 170_011, true, true);
    let err = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap_err();
    assert!(
        matches!(&err, Error::ReplicationTargetHasData { node, count: 4, .. } if node == "b"),
        "{err:?}"
    );
    assert!(err.to_string().contains("--destructive"));

    let intent = Intent {
        destructive: true,
        ..Intent::default()
    };
    let plan = ReplicationPlan::new(&a, &b, &c, &intent).unwrap();
    let t = plan
        .steps
        .iter()
        .find(|s| s.id == "truncate.b")
        .expect("truncate step");
    assert!(t.destructive && plan.is_destructive());
    let Action::Sql { statements, .. } = &t.action else {
        panic!()
    };
    assert!(
        statements[0].contains("\"Billing Data\".\"Call \"\"Detail\"\" Records\""),
        "{}",
        statements[0]
    );
    assert!(plan.render().contains("DESTRUCTIVE"));
}

#[test]
fn a_different_schema_on_b_is_replaced_only_with_consent() {
    let c = config();
    let a = node("a", 170_011, true, true);
    let mut b = node("b", 170_011, false, true);
    b.tables.push(table("legacy", "old_stuff", true, false));
    b.fingerprint = crate::replication::inventory::fingerprint_of(&b.tables, "fspbx_ha");
    let err = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("1 table(s) only on b: legacy.old_stuff"),
        "{err}"
    );

    let plan = ReplicationPlan::new(
        &a,
        &b,
        &c,
        &Intent {
            destructive: true,
            ..Intent::default()
        },
    )
    .unwrap();
    let s = plan.steps.iter().find(|s| s.id == "schema.b").unwrap();
    assert!(s.destructive);
    let Action::CopySchema {
        drop_schemas,
        exclude_schema,
        ..
    } = &s.action
    else {
        panic!()
    };
    assert_eq!(drop_schemas, &["Billing Data", "legacy", "public"]);
    assert_eq!(exclude_schema, "fspbx_ha");
}

#[test]
fn missing_role_password_is_a_config_error() {
    let mut c = config();
    c.replication.password = None;
    let a = node("a", 170_011, true, true);
    let b = node("b", 170_011, false, false);
    let err = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("replication.password:"),
        "{err}"
    );
    assert_eq!(err.family(), crate::ErrorFamily::Config);

    // FS PBX style: replicate as the nodes' own user, no dedicated role, no role steps.
    c.replication.role = "fusionpbx".into();
    let plan = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap();
    assert!(!ids(&plan).iter().any(|i| i.starts_with("role.")));
    assert!(plan.notes.iter().any(|n| n.contains("dedicated role")));
}

#[test]
fn sequences_behind_a_are_planned_after_the_copy() {
    let c = config();
    let (a, mut b) = healthy_pair(&c);
    b.sequences[0].last_value = Some(7);
    let plan = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap();
    assert_eq!(ids(&plan), ["sequences.b"]);
    assert_eq!(
        sequences_behind(&b, &a),
        [("\"public\".\"jobs_id_seq\"".to_string(), 42)]
    );
    b.sequences[0].last_value = Some(50);
    assert!(sequences_behind(&b, &a).is_empty(), "never moved down");
}

#[test]
fn teardown_of_a_healthy_pair_in_order_and_idempotent() {
    let c = config();
    let (a, b) = healthy_pair(&c);
    let plan = ReplicationPlan::teardown(&a, &b, &c);
    assert_eq!(
        ids(&plan),
        [
            "disable.a",
            "detach.a",
            "drop-subscription.a",
            "drop-slot.b.fspbx_subscription_b_to_a",
            "disable.b",
            "detach.b",
            "drop-subscription.b",
            "drop-slot.a.fspbx_subscription_a_to_b",
            "drop-publication.a",
            "drop-publication.b",
            "drop-heartbeat.a",
            "drop-heartbeat.b",
        ]
    );
    assert!(plan.steps.iter().all(|s| s.destructive));
    let empty_a = node("a", 170_011, true, true);
    let empty_b = node("b", 170_011, true, true);
    assert!(ReplicationPlan::teardown(&empty_a, &empty_b, &c).is_empty());
}

#[test]
fn orphaned_slots_are_dropped_after_a_half_done_teardown() {
    let c = config();
    let (mut a, b) = healthy_pair(&c);
    let mut b = b;
    b.subscriptions.clear(); // dropped after detaching: its slot on A stays behind
    a.slots.push(SlotInfo {
        name: "pg_16600_sync_16384_7300000000000000000".into(),
        ..a.slots[0].clone()
    });
    let plan = ReplicationPlan::teardown(&a, &b, &c);
    let drops: Vec<&str> = ids(&plan)
        .into_iter()
        .filter(|i| i.starts_with("drop-slot.a"))
        .collect();
    assert_eq!(
        drops,
        ["drop-slot.a.fspbx_subscription_a_to_b"],
        "a sync slot of an unknown oid stays"
    );
}

#[test]
fn adopting_a_pair_without_heartbeat_refreshes_both_subscriptions() {
    let c = config();
    let (mut a, mut b) = healthy_pair(&c);
    a.heartbeat = false;
    b.heartbeat = false;
    let plan = ReplicationPlan::new(&a, &b, &c, &Intent::default()).unwrap();
    assert_eq!(
        ids(&plan),
        ["heartbeat.a", "heartbeat.b", "refresh.b", "refresh.a"]
    );
    let Action::Sql { statements, .. } = &plan.steps[2].action else {
        panic!()
    };
    assert_eq!(
        statements[0],
        "ALTER SUBSCRIPTION \"fspbx_subscription_a_to_b\" REFRESH PUBLICATION WITH (copy_data = false)"
    );
}
