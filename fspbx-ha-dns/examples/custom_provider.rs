//! Adding a DNS provider: implement `DnsProvider` for your backend and every part of fspbx-ha
//! (flips, `dns apply`, propagation checks) can use it.
//!
//! This one keeps the zone in memory (think of it as the skeleton of an API client: replace the
//! map with HTTP calls). It uses the crate's pure `cas::decide` so its compare-and-swap behaves
//! like the built-in providers, and declares `atomic_cas: true` because the mutex makes the
//! read-compare-write one step.
//!
//! Run: `cargo run -p fspbx-ha-dns --example custom_provider`

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use fspbx_ha_dns::cas::{Decision, decide};
use fspbx_ha_dns::record::fqdn;
use fspbx_ha_dns::{
    Capabilities, Change, ChangeReceipt, DnsProvider, Error, Expected, RecordKind, RecordSet,
    Result,
};

#[derive(Debug)]
struct InMemory {
    zone: String,
    records: Mutex<BTreeMap<(String, RecordKind), RecordSet>>,
}

#[async_trait]
impl DnsProvider for InMemory {
    fn name(&self) -> &'static str {
        "in-memory"
    }

    fn zone(&self) -> &str {
        &self.zone
    }

    async fn get(&self, name: &str, kind: RecordKind) -> Result<Option<RecordSet>> {
        let map = self.records.lock().unwrap_or_else(|e| e.into_inner());
        Ok(map.get(&(fqdn(name), kind)).cloned())
    }

    async fn set(&self, change: &Change) -> Result<ChangeReceipt> {
        // Always validate first: it normalizes the name and refuses names outside the zone.
        let change = change.validated(&self.zone)?;
        let key = (change.name.clone(), change.kind);
        let mut map = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let current = map.get(&key).cloned();
        match decide(&change, current.as_ref()) {
            Decision::Mismatch => {
                return Err(Error::CasMismatch {
                    provider: "in-memory",
                    name: change.name.clone(),
                    kind: change.kind,
                    expected: change.expect.clone().unwrap_or(Expected::Absent),
                    found: current.map(Box::new),
                });
            }
            Decision::AlreadyApplied => {}
            Decision::Write if change.values.is_empty() => {
                map.remove(&key);
            }
            Decision::Write => {
                let rs =
                    RecordSet::new(&change.name, change.kind, change.ttl, change.values.clone());
                map.insert(key, rs);
            }
        }
        Ok(ChangeReceipt {
            provider: "in-memory".into(),
            id: None,
            record: RecordSet::new(&change.name, change.kind, change.ttl, change.values.clone()),
            accepted_at: SystemTime::now(),
        })
    }

    async fn wait_applied(&self, _receipt: &ChangeReceipt, _timeout: Duration) -> Result<()> {
        // Applied synchronously under the lock.
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            atomic_cas: true,
            min_ttl: 1,
            change_tracking: false,
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let provider: Box<dyn DnsProvider> = Box::new(InMemory {
        zone: fqdn("example.com"),
        records: Mutex::new(BTreeMap::new()),
    });
    let name = "pbx.example.com";
    let node_a = "192.0.2.10".parse().unwrap();
    let node_b = "192.0.2.20".parse().unwrap();

    // Create the floating record only if it does not exist yet.
    provider
        .set(&Change::set(name, RecordKind::A, 60, vec![node_a]).expecting(Expected::Absent))
        .await?;
    // Fail over to node B, but only if it still points at node A.
    let receipt = provider
        .set(
            &Change::set(name, RecordKind::A, 60, vec![node_b])
                .expecting(Expected::Values(vec![node_a])),
        )
        .await?;
    provider
        .wait_applied(&receipt, Duration::from_secs(5))
        .await?;
    println!(
        "flipped: {}",
        provider
            .get(name, RecordKind::A)
            .await?
            .expect("record exists")
    );

    // A second watcher that still believes node A is active loses, and is told what won.
    let stale = provider
        .set(
            &Change::set(name, RecordKind::A, 60, vec![node_b])
                .expecting(Expected::Values(vec![node_a])),
        )
        .await;
    match stale {
        Err(e @ Error::CasMismatch { .. }) => println!("refused as expected: {e}"),
        other => panic!("a stale flip must be refused, got {other:?}"),
    }
    Ok(())
}
