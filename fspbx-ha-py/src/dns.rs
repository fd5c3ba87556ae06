//! DNS for Python: the providers `Route53`, `Cloudflare` and `Rfc2136` (one base class
//! `DnsProvider`), compare-and-swap flips, propagation checks at the authoritative servers, and
//! `Floating`, the cluster's floating and node records from its configuration. All logic is in
//! `fspbx_ha_dns` and `fspbx_ha_core::floating`; records and reports cross as dicts (JSON).
//!
//! ```text
//! FspbxHaError
//! └── DnsError                 (.provider)
//!     ├── DnsCasMismatchError  (.found: the record set there now, or None)
//!     ├── DnsAuthError         (credentials or TSIG key refused)
//!     ├── DnsZoneNotFoundError
//!     ├── DnsThrottledError
//!     ├── DnsTimeoutError
//!     └── DnsInputError        (bad name, value, TTL or configuration)
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use fspbx_ha_core::floating::{DEFAULT_NODE_TTL, FlipOptions, Floating};
use fspbx_ha_dns::cloudflare::{Cloudflare, CloudflareConfig};
use fspbx_ha_dns::propagation::Checker;
use fspbx_ha_dns::rfc2136::{Rfc2136, TsigAlg, TsigKey};
use fspbx_ha_dns::route53::{Route53, Route53Config};
use fspbx_ha_dns::{Change, ChangeReceipt, DnsProvider, Error, Expected, RecordKind, Url};
use fspbx_ha_secret::Secret;
use pyo3::create_exception;
use pyo3::prelude::*;
use serde::Serialize;

use crate::config::PyClusterConfig;
use crate::convert::{as_py, from_py};
use crate::errors::FspbxHaError;
use crate::runtime::block_on;

create_exception!(
    _native,
    DnsError,
    FspbxHaError,
    "DNS provider or DNS server error."
);
create_exception!(
    _native,
    DnsCasMismatchError,
    DnsError,
    "The compare-and-swap guard failed: nothing was changed; `.found` is what is there now."
);
create_exception!(
    _native,
    DnsAuthError,
    DnsError,
    "The provider refused the credentials, or the DNS server the TSIG key."
);
create_exception!(
    _native,
    DnsZoneNotFoundError,
    DnsError,
    "The zone is unknown to the provider."
);
create_exception!(
    _native,
    DnsThrottledError,
    DnsError,
    "The provider kept throttling the requests."
);
create_exception!(
    _native,
    DnsTimeoutError,
    DnsError,
    "A DNS operation did not finish in time."
);
create_exception!(
    _native,
    DnsInputError,
    DnsError,
    "A name, value, TTL or provider setting is not acceptable."
);

/// Maps a DNS error to the Python hierarchy; `.provider` and `.found` are set where known.
/// Messages never carry credentials.
fn dns_err(py: Python<'_>, e: Error) -> PyErr {
    let msg = e.to_string();
    let err = match &e {
        Error::CasMismatch { .. } => DnsCasMismatchError::new_err(msg),
        Error::AuthRejected { .. } | Error::TsigRejected { .. } => DnsAuthError::new_err(msg),
        Error::ZoneNotFound { .. } => DnsZoneNotFoundError::new_err(msg),
        Error::Throttled { .. } => DnsThrottledError::new_err(msg),
        Error::Timeout { .. } => DnsTimeoutError::new_err(msg),
        Error::InvalidInput { .. }
        | Error::NameNotInZone { .. }
        | Error::ValueKindMismatch { .. }
        | Error::Secret { .. } => DnsInputError::new_err(msg),
        _ => DnsError::new_err(msg),
    };
    let value = err.value(py);
    let found = match &e {
        Error::CasMismatch { found, .. } => found.as_deref().and_then(|f| as_py(py, f).ok()),
        _ => None,
    };
    let _ = value.setattr("found", found);
    let provider = match &e {
        Error::CasMismatch { provider, .. }
        | Error::AuthRejected { provider, .. }
        | Error::ZoneNotFound { provider, .. }
        | Error::Throttled { provider, .. }
        | Error::Timeout { provider, .. }
        | Error::Api { provider, .. }
        | Error::ConflictingRecord { provider, .. }
        | Error::MalformedResponse { provider, .. }
        | Error::Http { provider, .. } => Some(*provider),
        Error::TsigRejected { .. } | Error::UpdateRefused { .. } => Some("rfc2136"),
        _ => None,
    };
    let _ = value.setattr("provider", provider);
    err
}

