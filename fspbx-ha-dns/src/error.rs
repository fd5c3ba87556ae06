//! The one error type of this crate.
//!
//! Every variant carries structured fields (provider, zone, name, what was expected and what was
//! found) so callers can react without parsing text. No variant ever holds a secret: TSIG keys,
//! AWS secret keys and Cloudflare tokens are kept in [`fspbx_ha_secret::Secret`] and never copied
//! into an error.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::record::{Change, Expected, RecordKind, RecordSet};

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while reading, changing or checking a DNS record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value in a request or in the configuration is not acceptable.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidInput {
        /// Which field (e.g. `name`, `values`, `providers.rfc2136.server`).
        field: &'static str,
        /// The offending value (never a secret).
        value: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// The record name does not belong to the zone the provider manages.
    #[error("{name} is not inside zone {zone}: use a name ending in .{zone}")]
    NameNotInZone {
        /// The record name.
        name: String,
        /// The zone.
        zone: String,
    },

    /// A value does not fit the record kind (an IPv6 address for an A record, …).
    #[error("{value} cannot be the value of a {kind} record")]
    ValueKindMismatch {
        /// The address.
        value: IpAddr,
        /// The record kind.
        kind: RecordKind,
    },

    /// The provider does not know the zone (or the credentials cannot see it).
    #[error("{provider}: zone {zone} not found{}", hint_suffix(hint))]
    ZoneNotFound {
        /// Provider name (`route53`, `cloudflare`, `rfc2136`).
        provider: &'static str,
        /// The zone asked for.
        zone: String,
        /// What to check.
        hint: Option<String>,
    },

    /// The compare-and-swap guard failed: the record is not what the caller expected. Nothing
    /// was changed.
    #[error(
        "{provider}: {name} {kind} changed under us: expected {expected}, found {}; nothing was changed",
        describe_found(found)
    )]
    CasMismatch {
        /// Provider name.
        provider: &'static str,
        /// Record name.
        name: String,
        /// Record kind.
        kind: RecordKind,
        /// What the caller expected.
        expected: Expected,
        /// What is there now (`None`: no record of this kind).
        found: Option<Box<RecordSet>>,
    },

    /// Another record type occupies the name (typically a CNAME), so an A/AAAA record cannot
    /// be read or written there.
    #[error(
        "{provider}: {name} holds a {found_kind} record, which rules out {kind}; remove it first"
    )]
    ConflictingRecord {
        /// Provider name.
        provider: &'static str,
        /// Record name.
        name: String,
        /// The kind that was asked for.
        kind: RecordKind,
        /// The record type that is in the way (e.g. `CNAME`).
        found_kind: String,
    },

    /// The DNS server rejected the TSIG key (unknown key name, wrong secret or wrong
    /// algorithm).
    #[error(
        "rfc2136: the server {server} rejected the TSIG key {key_name:?} ({detail}); check the key \
         name, secret and algorithm against the server's configuration"
    )]
    TsigRejected {
        /// The server.
        server: SocketAddr,
        /// Key name (not secret).
        key_name: String,
        /// What the server or the verifier said (response code or TSIG error).
        detail: String,
    },

    /// The DNS server refused the update for a reason other than the key.
    #[error(
        "rfc2136: the server {server} refused the update of {name} with {rcode}{}",
        hint_suffix(hint)
    )]
    UpdateRefused {
        /// The server.
        server: SocketAddr,
        /// Record name.
        name: String,
        /// The DNS response code, e.g. `NOTAUTH`, `REFUSED`, `NOTZONE`.
        rcode: String,
        /// What to check.
        hint: Option<String>,
    },

    /// The provider refused the credentials (HTTP 401/403, SignatureDoesNotMatch, …).
    #[error(
        "{provider}: credentials refused (HTTP {status}, {code}: {message}); check the key id and secret"
    )]
    AuthRejected {
        /// Provider name.
        provider: &'static str,
        /// HTTP status.
        status: u16,
        /// Provider error code, e.g. `SignatureDoesNotMatch`, `10000`.
        code: String,
        /// Provider message.
        message: String,
    },

    /// The provider answered with an error.
    #[error("{provider}: HTTP {status} {code}: {message}")]
    Api {
        /// Provider name.
        provider: &'static str,
        /// HTTP status.
        status: u16,
        /// Provider error code (`InvalidChangeBatch`, `81044`, …).
        code: String,
        /// Provider message.
        message: String,
    },

    /// The provider kept throttling us and the retry budget ran out.
    #[error("{provider}: throttled ({code}) {attempts} times in a row; try again later")]
    Throttled {
        /// Provider name.
        provider: &'static str,
        /// What the provider said (`Throttling`, `PriorRequestNotComplete`, `HTTP 429`).
        code: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last `retry-after` the provider asked for, if any.
        retry_after: Option<Duration>,
    },

    /// Something did not finish in time.
    #[error("{provider}: {what} did not finish within {after:?}")]
    Timeout {
        /// Provider name, or `propagation`.
        provider: &'static str,
        /// What was waited for.
        what: String,
        /// The limit.
        after: Duration,
    },

    /// The provider's answer could not be understood.
    #[error("{provider}: malformed response ({detail})")]
    MalformedResponse {
        /// Provider name.
        provider: &'static str,
        /// What was wrong with it.
        detail: String,
    },

    /// An HTTP request could not be sent or its answer not read.
    #[error("{provider}: request to {url} failed: {source}")]
    Http {
        /// Provider name.
        provider: &'static str,
        /// The URL (no credentials are ever in it).
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },

    /// A DNS exchange failed (network, timeout, undecodable message).
    #[error("DNS exchange with {server} failed: {detail}")]
    Dns {
        /// The server.
        server: SocketAddr,
        /// What failed.
        detail: String,
    },

    /// A DNS server answered a query with an error code.
    #[error("DNS server {server} answered {rcode} for {name}")]
    DnsRcode {
        /// The server.
        server: SocketAddr,
        /// The name asked for.
        name: String,
        /// The response code.
        rcode: String,
    },

    /// A secret reference could not be resolved.
    #[error("{field}: {source}")]
    Secret {
        /// The configuration field holding the reference.
        field: &'static str,
        /// Why it failed (names the reference, never the value).
        #[source]
        source: fspbx_ha_secret::SecretError,
    },

    /// The request could not be signed (SigV4).
    #[error("route53: could not sign the request: {detail}")]
    Signing {
        /// What the signer said (it never includes the secret).
        detail: String,
    },
}

fn hint_suffix(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!(" ({h})"),
        None => String::new(),
    }
}

fn describe_found(found: &Option<Box<RecordSet>>) -> String {
    match found {
        Some(rs) => rs.to_string(),
        None => "no record".to_string(),
    }
}

impl Error {
    /// Whether the error says the compare-and-swap guard failed (the record was not changed).
    pub fn is_cas_mismatch(&self) -> bool {
        matches!(self, Error::CasMismatch { .. })
    }

    /// The guard of the validated `change` failed at `provider`; `found` is what is there.
    pub(crate) fn cas_mismatch(
        provider: &'static str,
        change: &Change,
        found: Option<RecordSet>,
    ) -> Self {
        Error::CasMismatch {
            provider,
            name: change.name.clone(),
            kind: change.kind,
            expected: change.expect.clone().unwrap_or(Expected::Absent),
            found: found.map(Box::new),
        }
    }
}
