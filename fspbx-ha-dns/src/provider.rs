//! The provider trait every DNS backend implements, and the read-back wait of the providers
//! that have no change status.

use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::record::{Capabilities, Change, ChangeReceipt, RecordKind, RecordSet};

/// A DNS backend that can read and change the records of one zone.
///
/// Implementations: [`crate::rfc2136::Rfc2136`], [`crate::route53::Route53`],
/// [`crate::cloudflare::Cloudflare`]. See `examples/custom_provider.rs` for adding one.
/// `Debug` is required so providers show up in logs; implementations must keep credentials out
/// of it.
#[async_trait]
pub trait DnsProvider: Send + Sync + std::fmt::Debug {
    /// Short provider name used in errors and output (`route53`, `cloudflare`, `rfc2136`).
    fn name(&self) -> &'static str;

    /// The zone this provider manages, as a fully qualified name (`example.com.`).
    fn zone(&self) -> &str;

    /// Reads the record set of `name` and `kind`; `None` when there is none.
    async fn get(&self, name: &str, kind: RecordKind) -> Result<Option<RecordSet>>;

    /// Writes `change`. With `change.expect` set, the write happens only if the record is
    /// currently what is expected; otherwise [`crate::Error::CasMismatch`] says what is there and
    /// nothing is changed.
    async fn set(&self, change: &Change) -> Result<ChangeReceipt>;

    /// Waits until the provider reports the change as applied on its side (Route53 INSYNC; the
    /// primary serving it for RFC 2136; the API returning it for Cloudflare). This does not
    /// check other resolvers: see [`crate::propagation`].
    async fn wait_applied(&self, receipt: &ChangeReceipt, timeout: Duration) -> Result<()>;

    /// What this provider can promise.
    fn capabilities(&self) -> Capabilities;
}

/// Reads the record of `receipt` with `read` every `interval` until it holds the receipt's
/// values; after `timeout`, [`Error::Timeout`] says `what` was awaited.
pub(crate) async fn wait_until_read_back<F, Fut>(
    provider: &'static str,
    receipt: &ChangeReceipt,
    timeout: Duration,
    interval: Duration,
    what: impl FnOnce() -> String,
    read: F,
) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<RecordSet>>>,
{
    let start = Instant::now();
    loop {
        let now = read().await?;
        if now.map(|r| r.values).unwrap_or_default() == receipt.record.values {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout {
                provider,
                what: what(),
                after: timeout,
            });
        }
        tokio::time::sleep(interval).await;
    }
}