fn ips(values: &[String], field: &str) -> PyResult<Vec<IpAddr>> {
    values
        .iter()
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| DnsInputError::new_err(format!("{field}: {v:?} is not an IP address")))
        })
        .collect()
}

fn kind(k: &str) -> PyResult<RecordKind> {
    k.parse::<RecordKind>()
        .map_err(|e| DnsInputError::new_err(e.to_string()))
}

fn url(u: Option<&str>, field: &str) -> PyResult<Option<Url>> {
    u.map(|s| Url::parse(s).map_err(|e| DnsInputError::new_err(format!("{field}: {e}"))))
        .transpose()
}

fn secs(s: f64, field: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| DnsInputError::new_err(format!("{field}: {s} is not a duration in seconds")))
}

/// Base class of the three providers: read, compare-and-swap set, wait, flip.
#[pyclass(name = "DnsProvider", module = "fspbx_ha", subclass, frozen)]
pub(crate) struct PyDnsProvider {
    inner: Arc<dyn DnsProvider>,
}

#[pymethods]
impl PyDnsProvider {
    /// The provider for the cluster configuration's floating record (`[floating.provider]`);
    /// secret references are resolved now.
    #[staticmethod]
    fn from_config(py: Python<'_>, config: &PyClusterConfig) -> PyResult<Self> {
        let f = &config.inner.floating;
        let inner = f.provider.build(&f.zone).map_err(|e| dns_err(py, e))?;
        Ok(PyDnsProvider {
            inner: Arc::from(inner),
        })
    }

    /// `route53`, `cloudflare` or `rfc2136`.
    #[getter]
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// The zone (with trailing dot).
    #[getter]
    fn zone(&self) -> String {
        self.inner.zone().to_owned()
    }

    /// `{"atomic_cas": bool, "min_ttl": int, "change_tracking": bool}`.
    fn capabilities(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.capabilities())
    }

    /// The record set `{"name", "kind", "ttl", "values"}` of `name`/`kind`, or None.
    #[pyo3(signature = (name, kind="A"))]
    fn get(&self, py: Python<'_>, name: &str, kind: &str) -> PyResult<Py<PyAny>> {
        let k = self::kind(kind)?;
        let p = self.inner.clone();
        let name = name.to_owned();
        let rs = block_on(py, async move { p.get(&name, k).await }).map_err(|e| dns_err(py, e))?;
        as_py(py, &rs)
    }

    /// Sets `name` to `values` (empty: delete). With `expect` the write happens only if the
    /// record holds exactly those addresses now (`[]`: must not exist); otherwise
    /// DnsCasMismatchError with `.found`. `kind` defaults to the family of the values (A when
    /// empty). Returns the receipt dict for `wait_applied`.
    #[pyo3(signature = (name, values, ttl=60, kind=None, expect=None))]
    fn set(
        &self,
        py: Python<'_>,
        name: &str,
        values: Vec<String>,
        ttl: u32,
        kind: Option<&str>,
        expect: Option<Vec<String>>,
    ) -> PyResult<Py<PyAny>> {
        let values = ips(&values, "values")?;
        let k = match kind {
            Some(k) => self::kind(k)?,
            None => values.first().map(RecordKind::of).unwrap_or(RecordKind::A),
        };
        let mut change = Change::set(name, k, ttl, values);
        if let Some(e) = expect {
            let e = ips(&e, "expect")?;
            change = change.expecting(if e.is_empty() {
                Expected::Absent
            } else {
                Expected::Values(e)
            });
        }
        let p = self.inner.clone();
        let r = block_on(py, async move { p.set(&change).await }).map_err(|e| dns_err(py, e))?;
        as_py(py, &r)
    }

    /// Waits until the provider reports the change of `receipt` applied.
    #[pyo3(signature = (receipt, timeout_s=60.0))]
    fn wait_applied(
        &self,
        py: Python<'_>,
        receipt: &Bound<'_, PyAny>,
        timeout_s: f64,
    ) -> PyResult<()> {
        let r: ChangeReceipt = from_py(py, receipt)?;
        let t = secs(timeout_s, "timeout_s")?;
        let p = self.inner.clone();
        block_on(py, async move { p.wait_applied(&r, t).await }).map_err(|e| dns_err(py, e))
    }

    /// Points `name` at `to` (A and AAAA by family), each kind guarded by compare-and-swap
    /// against what it holds now, or against `expected`. Returns the steps (from, to, receipt).
    #[pyo3(signature = (name, to, ttl=60, expected=None))]
    fn flip(
        &self,
        py: Python<'_>,
        name: &str,
        to: Vec<String>,
        ttl: u32,
        expected: Option<Vec<String>>,
    ) -> PyResult<Py<PyAny>> {
        let to = ips(&to, "to")?;
        let expected = expected.map(|e| ips(&e, "expected")).transpose()?;
        let p = self.inner.clone();
        let name = name.to_owned();
        let steps = block_on(py, async move {
            fspbx_ha_dns::plan::flip(p.as_ref(), &name, ttl, &to, expected.as_deref()).await
        })
        .map_err(|e| dns_err(py, e))?;
        as_py(py, &steps)
    }

    fn __repr__(&self) -> String {
        format!("<{} zone={}>", self.inner.name(), self.inner.zone())
    }
}

