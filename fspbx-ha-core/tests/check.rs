//! `check::run` against the real lab: two OpenSSH servers and two PostgreSQL servers.

use fspbx_ha_core::check::{self, CheckOptions, CheckReport, CheckStatus};
use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::floating::{DEFAULT_NODE_TTL, Floating};
use fspbx_ha_dns::{Change, RecordKind};
use fspbx_ha_lab::cluster_toml::write_cluster_toml;
use fspbx_ha_lab::lab::{Lab, LabOptions};
use fspbx_ha_lab::postgres::PgFlavor;

struct Fixture {
    lab: Lab,
    config: ClusterConfig,
    _dir: tempfile::TempDir,
}

fn start(edit: impl FnOnce(&mut LabOptions)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LabOptions::new(dir.path().join("lab"));
    edit(&mut options);
    let lab = Lab::start(options).unwrap();
    let path = write_cluster_toml(&lab.topology()).unwrap();
    let config = ClusterConfig::load(&path).unwrap();
    Fixture {
        lab,
        config,
        _dir: dir,
    }
}

/// Creates the three names through the provider (`dns apply`) and waits until every
/// authoritative server answers the floating record (written last, so the node records too).
async fn apply_dns(config: &ClusterConfig) -> Floating {
    let floating = Floating::new(config).unwrap();
    floating.apply(DEFAULT_NODE_TTL).await.unwrap();
    let v = floating
        .verify(None, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    assert!(v.ok, "{v:#?}");
    floating
}

fn item<'a>(r: &'a CheckReport, node: &str, check: &str) -> &'a fspbx_ha_core::check::CheckItem {
    r.find(node, check)
        .unwrap_or_else(|| panic!("no {check} for {node}:\n{}", r.render_table()))
}

#[tokio::test]
async fn a_good_pair_passes_every_check() {
    let f = start(|o| o.dns = true);
    apply_dns(&f.config).await;
    let report = check::run(&f.config, &CheckOptions::default()).await;
    assert!(report.ok(), "{}", report.render_table());
    assert_eq!(report.count(CheckStatus::Pass), report.items.len());
    for node in ["a", "b"] {
        for c in [
            "ssh",
            "ssh.to_peer",
            "postgres.connect",
            "postgres.version",
            "postgres.wal_level",
            "postgres.max_replication_slots",
            "postgres.max_wal_senders",
            "postgres.max_worker_processes",
            "postgres.track_commit_timestamp",
            "postgres.replica_identity",
            "dns.node_record",
        ] {
            assert_eq!(
                item(&report, node, c).status,
                CheckStatus::Pass,
                "{node} {c}"
            );
        }
        assert!(
            item(&report, node, "postgres.version")
                .observed
                .starts_with("PostgreSQL 17.")
        );
    }
    let fl = item(&report, "dns", "dns.floating");
    assert_eq!(fl.status, CheckStatus::Pass);
    assert!(
        fl.observed
            .contains("node a (127.0.0.2), TTL 30, at 2 server(s)"),
        "{}",
        fl.observed
    );
    // Node A is reached through the SSH tunnel, node B directly.
    assert!(
        item(&report, "a", "postgres.connect")
            .observed
            .contains("via SSH")
    );
    assert!(
        !item(&report, "b", "postgres.connect")
            .observed
            .contains("via SSH")
    );
}

