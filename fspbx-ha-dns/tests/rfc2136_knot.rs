//! RFC 2136 + TSIG against a real Knot primary (127.0.0.53) and a secondary fed by zone
//! transfer (127.0.0.54).

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{
    Observer, assert_cname_in_the_way, assert_secret_hidden, cas_race, flip_and_wait, ip,
    provider_suite, set_a,
};
use fspbx_ha_dns::propagation::{Checker, Outcome, PropagationReport};
use fspbx_ha_dns::rfc2136::{Rfc2136, TsigAlg, TsigKey};
use fspbx_ha_dns::{DnsProvider, Error, Expected, RecordKind};
use fspbx_ha_lab::knot::{DNS_IP, DNS2_IP, Knot, KnotOptions};
use fspbx_ha_secret::{Secret, SecretRef};

struct Kdig<'a>(&'a fspbx_ha_lab::knot::KnotServer);

#[async_trait]
impl Observer for Kdig<'_> {
    async fn values(&self, name: &str, kind: RecordKind) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = tokio::task::block_in_place(|| self.0.kdig(name, kind.as_str()))
            .unwrap()
            .iter()
            .map(|l| l.parse().unwrap())
            .collect();
        v.sort();
        v
    }
}

fn knot(secondary: bool) -> Knot {
    Knot::start(KnotOptions {
        secondary,
        records: vec![
            "server1 60 A 127.0.0.2".into(),
            "server2 60 A 127.0.0.3".into(),
            "alias 60 CNAME server1".into(),
        ],
        ..KnotOptions::default()
    })
    .unwrap()
}

/// A provider for the lab zone on the primary, signing with the key `key_name`/`secret`.
fn signed(k: &Knot, key_name: &str, secret: Secret) -> Rfc2136 {
    Rfc2136::new(
        k.primary.addr(),
        k.zone(),
        Some(TsigKey {
            name: key_name.into(),
            algorithm: TsigAlg::HmacSha256,
            secret,
        }),
    )
    .unwrap()
}

/// Waits (10 s at most, asking every `poll`) until every server of `checker` answers the A
/// record `name` with `values`.
async fn served_everywhere(
    checker: &Checker,
    name: &str,
    values: &[IpAddr],
    poll: Duration,
) -> PropagationReport {
    checker
        .wait_for(
            name,
            RecordKind::A,
            values,
            None,
            Duration::from_secs(10),
            poll,
        )
        .await
        .unwrap()
}