/// Amazon Route53 (SigV4; compare-and-swap as one DELETE+CREATE batch).
#[pyclass(name = "Route53", module = "fspbx_ha", extends = PyDnsProvider, frozen)]
pub(crate) struct PyRoute53;

#[pymethods]
impl PyRoute53 {
    /// `Route53(zone, access_key_id, secret_access_key, hosted_zone_id=None, endpoint=None,
    /// region=None)`.
    #[new]
    #[pyo3(signature = (zone, access_key_id, secret_access_key, hosted_zone_id=None, endpoint=None, region=None))]
    fn new(
        py: Python<'_>,
        zone: &str,
        access_key_id: String,
        secret_access_key: String,
        hosted_zone_id: Option<String>,
        endpoint: Option<&str>,
        region: Option<String>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let p = Route53::new(Route53Config {
            zone: zone.to_owned(),
            access_key_id,
            secret_access_key: Secret::new(secret_access_key),
            hosted_zone_id,
            endpoint: url(endpoint, "endpoint")?,
            region,
        })
        .map_err(|e| dns_err(py, e))?;
        Ok(PyClassInitializer::from(PyDnsProvider { inner: Arc::new(p) }).add_subclass(PyRoute53))
    }
}

/// Cloudflare API v4 (bearer token; compare-and-swap is read-compare-write, not atomic).
#[pyclass(name = "Cloudflare", module = "fspbx_ha", extends = PyDnsProvider, frozen)]
pub(crate) struct PyCloudflare;

#[pymethods]
impl PyCloudflare {
    /// `Cloudflare(zone, api_token, zone_id=None, endpoint=None, per_page=None)`.
    #[new]
    #[pyo3(signature = (zone, api_token, zone_id=None, endpoint=None, per_page=None))]
    fn new(
        py: Python<'_>,
        zone: &str,
        api_token: String,
        zone_id: Option<String>,
        endpoint: Option<&str>,
        per_page: Option<u32>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let p = Cloudflare::new(CloudflareConfig {
            zone: zone.to_owned(),
            api_token: Secret::new(api_token),
            zone_id,
            endpoint: url(endpoint, "endpoint")?,
            per_page,
        })
        .map_err(|e| dns_err(py, e))?;
        Ok(
            PyClassInitializer::from(PyDnsProvider { inner: Arc::new(p) })
                .add_subclass(PyCloudflare),
        )
    }
}

/// RFC 2136 dynamic updates with TSIG (atomic compare-and-swap through prerequisites).
#[pyclass(name = "Rfc2136", module = "fspbx_ha", extends = PyDnsProvider, frozen)]
pub(crate) struct PyRfc2136;