#[tokio::test]
async fn postgres_15_and_wal_level_replica_fail_with_their_fixes() {
    let f = start(|o| {
        o.node_b_pg = Some(PgFlavor::Debian15);
        o.wal_level_a = Some("replica".into());
    });
    let report = check::run(&f.config, &CheckOptions::default()).await;
    assert!(!report.ok());
    let v = item(&report, "b", "postgres.version");
    assert_eq!(v.status, CheckStatus::Fail);
    assert!(v.observed.starts_with("PostgreSQL 15."), "{}", v.observed);
    assert!(
        v.fix
            .as_deref()
            .unwrap()
            .contains("origin = none needs PostgreSQL 16 or newer")
    );
    let w = item(&report, "a", "postgres.wal_level");
    assert_eq!(w.status, CheckStatus::Fail);
    assert_eq!(w.observed, "wal_level = replica");
    assert!(w.fix.as_deref().unwrap().contains("restart"));
    // Everything else still passes: failures are precise.
    let failed: Vec<_> = report
        .failures()
        .map(|i| (i.node.as_str(), i.check.as_str()))
        .collect();
    assert_eq!(
        failed,
        [("a", "postgres.wal_level"), ("b", "postgres.version")]
    );
    // This lab runs no DNS: the three names are not checked, and the report says why.
    for (node, c) in [
        ("a", "dns.node_record"),
        ("b", "dns.node_record"),
        ("dns", "dns.floating"),
    ] {
        let i = item(&report, node, c);
        assert_eq!(i.status, CheckStatus::Skip, "{node} {c}");
        assert!(
            i.observed.contains("authoritative servers are unknown"),
            "{}",
            i.observed
        );
        assert!(i.fix.as_deref().unwrap().contains("floating.nameservers"));
    }
}

#[tokio::test]
async fn missing_or_wrong_dns_records_fail_with_the_fix() {
    let mut f = start(|o| o.dns = true);
    let mut options = CheckOptions::default();
    options.peer_ssh = false;

    // The lab's zone holds both node records but no floating record yet.
    let report = check::run(&f.config, &options).await;
    assert_eq!(
        item(&report, "a", "dns.node_record").status,
        CheckStatus::Pass
    );
    assert_eq!(
        item(&report, "b", "dns.node_record").status,
        CheckStatus::Pass
    );
    let fl = item(&report, "dns", "dns.floating");
    assert_eq!(fl.status, CheckStatus::Fail);
    assert!(fl.observed.contains("NXDOMAIN"), "{}", fl.observed);
    assert!(fl.fix.as_deref().unwrap().contains("fspbx-ha dns apply"));
    assert!(!report.ok());

    // After `dns apply`, someone points node B's record elsewhere.
    let floating = apply_dns(&f.config).await;
    floating
        .provider()
        .set(&Change::set(
            "server2.example.test",
            RecordKind::A,
            300,
            vec!["127.0.0.9".parse().unwrap()],
        ))
        .await
        .unwrap();
    let report = check::run(&f.config, &options).await;
    let b = item(&report, "b", "dns.node_record");
    assert_eq!(b.status, CheckStatus::Fail);
    assert!(b.observed.contains("A [127.0.0.9]"), "{}", b.observed);
    assert!(b.fix.as_deref().unwrap().contains("fspbx-ha dns apply"));
    assert_eq!(
        item(&report, "a", "dns.node_record").status,
        CheckStatus::Pass
    );
    assert_eq!(
        item(&report, "dns", "dns.floating").status,
        CheckStatus::Pass
    );

    // `dns apply` corrects it; once both servers answer it, the check passes again.
    assert_eq!(floating.apply(DEFAULT_NODE_TTL).await.unwrap().changes, 1);
    let moved = floating
        .checker()
        .await
        .unwrap()
        .wait_for(
            "server2.example.test",
            RecordKind::A,
            &["127.0.0.3".parse().unwrap()],
            None,
            std::time::Duration::from_secs(20),
            std::time::Duration::from_millis(100),
        )
        .await
        .unwrap();
    assert!(moved.verdict.all_moved(), "{moved:#?}");
    let report = check::run(&f.config, &options).await;
    assert!(report.ok(), "{}", report.render_table());

    // Servers that do not answer are a failure that says so.
    f.config.floating.nameservers = vec!["127.0.0.53:1".into()];
    let report = check::run(&f.config, &options).await;
    let fl = item(&report, "dns", "dns.floating");
    assert_eq!(fl.status, CheckStatus::Fail);
    assert!(
        fl.observed.contains("no server answered"),
        "{}",
        fl.observed
    );
    assert!(fl.fix.as_deref().unwrap().contains("answer on UDP and TCP"));
    assert_eq!(
        item(&report, "a", "dns.node_record").status,
        CheckStatus::Fail
    );
}

