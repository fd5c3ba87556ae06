//! Route53 against moto's server: the generic suite on plain moto, the CAS race on moto with the
//! Route53 batch contract enforced, and SigV4 proven against moto with signatures enforced.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{
    Observer, assert_cname_in_the_way, assert_secret_hidden, cas_race, flip_and_wait, ip,
    provider_suite, set_a,
};
use fspbx_ha_dns::route53::{Route53, Route53Config};
use fspbx_ha_dns::{DnsProvider, Error, Expected, RecordKind};
use fspbx_ha_lab::moto::{Moto, MotoOptions};
use fspbx_ha_secret::{Secret, SecretRef};
use url::Url;

/// An `Authorization` header moto routes to Route53 by its credential scope; plain moto does not
/// check the signature itself.
const UNSIGNED_ROUTE53_AUTH: &str = "AWS4-HMAC-SHA256 \
     Credential=observer/20260101/us-east-1/route53/aws4_request, SignedHeaders=host, Signature=0";

/// Reads the zone with an unsigned `ListResourceRecordSets` (plain moto accepts it) and its own
/// minimal XML scan: independent of the provider's request and parsing code.
struct ListRrsets {
    endpoint: String,
    zone_id: String,
}

impl ListRrsets {
    fn new(m: &Moto, zone_id: String) -> Self {
        ListRrsets {
            endpoint: m.endpoint(),
            zone_id,
        }
    }
}

#[async_trait]
impl Observer for ListRrsets {
    async fn values(&self, name: &str, kind: RecordKind) -> Vec<IpAddr> {
        let fq = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        let body = reqwest::Client::new()
            .get(format!(
                "{}/2013-04-01/hostedzone/{}/rrset?name={fq}&type={kind}",
                self.endpoint, self.zone_id
            ))
            .header("authorization", UNSIGNED_ROUTE53_AUTH)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .text()
            .await
            .unwrap();
        let tag = |s: &str, t: &str| -> Vec<String> {
            s.split(&format!("<{t}>"))
                .skip(1)
                .map(|p| p.split(&format!("</{t}>")).next().unwrap().to_string())
                .collect()
        };
        let mut out = vec![];
        let mut sets = 0;
        for set in body.split("<ResourceRecordSet>").skip(1) {
            if tag(set, "Name").first().map(String::as_str) == Some(fq.as_str())
                && tag(set, "Type").first().map(String::as_str) == Some(kind.as_str())
            {
                sets += 1;
                out.extend(
                    tag(set, "Value")
                        .iter()
                        .map(|v| v.parse::<IpAddr>().unwrap()),
                );
            }
        }
        assert!(sets <= 1, "moto lists {sets} record sets for {fq} {kind}");
        out.sort();
        out
    }
}