#[pymethods]
impl PyRfc2136 {
    /// `Rfc2136(server, zone, key_name=None, key_secret=None, algorithm="hmac-sha256")`:
    /// `server` is `ip[:port]` or `host[:port]`; `key_secret` the base64 TSIG secret.
    #[new]
    #[pyo3(signature = (server, zone, key_name=None, key_secret=None, algorithm="hmac-sha256"))]
    fn new(
        py: Python<'_>,
        server: &str,
        zone: &str,
        key_name: Option<String>,
        key_secret: Option<String>,
        algorithm: &str,
    ) -> PyResult<PyClassInitializer<Self>> {
        let server: SocketAddr =
            fspbx_ha_dns::parse_server(server, "server").map_err(|e| dns_err(py, e))?;
        let key = match (key_name, key_secret) {
            (Some(name), Some(secret)) => Some(TsigKey {
                name,
                algorithm: algorithm.parse::<TsigAlg>().map_err(|e| dns_err(py, e))?,
                secret: Secret::new(secret),
            }),
            (None, None) => None,
            _ => {
                return Err(DnsInputError::new_err(
                    "give both key_name and key_secret, or neither (unsigned updates)",
                ));
            }
        };
        let p = Rfc2136::new(server, zone, key).map_err(|e| dns_err(py, e))?;
        Ok(PyClassInitializer::from(PyDnsProvider { inner: Arc::new(p) }).add_subclass(PyRfc2136))
    }
}

