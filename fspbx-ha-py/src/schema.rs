//! Sequences, schema drift and subscription refresh for Python. All logic is in
//! `fspbx_ha_core::replication` (`sequences`, `drift`); each call connects to both nodes,
//! does its work and closes the connections.

use fspbx_ha_core::replication::{self, DriftReport, Pair};
use pyo3::prelude::*;

use crate::config::PyClusterConfig;
use crate::convert::{as_py, to_json};
use crate::errors::core_err;
use crate::runtime::block_on;

/// Schema drift between the nodes and tables a subscription does not include yet.
#[pyclass(name = "SchemaDrift", module = "fspbx_ha", frozen)]
pub(crate) struct PySchemaDrift {
    inner: DriftReport,
}

#[pymethods]
impl PySchemaDrift {
    /// No drift and nothing to refresh.
    #[getter]
    fn clean(&self) -> bool {
        self.inner.clean()
    }
    /// Tables differ between the nodes.
    #[getter]
    fn has_drift(&self) -> bool {
        self.inner.has_drift()
    }
    /// Tables that differ: dicts `{"table", "changes": [{"kind", ...}]}`; kinds are
    /// `only_on`, `column_only_on`, `type_changed`, `nullability_changed`,
    /// `primary_key_changed`, `unique_keys_changed`, `replica_identity_changed`,
    /// `not_in_publication`.
    #[getter]
    fn tables(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.tables)
    }
    /// Both subscriptions: `{"subscription", "subscriber", "publisher", "exists", "enabled",
    /// "missing", "absent", "stale"}`.
    #[getter]
    fn subscriptions(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.subscriptions)
    }
    /// `(subscriber node, table)` for every table a refresh would add.
    #[getter]
    fn refresh_needed(&self) -> Vec<(String, String)> {
        self.inner
            .refresh_needed()
            .iter()
            .flat_map(|s| s.missing.iter().map(|t| (s.subscriber.clone(), t.clone())))
            .collect()
    }
    /// One line per finding, as `status` shows them.
    #[getter]
    fn findings(&self) -> Vec<String> {
        self.inner.findings()
    }
    /// The readable diff, as the CLI prints it.
    fn render(&self) -> String {
        self.inner.render()
    }
    /// The report as JSON.
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "SchemaDrift(tables={}, refresh_needed={})",
            self.inner.tables.len(),
            self.refresh_needed().len()
        )
    }
}

/// Connects to both nodes and runs `f` on the pair.
fn with_pair<T, F>(py: Python<'_>, config: &PyClusterConfig, f: F) -> PyResult<T>
where
    T: Send,
    F: for<'p> FnOnce(
            &'p Pair,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = fspbx_ha_core::Result<T>> + Send + 'p>,
        > + Send,
{
    let cfg = config.inner.clone();
    block_on(py, async move {
        let pair = Pair::connect(&cfg).await?;
        f(&pair).await
    })
    .map_err(|e| core_err(py, e))
}

/// Both nodes' serial and identity columns (table, column, kind, increment, next value, the
/// column's max), compliance with `[replication.sequences]` and, with interleave, the plan.
#[pyfunction]
fn replication_sequences(py: Python<'_>, config: &PyClusterConfig) -> PyResult<Py<PyAny>> {
    let r = with_pair(py, config, |p| Box::pin(replication::sequences_report(p)))?;
    as_py(py, &r)
}

/// Interleaves the sequences as `[replication.sequences]` says (strategy `interleave`, else
/// ConfigError). `dry_run` (default) only plans. Returns `{"applied", "step", "offsets",
/// "changes": [{"node", "sequence", "column", "action", "restart_with", "statement", ...}]}`.
#[pyfunction]
#[pyo3(signature = (config, *, dry_run = true))]
fn replication_interleave(
    py: Python<'_>,
    config: &PyClusterConfig,
    dry_run: bool,
) -> PyResult<Py<PyAny>> {
    let r = with_pair(py, config, move |p| {
        Box::pin(replication::interleave(p, dry_run))
    })?;
    as_py(py, &r)
}

/// Schema drift and subscription coverage of the pair.
#[pyfunction]
fn replication_drift(py: Python<'_>, config: &PyClusterConfig) -> PyResult<PySchemaDrift> {
    with_pair(py, config, |p| Box::pin(replication::drift(p))).map(|inner| PySchemaDrift { inner })
}

/// `ALTER SUBSCRIPTION … REFRESH PUBLICATION` on both nodes; `dry_run` (default) only says
/// what it would do. Raises ReplicationError when a published table is absent on a subscriber.
#[pyfunction]
#[pyo3(signature = (config, *, dry_run = true, copy_data = false))]
fn replication_refresh(
    py: Python<'_>,
    config: &PyClusterConfig,
    dry_run: bool,
    copy_data: bool,
) -> PyResult<Py<PyAny>> {
    let r = with_pair(py, config, move |p| {
        Box::pin(replication::refresh_subscriptions_with(
            p, dry_run, copy_data,
        ))
    })?;
    as_py(py, &r)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySchemaDrift>()?;
    m.add_function(wrap_pyfunction!(replication_sequences, m)?)?;
    m.add_function(wrap_pyfunction!(replication_interleave, m)?)?;
    m.add_function(wrap_pyfunction!(replication_drift, m)?)?;
    m.add_function(wrap_pyfunction!(replication_refresh, m)?)?;
    Ok(())
}