#[tokio::test]
async fn low_settings_and_tables_without_identity_are_named() {
    let f = start(|o| {
        o.pg_settings_b = vec![
            ("max_wal_senders".into(), "2".into()),
            ("track_commit_timestamp".into(), "off".into()),
        ];
    });
    f.lab
        .b()
        .pg
        .psql(
            "fusionpbx",
            "CREATE TABLE public.device_phonebook (name text);
             CREATE SCHEMA \"Odd Schema\";
             CREATE TABLE \"Odd Schema\".\"Mixed Case\" (v int);
             CREATE TABLE public.v_ok (id uuid PRIMARY KEY);
             CREATE TABLE public.full_ident (v int); ALTER TABLE public.full_ident REPLICA IDENTITY FULL;",
        )
        .unwrap();
    let report = check::run(&f.config, &CheckOptions::default()).await;
    let s = item(&report, "b", "postgres.max_wal_senders");
    assert_eq!(
        (s.status, s.observed.as_str()),
        (CheckStatus::Fail, "max_wal_senders = 2")
    );
    assert_eq!(
        item(&report, "b", "postgres.track_commit_timestamp").status,
        CheckStatus::Warn
    );
    let t = item(&report, "b", "postgres.replica_identity");
    assert_eq!(t.status, CheckStatus::Fail);
    assert!(t.observed.starts_with("2 table(s)"), "{}", t.observed);
    assert!(
        t.observed.contains("\"Odd Schema\".\"Mixed Case\""),
        "{}",
        t.observed
    );
    assert!(
        t.observed.contains("public.device_phonebook"),
        "{}",
        t.observed
    );
    assert!(!t.observed.contains("v_ok") && !t.observed.contains("full_ident"));
    assert_eq!(
        item(&report, "a", "postgres.replica_identity").status,
        CheckStatus::Pass
    );
}

#[tokio::test]
async fn peer_ssh_without_an_authorized_key_fails_with_the_fix() {
    let mut f = start(|_| {});
    // Node A tries to reach B with a key B does not know.
    let stranger = f._dir.path().join("stranger");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(status.success());
    let opts = &mut f.config.nodes[0].ssh.peer_ssh_options;
    opts[1] = stranger.display().to_string();
    opts.extend(["-o".to_string(), "IdentitiesOnly=yes".to_string()]);
    let report = check::run(&f.config, &CheckOptions::default()).await;
    let a = item(&report, "a", "ssh.to_peer");
    assert_eq!(a.status, CheckStatus::Fail);
    assert!(a.observed.contains("exit 255"), "{}", a.observed);
    assert!(a.observed.contains("Permission denied"), "{}", a.observed);
    assert!(a.fix.as_deref().unwrap().contains("ssh-copy-id"));
    assert_eq!(item(&report, "b", "ssh.to_peer").status, CheckStatus::Pass);
}

#[tokio::test]
async fn an_unreachable_node_is_reported_not_an_error() {
    let mut f = start(|_| {});
    f.lab.b_mut().sshd.stop();
    f.lab.b_mut().pg.stop();
    let started = std::time::Instant::now();
    let report = check::run(&f.config, &CheckOptions::default()).await;
    assert!(!report.ok());
    assert_eq!(item(&report, "b", "ssh").status, CheckStatus::Fail);
    assert_eq!(item(&report, "b", "ssh.to_peer").status, CheckStatus::Skip);
    assert_eq!(
        item(&report, "b", "postgres.connect").status,
        CheckStatus::Fail
    );
    assert_eq!(item(&report, "a", "ssh").status, CheckStatus::Pass);
    assert_eq!(item(&report, "a", "ssh.to_peer").status, CheckStatus::Fail);
    assert_eq!(
        item(&report, "a", "postgres.version").status,
        CheckStatus::Pass
    );
    // Refused connections are retried with backoff, but bounded.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}