/// Asks every server in `servers` (`ip:port`) directly, without a cache, what it answers for
/// `name`/`kind` until all answer `want` or `timeout_s` passes. Returns the report dict
/// (`verdict`, per-server `answers` with TTL and SOA serial, `clients_moved_by`, …).
#[pyfunction]
#[pyo3(signature = (zone, servers, name, want, kind="A", timeout_s=30.0, interval_s=0.2, old_ttl=None))]
#[allow(clippy::too_many_arguments)]
fn wait_propagated(
    py: Python<'_>,
    zone: &str,
    servers: Vec<String>,
    name: &str,
    want: Vec<String>,
    kind: &str,
    timeout_s: f64,
    interval_s: f64,
    old_ttl: Option<u32>,
) -> PyResult<Py<PyAny>> {
    let servers = servers
        .iter()
        .map(|s| fspbx_ha_dns::parse_server(s, "servers"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| dns_err(py, e))?;
    let checker = Checker::new(zone, servers).map_err(|e| dns_err(py, e))?;
    let (k, want) = (self::kind(kind)?, ips(&want, "want")?);
    let (t, i) = (
        secs(timeout_s, "timeout_s")?,
        secs(interval_s, "interval_s")?,
    );
    let name = name.to_owned();
    let report = block_on(py, async move {
        checker.wait_for(&name, k, &want, old_ttl, t, i).await
    })
    .map_err(|e| dns_err(py, e))?;
    as_py(py, &report)
}

/// Maps a core error: DNS errors to the DNS hierarchy above, the rest by family.
fn floating_err(py: Python<'_>, e: fspbx_ha_core::Error) -> PyErr {
    match e {
        fspbx_ha_core::Error::Dns { source } => dns_err(py, *source),
        other => crate::errors::core_err(py, other),
    }
}

/// The cluster's floating record and node records (`fspbx-ha dns …`), from the configuration.
/// All logic is in `fspbx_ha_core::floating`; reports are dicts.
#[pyclass(name = "Floating", module = "fspbx_ha", frozen)]
pub(crate) struct PyFloating {
    inner: Arc<Floating>,
}

impl PyFloating {
    fn run<T, F>(&self, py: Python<'_>, f: impl FnOnce(Arc<Floating>) -> F) -> PyResult<Py<PyAny>>
    where
        T: Serialize + Send,
        F: std::future::Future<Output = fspbx_ha_core::Result<T>> + Send,
    {
        let r = block_on(py, f(self.inner.clone())).map_err(|e| floating_err(py, e))?;
        as_py(py, &r)
    }
}

#[pymethods]
impl PyFloating {
    /// `Floating(config)`: builds the provider of `[floating.provider]` (secret references are
    /// resolved now).
    #[new]
    fn new(py: Python<'_>, config: &PyClusterConfig) -> PyResult<Self> {
        let inner = Floating::new(&config.inner).map_err(|e| floating_err(py, e))?;
        Ok(PyFloating {
            inner: Arc::new(inner),
        })
    }

    /// The floating name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// The zone.
    #[getter]
    fn zone(&self) -> String {
        self.inner.zone().to_owned()
    }

    /// What the provider holds for the floating and node records, the active node, and what
    /// every authoritative server answers (`{"floating", "active_node", "nodes", "servers", …}`).
    fn show(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.run(py, |f| async move { f.show().await })
    }

    /// Points the floating record at `to` (`"a"`, `"b"`, a node or host name, or addresses
    /// `"192.0.2.10,2001:db8::10"`), guarded by compare-and-swap against `expect` (addresses;
    /// `[]`: must not exist) or what it holds now; then waits up to `wait` seconds for the
    /// provider and every authoritative server (`wait=None`: does not wait for the servers).
    /// A lost guard raises DnsCasMismatchError. Returns the report (`steps`, `propagation`,
    /// `all_servers_answer`, `clients_moved_by`).
    #[pyo3(signature = (to, expect=None, ttl=None, wait=Some(90.0)))]
    fn flip(
        &self,
        py: Python<'_>,
        to: &str,
        expect: Option<Vec<String>>,
        ttl: Option<u32>,
        wait: Option<f64>,
    ) -> PyResult<Py<PyAny>> {
        let target = self
            .inner
            .resolve_target(to, "to")
            .map_err(|e| floating_err(py, e))?;
        let mut options = FlipOptions::default();
        options.expect = expect.map(|e| ips(&e, "expect")).transpose()?;
        options.ttl = ttl;
        options.wait_for_servers = wait.is_some();
        if let Some(w) = wait {
            options.timeout = secs(w, "wait")?;
        }
        self.run(py, |f| async move { f.flip(&target, &options).await })
    }

    /// Waits up to `timeout` seconds until every authoritative server answers `to` (default:
    /// what the provider holds). Returns `{"ok", "reports", "clients_moved_by"}`; `ok` is False
    /// when some server still lags.
    #[pyo3(signature = (to=None, timeout=90.0))]
    fn verify(&self, py: Python<'_>, to: Option<&str>, timeout: f64) -> PyResult<Py<PyAny>> {
        let target = match to {
            Some(t) => Some(
                self.inner
                    .resolve_target(t, "to")
                    .map_err(|e| floating_err(py, e))?,
            ),
            None => None,
        };
        let t = secs(timeout, "timeout")?;
        self.run(py, |f| async move { f.verify(target.as_ref(), t).await })
    }

    /// What `apply` would create or correct: `{"applied": False, "steps", "changes": 0}`.
    #[pyo3(signature = (node_ttl=DEFAULT_NODE_TTL))]
    fn plan(&self, py: Python<'_>, node_ttl: u32) -> PyResult<Py<PyAny>> {
        self.run(py, |f| async move { f.plan(node_ttl).await })
    }

    /// Creates or corrects both node records and the floating record (kept on the node it
    /// points at, else node A), each write guarded by what the plan saw.
    #[pyo3(signature = (node_ttl=DEFAULT_NODE_TTL))]
    fn apply(&self, py: Python<'_>, node_ttl: u32) -> PyResult<Py<PyAny>> {
        self.run(py, |f| async move { f.apply(node_ttl).await })
    }

    fn __repr__(&self) -> String {
        format!(
            "<Floating {} zone={} provider={}>",
            self.inner.name(),
            self.inner.zone(),
            self.inner.provider().name()
        )
    }
}

/// Registers the DNS classes, function and exceptions.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyDnsProvider>()?;
    m.add_class::<PyRoute53>()?;
    m.add_class::<PyCloudflare>()?;
    m.add_class::<PyRfc2136>()?;
    m.add_class::<PyFloating>()?;
    m.add_function(wrap_pyfunction!(wait_propagated, m)?)?;
    m.add("DnsError", py.get_type::<DnsError>())?;
    m.add("DnsCasMismatchError", py.get_type::<DnsCasMismatchError>())?;
    m.add("DnsAuthError", py.get_type::<DnsAuthError>())?;
    m.add(
        "DnsZoneNotFoundError",
        py.get_type::<DnsZoneNotFoundError>(),
    )?;
    m.add("DnsThrottledError", py.get_type::<DnsThrottledError>())?;
    m.add("DnsTimeoutError", py.get_type::<DnsTimeoutError>())?;
    m.add("DnsInputError", py.get_type::<DnsInputError>())?;
    Ok(())
}
