//! Cloudflare API v4 against a contract-following fake (no emulator exists).

mod common;
mod fake_cloudflare;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{
    Observer, assert_cname_in_the_way, assert_secret_hidden, flip_a, flip_and_wait, ip,
    provider_suite, set_a,
};
use fake_cloudflare::FakeCloudflare;
use fspbx_ha_dns::cloudflare::{Cloudflare, CloudflareConfig};
use fspbx_ha_dns::retry::Backoff;
use fspbx_ha_dns::{DnsProvider, Error, RecordKind};
use fspbx_ha_secret::Secret;

const TOKEN: &str = "cf-test-token-0123456789abcdef";

struct FakeState<'a>(&'a FakeCloudflare);

#[async_trait]
impl Observer for FakeState<'_> {
    async fn values(&self, name: &str, kind: RecordKind) -> Vec<IpAddr> {
        self.0.values(name, kind.as_str())
    }
}

fn provider(f: &FakeCloudflare, token: &str, zone_id: Option<String>, per_page: u32) -> Cloudflare {
    Cloudflare::new(CloudflareConfig {
        zone: "example.test".into(),
        api_token: Secret::new(token),
        zone_id,
        endpoint: Some(f.endpoint()),
        per_page: Some(per_page),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_suite_passes_against_the_fake_with_one_record_per_page() {
    let f = FakeCloudflare::start(TOKEN, "example.test").await;
    let p = provider(&f, TOKEN, None, 1);
    assert!(
        !p.capabilities().atomic_cas,
        "Cloudflare CAS is read-compare-write"
    );
    provider_suite(&p, &FakeState(&f), "suite").await;
    assert_eq!(p.zone_id().await.unwrap(), f.zone_id());
    // With one record per page, reading a name holding A and AAAA needed page 2.
    let log = f.state.lock().unwrap().log.clone();
    assert!(
        log.iter().any(|(m, t, s)| m == "GET"
            && t.contains("dns_records")
            && t.contains("page=2")
            && *s == 200),
        "{log:?}"
    );
    // A single-value flip is an in-place PUT, never delete-then-create.
    assert!(log.iter().any(|(m, _, _)| m == "PUT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_is_retried_after_retry_after() {
    let f = FakeCloudflare::start(TOKEN, "example.test").await;
    let p = provider(&f, TOKEN, Some(f.zone_id()), 100);
    {
        let mut s = f.state.lock().unwrap();
        s.throttle_next = 2;
        s.retry_after = 1;
    }
    let started = Instant::now();
    p.set(&set_a("pbx.example.test", 60, "127.0.0.2"))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "two 429s with retry-after 1 s took {took:?}"
    );
    assert_eq!(f.values("pbx.example.test", "A"), vec![ip("127.0.0.2")]);
    let statuses: Vec<u16> = f
        .state
        .lock()
        .unwrap()
        .log
        .iter()
        .map(|(_, _, s)| *s)
        .collect();
    assert_eq!(&statuses[..3], &[429, 429, 200], "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_429_gives_a_throttled_error_and_writes_nothing() {
    let f = FakeCloudflare::start(TOKEN, "example.test").await;
    let p = provider(&f, TOKEN, Some(f.zone_id()), 100).with_backoff(Backoff {
        first: Duration::from_millis(10),
        max: Duration::from_millis(20),
        attempts: 3,
    });
    f.state.lock().unwrap().throttle_next = 100;
    let err = p
        .set(&set_a("pbx.example.test", 60, "127.0.0.2"))
        .await
        .unwrap_err();
    match err {
        Error::Throttled {
            attempts,
            retry_after,
            ..
        } => {
            assert_eq!(attempts, 3);
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert!(f.values("pbx.example.test", "A").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_an_auth_error_without_the_token() {
    let f = FakeCloudflare::start(TOKEN, "example.test").await;
    let wrong = "cf-wrong-token-fedcba9876543210";
    let p = provider(&f, wrong, None, 100);
    let err = p.get("pbx.example.test", RecordKind::A).await.unwrap_err();
    match &err {
        Error::AuthRejected { status, code, .. } => {
            assert_eq!(*status, 403);
            assert_eq!(code, "10000");
        }
        other => panic!("expected AuthRejected, got {other:?}"),
    }
    assert_secret_hidden(&err, wrong);
    assert!(!format!("{p:?}").contains(wrong));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_are_typed_and_leave_the_zone_unchanged() {
    let f = FakeCloudflare::start(TOKEN, "example.test").await;
    f.insert("alias.example.test", "CNAME", "server1.example.test", 60);
    f.insert("pbx.example.test", "A", "127.0.0.2", 60);
    let p = provider(&f, TOKEN, None, 100);

    // A CNAME in the way.
    assert_cname_in_the_way(&p, "alias.example.test").await;

    // A malformed (non-JSON) answer in the middle of a flip: typed error, record unchanged.
    f.state.lock().unwrap().malformed_next = true;
    let err = p
        .set(&flip_a("pbx.example.test", 60, "127.0.0.2", "127.0.0.3"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
    assert_eq!(f.values("pbx.example.test", "A"), vec![ip("127.0.0.2")]);

    // The API's own validation errors come back with code and message.
    let err = p
        .set(&set_a("pbx.example.test", 45, "127.0.0.3"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { status: 400, code, .. } if code == "9021"),
        "{err:?}"
    );
    assert_eq!(f.values("pbx.example.test", "A"), vec![ip("127.0.0.2")]);

    // Unknown zone, by name and by id.
    let other = Cloudflare::new(CloudflareConfig {
        zone: "nothere.test".into(),
        api_token: Secret::new(TOKEN),
        zone_id: None,
        endpoint: Some(f.endpoint()),
        per_page: None,
    })
    .unwrap();
    let err = other
        .get("pbx.nothere.test", RecordKind::A)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ZoneNotFound { .. }), "{err:?}");
    let bad_id = provider(&f, TOKEN, Some("0000".into()), 100);
    let err = bad_id
        .get("pbx.example.test", RecordKind::A)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ZoneNotFound { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flip_and_wait_applied() {
    let f = FakeCloudflare::start(TOKEN, "example.test").await;
    f.insert("pbx.example.test", "A", "127.0.0.2", 60);
    let p = provider(&f, TOKEN, None, 100);
    let started = Instant::now();
    flip_and_wait(&p, "pbx.example.test", 60, "127.0.0.2", "127.0.0.3").await;
    eprintln!(
        "cloudflare/fake flip latency (set -> API returns it): {:?}",
        started.elapsed()
    );
    assert_eq!(f.values("pbx.example.test", "A"), vec![ip("127.0.0.3")]);
    assert_eq!(
        f.state.lock().unwrap().records.len(),
        1,
        "flip must update in place"
    );
}
