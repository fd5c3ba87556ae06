//! What the HTTP providers (Route53, Cloudflare) share: the client, transport errors and the
//! pause before retrying a throttled call.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::retry::Backoff;

/// The HTTP client of one provider: 15 s per request.
pub(crate) fn client(provider: &'static str, url: &str) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(transport(provider, url))
}

/// Maps a transport failure of a request to `url` into [`Error::Http`].
pub(crate) fn transport(provider: &'static str, url: &str) -> impl FnOnce(reqwest::Error) -> Error {
    let url = url.to_string();
    move |source| Error::Http {
        provider,
        url,
        source,
    }
}

/// After throttled attempt number `attempt`: sleeps as long as `backoff` says and returns
/// `Ok`, or returns [`Error::Throttled`] when the attempt budget is spent.
pub(crate) async fn pause_or_give_up(
    backoff: &Backoff,
    provider: &'static str,
    code: String,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Result<()> {
    match backoff.delay(attempt, retry_after) {
        Some(d) => {
            tracing::info!(provider, %code, attempt, delay = ?d, "throttled, retrying");
            tokio::time::sleep(d).await;
            Ok(())
        }
        None => Err(Error::Throttled {
            provider,
            code,
            attempts: attempt,
            retry_after,
        }),
    }
}