/// moto's change journal (`/moto-api/data.json`, readable even when signatures are enforced):
/// every accepted change of every zone, as (action, name, values).
async fn journal(endpoint: &str) -> Vec<(String, String, Vec<String>)> {
    let body: serde_json::Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = vec![];
    for zone in body["route53"]["FakeZone"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        for c in zone["rr_changes"].as_array().cloned().unwrap_or_default() {
            let rr = &c["ResourceRecordSet"];
            let values = rr["ResourceRecords"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|v| v["Value"].as_str().unwrap_or_default().to_string())
                .collect();
            out.push((
                c["Action"].as_str().unwrap_or_default().to_string(),
                rr["Name"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_end_matches('.')
                    .to_string(),
                values,
            ));
        }
    }
    out
}

fn provider(
    m: &Moto,
    zone: &str,
    zone_id: Option<String>,
    key_id: &str,
    secret: Secret,
) -> Route53 {
    Route53::new(Route53Config {
        zone: zone.into(),
        access_key_id: key_id.into(),
        secret_access_key: secret,
        hosted_zone_id: zone_id,
        endpoint: Some(Url::parse(&m.endpoint()).unwrap()),
        region: None,
    })
    .unwrap()
    .with_poll_interval(Duration::from_millis(50))
}

fn real_key(m: &Moto) -> Secret {
    SecretRef::file(m.secret_file()).resolve().unwrap()
}

/// The provider for `example.test` with the lab's real key, finding the zone id by name.
fn lab_provider(m: &Moto) -> Route53 {
    provider(m, "example.test", None, &m.key().access_key_id, real_key(m))
}

/// moto enforcing Route53's batch contract (a DELETE must match, a CREATE must not exist).
fn strict_moto() -> Moto {
    Moto::start(MotoOptions {
        strict_route53: true,
        ..MotoOptions::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_suite_passes_against_moto() {
    let m = Moto::start(MotoOptions::default()).unwrap();
    m.create_hosted_zone("example.test.").unwrap();
    // No hosted zone id given: found by name.
    let p = lab_provider(&m);
    let zone_id = p.hosted_zone_id().await.unwrap().to_string();
    provider_suite(&p, &ListRrsets::new(&m, zone_id), "suite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_flips_exactly_one_wins_on_route53() {
    let m = strict_moto();
    let zone_id = m.create_hosted_zone("example.test.").unwrap();
    let p = lab_provider(&m);
    cas_race(&p, &ListRrsets::new(&m, zone_id), "race").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_accepted_with_the_real_key_refused_with_a_wrong_one() {
    let m = Moto::start(MotoOptions {
        enforce_auth: true,
        strict_route53: true,
        ..MotoOptions::default()
    })
    .unwrap();
    let zone_id = m.create_hosted_zone("example.test.").unwrap();
    let name = "pbx.example.test";
    let key_id = m.key().access_key_id.clone();
    let upserts_of = |j: &[(String, String, Vec<String>)], v: &str| {
        j.iter()
            .filter(|(a, n, vals)| a == "UPSERT" && n == name && vals.iter().any(|x| x == v))
            .count()
    };

    // Signed ChangeResourceRecordSets with the real key: accepted and in moto's journal.
    let good = provider(
        &m,
        "example.test",
        Some(zone_id.clone()),
        &key_id,
        real_key(&m),
    );
    let receipt = good.set(&set_a(name, 60, "127.0.0.2")).await.unwrap();
    assert!(receipt.id.is_some());
    assert_eq!(upserts_of(&journal(&m.endpoint()).await, "127.0.0.2"), 1);

    // Same key id, wrong secret: 403 SignatureDoesNotMatch, nothing written.
    let wrong_secret = "0000000000000000000000000000000000000000";
    let bad = provider(
        &m,
        "example.test",
        Some(zone_id.clone()),
        &key_id,
        Secret::new(wrong_secret),
    );
    let err = bad.set(&set_a(name, 60, "127.0.0.3")).await.unwrap_err();
    match &err {
        Error::AuthRejected { status, code, .. } => {
            assert_eq!(*status, 403);
            assert_eq!(code, "SignatureDoesNotMatch", "{err}");
        }
        other => panic!("expected AuthRejected, got {other:?}"),
    }
    assert_secret_hidden(&err, wrong_secret);

    // Unknown key id: 403 InvalidClientTokenId, nothing written.
    let unknown = provider(
        &m,
        "example.test",
        Some(zone_id.clone()),
        "AKIDNOTKNOWN000",
        real_key(&m),
    );
    let err = unknown
        .set(&set_a(name, 60, "127.0.0.4"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::AuthRejected { status: 403, code, .. } if code == "InvalidClientTokenId"),
        "{err:?}"
    );
    let j = journal(&m.endpoint()).await;
    assert_eq!(
        upserts_of(&j, "127.0.0.3"),
        0,
        "a refused request must not be applied"
    );
    assert_eq!(
        upserts_of(&j, "127.0.0.4"),
        0,
        "a refused request must not be applied"
    );

    // A second signed write with the real key still goes through.
    good.set(&set_a(name, 30, "127.0.0.5")).await.unwrap();
    assert_eq!(upserts_of(&journal(&m.endpoint()).await, "127.0.0.5"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_zone_is_a_typed_error() {
    let m = Moto::start(MotoOptions::default()).unwrap();
    m.create_hosted_zone("example.test.").unwrap();
    let p = provider(
        &m,
        "nothere.test",
        None,
        &m.key().access_key_id,
        real_key(&m),
    );
    let err = p.get("pbx.nothere.test", RecordKind::A).await.unwrap_err();
    assert!(matches!(err, Error::ZoneNotFound { .. }), "{err:?}");
    let p = provider(
        &m,
        "example.test",
        Some("ZNOSUCHZONE".into()),
        &m.key().access_key_id,
        real_key(&m),
    );
    let err = p.get("pbx.example.test", RecordKind::A).await.unwrap_err();
    assert!(matches!(err, Error::ZoneNotFound { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_flip_waits_for_insync() {
    let m = strict_moto();
    let zone_id = m.create_hosted_zone("example.test.").unwrap();
    let p = lab_provider(&m);
    let name = "pbx.example.test";
    p.set(&set_a(name, 30, "127.0.0.2").expecting(Expected::Absent))
        .await
        .unwrap();
    let started = Instant::now();
    let r = flip_and_wait(&p, name, 30, "127.0.0.2", "127.0.0.3").await;
    eprintln!(
        "route53/moto flip latency (CAS set -> INSYNC): {:?}",
        started.elapsed()
    );
    assert!(r.id.is_some());
    let obs = ListRrsets::new(&m, zone_id);
    assert_eq!(obs.values(name, RecordKind::A).await, vec![ip("127.0.0.3")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cname_in_the_way_is_a_typed_error() {
    let m = Moto::start(MotoOptions::default()).unwrap();
    let zone_id = m.create_hosted_zone("example.test.").unwrap();
    // A CNAME made outside fspbx-ha (plain moto takes an unsigned request routed by scope).
    let batch = r#"<?xml version="1.0" encoding="UTF-8"?>
<ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Changes><Change><Action>CREATE</Action><ResourceRecordSet><Name>alias.example.test.</Name><Type>CNAME</Type><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>server1.example.test.</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#;
    reqwest::Client::new()
        .post(format!(
            "{}/2013-04-01/hostedzone/{zone_id}/rrset/",
            m.endpoint()
        ))
        .header("authorization", UNSIGNED_ROUTE53_AUTH)
        .body(batch)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let p = lab_provider(&m);
    assert_cname_in_the_way(&p, "alias.example.test").await;
    // A guarded flip reads first, so it stops on the CNAME too.
    let err = p
        .set(&set_a("alias.example.test", 60, "127.0.0.2").expecting(Expected::Absent))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConflictingRecord { .. }), "{err:?}");
}
