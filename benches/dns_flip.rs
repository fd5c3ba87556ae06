//! DNS flip latency in the lab: a compare-and-swap flip of the floating record until every
//! authoritative server answers the new value (RFC 2136: Knot primary alone, and primary +
//! secondary fed by NOTIFY/IXFR), and until Route53 reports the change INSYNC (moto; it has no
//! name servers to ask). Loopback, 2 cores: compare as ratios between commits.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fspbx_ha::dns::propagation::Checker;
use fspbx_ha::dns::rfc2136::{Rfc2136, TsigAlg, TsigKey};
use fspbx_ha::dns::route53::{Route53, Route53Config};
use fspbx_ha::dns::{Change, DnsProvider, Expected, RecordKind, Url};
use fspbx_ha::secret::{Secret, SecretRef};
use fspbx_ha_lab::knot::{Knot, KnotOptions};
use fspbx_ha_lab::moto::{Moto, MotoOptions};

const NAME: &str = "pbx.example.test";

fn ips() -> [IpAddr; 2] {
    ["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()]
}

/// Flips `iters` times between the two nodes; each flip counts until `settled` returns.
async fn flips<F, Fut>(p: &dyn DnsProvider, iters: u64, mut settled: F) -> Duration
where
    F: FnMut(IpAddr) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let [a, b] = ips();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let from = p.get(NAME, RecordKind::A).await.unwrap().unwrap().values[0];
        let to = if from == a { b } else { a };
        let start = Instant::now();
        let change =
            Change::set(NAME, RecordKind::A, 30, vec![to]).expecting(Expected::Values(vec![from]));
        let r = p.set(&change).await.unwrap();
        p.wait_applied(&r, Duration::from_secs(10)).await.unwrap();
        settled(to).await;
        total += start.elapsed();
    }
    total
}

fn knot(c: &mut Criterion, secondary: bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let k = Knot::start(KnotOptions {
        secondary,
        ..KnotOptions::default()
    })
    .expect("lab knot");
    let key = TsigKey {
        name: k.key().name.clone(),
        algorithm: TsigAlg::HmacSha256,
        secret: SecretRef::file(k.key_file()).resolve().unwrap(),
    };
    let p = Rfc2136::new(k.primary.addr(), k.zone(), Some(key)).unwrap();
    let checker = Checker::new(k.zone(), k.servers()).unwrap();
    rt.block_on(p.set(&Change::set(NAME, RecordKind::A, 30, vec![ips()[0]])))
        .unwrap();
    let id = if secondary {
        "dns_flip/rfc2136_knot_primary_and_secondary"
    } else {
        "dns_flip/rfc2136_knot_primary"
    };
    c.bench_function(id, |bch| {
        bch.iter_custom(|iters| {
            rt.block_on(flips(&p, iters, |to| {
                let checker = checker.clone();
                async move {
                    let rep = checker
                        .wait_for(
                            NAME,
                            RecordKind::A,
                            &[to],
                            None,
                            Duration::from_secs(10),
                            Duration::from_millis(5),
                        )
                        .await
                        .unwrap();
                    assert!(rep.verdict.all_moved());
                }
            }))
        })
    });
}

fn rfc2136_primary(c: &mut Criterion) {
    knot(c, false);
}

fn rfc2136_secondary(c: &mut Criterion) {
    knot(c, true);
}

fn route53(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let m = Moto::start(MotoOptions {
        strict_route53: true,
        ..MotoOptions::default()
    })
    .expect("lab moto");
    m.create_hosted_zone("example.test.").unwrap();
    let p = Route53::new(Route53Config {
        zone: "example.test".into(),
        access_key_id: m.key().access_key_id.clone(),
        secret_access_key: Secret::new(m.key().secret_access_key.clone()),
        hosted_zone_id: None,
        endpoint: Some(Url::parse(&m.endpoint()).unwrap()),
        region: None,
    })
    .unwrap()
    .with_poll_interval(Duration::from_millis(20));
    rt.block_on(p.set(&Change::set(NAME, RecordKind::A, 30, vec![ips()[0]])))
        .unwrap();
    c.bench_function("dns_flip/route53_moto_until_insync", |b| {
        b.iter_custom(|iters| rt.block_on(flips(&p, iters, |_| async {})))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(5));
    targets = rfc2136_primary, rfc2136_secondary, route53
}
criterion_main!(benches);
