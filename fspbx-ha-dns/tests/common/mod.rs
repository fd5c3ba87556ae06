//! The provider suite every DNS provider must pass, and helpers shared by the test binaries.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use fspbx_ha_dns::{Change, ChangeReceipt, DnsProvider, Error, Expected, RecordKind, RecordSet};

/// Reads a record straight from the real server (or fake), independently of the provider.
#[async_trait]
pub trait Observer: Send + Sync {
    /// The addresses the server holds for `name`/`kind` (sorted; empty when none).
    async fn values(&self, name: &str, kind: RecordKind) -> Vec<IpAddr>;
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An unguarded change of the A record `name` to the single address `to`.
pub fn set_a(name: &str, ttl: u32, to: &str) -> Change {
    Change::set(name, RecordKind::A, ttl, vec![ip(to)])
}

/// A guarded flip of the A record `name` from the single address `from` to `to`.
pub fn flip_a(name: &str, ttl: u32, from: &str, to: &str) -> Change {
    set_a(name, ttl, to).expecting(Expected::Values(vec![ip(from)]))
}

/// Flips `name` from `from` to `to` with a guard and waits (5 s at most) until the provider
/// reports it applied.
pub async fn flip_and_wait(
    p: &dyn DnsProvider,
    name: &str,
    ttl: u32,
    from: &str,
    to: &str,
) -> ChangeReceipt {
    let r = p.set(&flip_a(name, ttl, from, to)).await.unwrap();
    p.wait_applied(&r, Duration::from_secs(5)).await.unwrap();
    r
}

/// Reading the A record of `name`, where a CNAME stands, is a typed conflict naming the CNAME.
pub async fn assert_cname_in_the_way(p: &dyn DnsProvider, name: &str) {
    let err = p.get(name, RecordKind::A).await.unwrap_err();
    assert!(
        matches!(&err, Error::ConflictingRecord { found_kind, .. } if found_kind == "CNAME"),
        "{err:?}"
    );
}

/// Neither the message nor the debug form of `err` holds `secret`.
pub fn assert_secret_hidden(err: &Error, secret: &str) {
    assert!(
        !err.to_string().contains(secret),
        "the secret must not be in the error"
    );
    assert!(!format!("{err:?}").contains(secret));
}

/// Runs the generic suite against `p`, using names below `label.<zone>`.
pub async fn provider_suite(p: &dyn DnsProvider, obs: &dyn Observer, label: &str) {
    let zone = p.zone().trim_end_matches('.').to_string();
    let name = format!("{label}.{zone}");
    let kind = RecordKind::A;
    let (a, b, c) = (ip("192.0.2.10"), ip("192.0.2.20"), ip("192.0.2.30"));

    // 1. A missing record reads as None.
    assert_eq!(
        p.get(&name, kind).await.unwrap(),
        None,
        "{name} should not exist yet"
    );
    assert!(obs.values(&name, kind).await.is_empty());

    // 2. Plain set, then read back through the provider and the server.
    let receipt = p.set(&Change::set(&name, kind, 60, vec![a])).await.unwrap();
    p.wait_applied(&receipt, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        p.get(&name, kind).await.unwrap(),
        Some(RecordSet::new(&name, kind, 60, vec![a]))
    );
    assert_eq!(obs.values(&name, kind).await, vec![a]);

    // 3. CAS with the right expected value is applied.
    let r = p
        .set(&Change::set(&name, kind, 60, vec![b]).expecting(Expected::Values(vec![a])))
        .await
        .unwrap();
    p.wait_applied(&r, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        obs.values(&name, kind).await,
        vec![b],
        "CAS a->b must be on the server"
    );

    // 4. CAS with a stale expected value fails, says what is there, changes nothing.
    let err = p
        .set(&Change::set(&name, kind, 60, vec![c]).expecting(Expected::Values(vec![a])))
        .await
        .unwrap_err();
    match &err {
        Error::CasMismatch {
            expected, found, ..
        } => {
            assert_eq!(expected, &Expected::Values(vec![a]));
            assert_eq!(found.as_ref().map(|f| f.values.clone()), Some(vec![b]));
        }
        other => panic!("expected CasMismatch, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("192.0.2.20") && text.contains("192.0.2.10"),
        "{text}"
    );
    assert_eq!(
        obs.values(&name, kind).await,
        vec![b],
        "stale CAS must not change anything"
    );

    // 5. "Must be absent" on an existing record fails too.
    let err = p
        .set(&Change::set(&name, kind, 60, vec![c]).expecting(Expected::Absent))
        .await
        .unwrap_err();
    assert!(err.is_cas_mismatch(), "{err:?}");
    assert_eq!(obs.values(&name, kind).await, vec![b]);

    // 6. "Must be absent" on a new name creates it.
    let fresh = format!("{label}-new.{zone}");
    p.set(&Change::set(&fresh, kind, 120, vec![a, c]).expecting(Expected::Absent))
        .await
        .unwrap();
    assert_eq!(obs.values(&fresh, kind).await, vec![a, c]);
    assert_eq!(p.get(&fresh, kind).await.unwrap().unwrap().ttl, 120);

    // 7. Delete with a guard.
    p.set(&Change::set(&fresh, kind, 120, vec![]).expecting(Expected::Values(vec![c, a])))
        .await
        .unwrap();
    assert!(obs.values(&fresh, kind).await.is_empty());
    assert_eq!(p.get(&fresh, kind).await.unwrap(), None);

    // 8. Bad input never reaches the server.
    let err = p
        .set(&Change::set("pbx.elsewhere.invalid", kind, 60, vec![a]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NameNotInZone { .. }), "{err:?}");
    let err = p
        .set(&Change::set(&name, RecordKind::Aaaa, 60, vec![a]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ValueKindMismatch { .. }), "{err:?}");

    // 9. AAAA records work the same way.
    let v6 = ip("2001:db8::20");
    p.set(&Change::set(&name, RecordKind::Aaaa, 60, vec![v6]).expecting(Expected::Absent))
        .await
        .unwrap();
    assert_eq!(obs.values(&name, RecordKind::Aaaa).await, vec![v6]);
    assert_eq!(
        obs.values(&name, kind).await,
        vec![b],
        "AAAA must not touch A"
    );
}

/// Two flips race with the same expected value: exactly one may win, the other gets a
/// mismatch naming the winner's value, and the server holds the winner's value.
pub async fn cas_race(p: &dyn DnsProvider, obs: &dyn Observer, label: &str) {
    let zone = p.zone().trim_end_matches('.').to_string();
    let name = format!("{label}.{zone}");
    let kind = RecordKind::A;
    let old = ip("192.0.2.1");
    p.set(&Change::set(&name, kind, 60, vec![old]))
        .await
        .unwrap();
    for round in 0..5u8 {
        let current = obs.values(&name, kind).await;
        let to_x = ip(&format!("198.51.100.{}", 2 * round + 1));
        let to_y = ip(&format!("198.51.100.{}", 2 * round + 2));
        let cx =
            Change::set(&name, kind, 60, vec![to_x]).expecting(Expected::Values(current.clone()));
        let cy =
            Change::set(&name, kind, 60, vec![to_y]).expecting(Expected::Values(current.clone()));
        let (rx, ry) = tokio::join!(p.set(&cx), p.set(&cy));
        let winner = match (&rx, &ry) {
            (Ok(_), Err(e)) => {
                assert!(e.is_cas_mismatch(), "loser must get a CAS mismatch: {e:?}");
                to_x
            }
            (Err(e), Ok(_)) => {
                assert!(e.is_cas_mismatch(), "loser must get a CAS mismatch: {e:?}");
                to_y
            }
            other => panic!("round {round}: exactly one flip must win, got {other:?}"),
        };
        if let (Err(Error::CasMismatch { found, .. }), _)
        | (_, Err(Error::CasMismatch { found, .. })) = (&rx, &ry)
        {
            assert_eq!(found.as_ref().map(|f| f.values.clone()), Some(vec![winner]));
        }
        assert_eq!(obs.values(&name, kind).await, vec![winner], "round {round}");
    }
}