/// A provider signing with the lab's real key.
fn provider(k: &Knot) -> Rfc2136 {
    let secret = SecretRef::file(k.key_file()).resolve().unwrap();
    signed(k, &k.key().name, secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_suite_passes_against_knot() {
    let k = knot(false);
    let p = provider(&k);
    assert!(p.capabilities().atomic_cas);
    provider_suite(&p, &Kdig(&k.primary), "suite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_flips_exactly_one_wins_on_knot() {
    let k = knot(false);
    let p = provider(&k);
    cas_race(&p, &Kdig(&k.primary), "race").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tsig_secret_or_name_is_a_clear_error_and_changes_nothing() {
    let k = knot(false);
    let obs = Kdig(&k.primary);
    let name = "server1.example.test";
    // A valid key of the right length, but not the server's.
    let wrong_secret = "c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1zZXJ2ZXJzLWtleSE=";
    for (key_name, secret) in [
        ("labkey", wrong_secret.to_string()),
        ("nosuchkey", k.key().secret.clone()),
    ] {
        let p = signed(&k, key_name, Secret::new(secret.clone()));
        let err = p.set(&set_a(name, 60, "192.0.2.66")).await.unwrap_err();
        assert!(
            matches!(&err, Error::TsigRejected { key_name: n, .. } if n == key_name),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains("rejected the TSIG key"), "{text}");
        assert_secret_hidden(&err, &secret);
        assert!(!format!("{p:?}").contains(&secret));
    }
    assert_eq!(obs.values(name, RecordKind::A).await, vec![ip("127.0.0.2")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_update_is_refused_with_a_hint() {
    let k = knot(false);
    let p = Rfc2136::new(k.primary.addr(), k.zone(), None).unwrap();
    let err = p
        .set(&set_a("server1.example.test", 60, "192.0.2.66"))
        .await
        .unwrap_err();
    match &err {
        Error::UpdateRefused { rcode, hint, .. } => {
            assert_eq!(rcode, "NOTAUTH", "{err}");
            assert!(hint.as_deref().unwrap().contains("TSIG"), "{err}");
        }
        other => panic!("expected UpdateRefused, got {other:?}"),
    }
    assert_eq!(
        Kdig(&k.primary)
            .values("server1.example.test", RecordKind::A)
            .await,
        vec![ip("127.0.0.2")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_not_served_and_cname_in_the_way_are_typed() {
    let k = knot(false);
    let p = Rfc2136::new(k.primary.addr(), "other.test", None).unwrap();
    let err = p.get("pbx.other.test", RecordKind::A).await.unwrap_err();
    assert!(matches!(err, Error::ZoneNotFound { .. }), "{err:?}");

    let p = provider(&k);
    assert_cname_in_the_way(&p, "alias.example.test").await;
    // Knot would silently ignore an A beside the CNAME; the update must fail instead.
    let err = p
        .set(&set_a("alias.example.test", 60, "127.0.0.66"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConflictingRecord { .. }), "{err:?}");
    assert_eq!(
        k.primary.kdig("alias.example.test", "CNAME").unwrap(),
        vec!["server1.example.test."]
    );
    let answer = k.primary.kdig("alias.example.test", "A").unwrap();
    assert!(!answer.contains(&"127.0.0.66".to_string()), "{answer:?}");

    // A server that does not answer: a typed error, quickly.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let p = Rfc2136::new(silent.local_addr().unwrap(), "example.test", None)
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = p.get("pbx.example.test", RecordKind::A).await.unwrap_err();
    assert!(
        matches!(err, Error::Timeout { .. } | Error::Dns { .. }),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flip_propagates_to_primary_and_secondary() {
    let k = knot(true);
    let p = provider(&k);
    let servers = k.servers();
    assert_eq!(servers.len(), 2);
    let checker = Checker::new(k.zone(), servers.clone()).unwrap();
    let name = "pbx.example.test";

    // Floating record on node A, visible on both servers.
    p.set(&set_a(name, 30, "127.0.0.2").expecting(Expected::Absent))
        .await
        .unwrap();
    let first = served_everywhere(
        &checker,
        name,
        &[ip("127.0.0.2")],
        Duration::from_millis(20),
    )
    .await;
    assert!(first.verdict.all_moved(), "{first:?}");

    // Flip to node B and time until every authoritative server answers it.
    let started = Instant::now();
    flip_and_wait(&p, name, 30, "127.0.0.2", "127.0.0.3").await;
    let report = served_everywhere(
        &checker,
        name,
        &[ip("127.0.0.3")],
        Duration::from_millis(10),
    )
    .await;
    let flip = started.elapsed();
    eprintln!("rfc2136/knot flip latency (set -> primary+secondary answer): {flip:?}");
    assert!(report.verdict.all_moved(), "{report:?}");
    assert_eq!(report.answers.len(), 2);
    let serials: Vec<_> = report
        .answers
        .iter()
        .map(|a| a.soa_serial.unwrap())
        .collect();
    assert_eq!(
        serials[0], serials[1],
        "both servers must serve the same zone version"
    );
    assert!(serials[0] >= 3, "two updates bump the serial: {serials:?}");
    for a in &report.answers {
        assert_eq!(
            a.outcome,
            Outcome::Records {
                ttl: 30,
                values: vec![ip("127.0.0.3")]
            }
        );
    }
    assert!(report.servers_moved_at.is_some());

    // A stopped secondary is reported as unreachable, never as moved.
    let mut k = k;
    k.secondary.as_mut().unwrap().stop();
    let answers = checker.ask(name, RecordKind::A).await.unwrap();
    let v = fspbx_ha_dns::propagation::verdict(&[ip("127.0.0.3")], &answers);
    assert!(!v.all_moved());
    assert_eq!(v.unreachable, vec![servers[1]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_value_nobody_serves_reports_laggards_and_old_ttl() {
    let k = knot(true);
    let checker = Checker::new(k.zone(), k.servers())
        .unwrap()
        .with_timeout(Duration::from_millis(500));
    let report = checker
        .wait_for(
            "server1.example.test",
            RecordKind::A,
            &[ip("127.0.0.9")],
            None,
            Duration::from_millis(300),
            Duration::from_millis(50),
        )
        .await
        .unwrap();
    assert!(!report.verdict.all_moved());
    assert_eq!(report.verdict.lagging.len(), 2);
    assert_eq!(report.old_ttl, Some(60));
    assert_eq!(report.clients_moved_by, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovers_authoritative_servers_from_ns_records() {
    let k = knot(true);
    let checker = Checker::discover(k.zone(), k.primary.addr(), k.primary.addr().port())
        .await
        .unwrap();
    let ips: Vec<IpAddr> = checker.servers().iter().map(|s| s.ip()).collect();
    assert_eq!(ips, vec![DNS_IP, DNS2_IP]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_apply_plan_creates_and_corrects_the_three_names_from_config() {
    // server2 is wrong in the zone, the floating record is missing.
    let k = Knot::start(KnotOptions {
        secondary: true,
        records: vec![
            "server1 300 A 127.0.0.2".into(),
            "server2 300 A 127.0.0.99".into(),
        ],
        ..KnotOptions::default()
    })
    .unwrap();
    let cfg: fspbx_ha_dns::ProviderConfig = serde_json::from_value(serde_json::json!({
        "kind": "rfc2136",
        "server": k.primary.addr().to_string(),
        "key_name": k.key().name,
        "key_secret": format!("file:{}", k.key_file().display()),
    }))
    .unwrap();
    let p = cfg.build(k.zone()).unwrap();
    use fspbx_ha_dns::plan::{self, Action, NodeRecord};
    let (a_ips, b_ips) = ([ip("127.0.0.2")], [ip("127.0.0.3")]);
    let a = NodeRecord {
        node: "a",
        hostname: "server1.example.test",
        addresses: &a_ips,
    };
    let b = NodeRecord {
        node: "b",
        hostname: "server2.example.test",
        addresses: &b_ips,
    };
    let desired = plan::desired_records(&a, &b, "pbx.example.test", 30, &a, 300);
    let current = plan::read_current(p.as_ref(), &desired).await.unwrap();
    let steps = plan::plan(&desired, &current);
    let actions: Vec<&Action> = steps.iter().map(|s| &s.action).collect();
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Unchanged, Action::Update { .. }, Action::Create]
        ),
        "{actions:?}"
    );

    // Before apply, the authoritative servers disagree with the plan for two records.
    let checker = Checker::new(k.zone(), k.servers()).unwrap();
    let before = plan::check_at_servers(&checker, &desired).await.unwrap();
    assert_eq!(before.iter().filter(|c| c.verdict.all_moved()).count(), 1);

    let receipts = plan::apply(p.as_ref(), &steps).await.unwrap();
    assert_eq!(receipts.len(), 2);
    // Re-planning finds nothing to do, and both servers now answer every record.
    let current = plan::read_current(p.as_ref(), &desired).await.unwrap();
    assert!(
        plan::plan(&desired, &current)
            .iter()
            .all(|s| s.action == Action::Unchanged)
    );
    served_everywhere(
        &checker,
        "pbx.example.test",
        &a_ips,
        Duration::from_millis(20),
    )
    .await;
    let after = plan::check_at_servers(&checker, &desired).await.unwrap();
    assert!(after.iter().all(|c| c.verdict.all_moved()), "{after:?}");
    assert_eq!(
        k.primary.kdig("server2.example.test", "A").unwrap(),
        vec!["127.0.0.3"]
    );

    // A plan that went stale (someone changed server2 since) stops with a CAS mismatch.
    p.set(&set_a("server2.example.test", 300, "127.0.0.77"))
        .await
        .unwrap();
    let stale = plan::plan(
        &desired,
        &[
            None,
            Some(fspbx_ha_dns::RecordSet::new(
                "server2.example.test",
                RecordKind::A,
                300,
                vec![ip("127.0.0.98")],
            )),
            None,
        ],
    );
    let err = plan::apply(p.as_ref(), &stale[1..2]).await.unwrap_err();
    assert!(err.is_cas_mismatch(), "{err:?}");
    assert_eq!(
        k.primary.kdig("server2.example.test", "A").unwrap(),
        vec!["127.0.0.77"]
    );
}
