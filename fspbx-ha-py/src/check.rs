//! `check()` and its typed results for Python.

use fspbx_ha_core::check::{CheckItem, CheckOptions, CheckReport, run as run_checks};
use pyo3::prelude::*;

use crate::config::PyClusterConfig;
use crate::runtime::block_on;

/// One check result.
#[pyclass(name = "CheckItem", module = "fspbx_ha", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct PyCheckItem {
    /// Node name.
    node: String,
    /// Check id, e.g. `postgres.wal_level`.
    check: String,
    /// `pass`, `warn`, `fail` or `skip`.
    status: String,
    /// What was observed.
    observed: String,
    /// What is needed.
    expected: String,
    /// How to fix it, or None.
    fix: Option<String>,
}

impl From<&CheckItem> for PyCheckItem {
    fn from(i: &CheckItem) -> Self {
        PyCheckItem {
            node: i.node.clone(),
            check: i.check.clone(),
            status: i.status.as_str().to_string(),
            observed: i.observed.clone(),
            expected: i.expected.clone(),
            fix: i.fix.clone(),
        }
    }
}

#[pymethods]
impl PyCheckItem {
    fn __repr__(&self) -> String {
        format!(
            "CheckItem(node={:?}, check={:?}, status={:?}, observed={:?})",
            self.node, self.check, self.status, self.observed
        )
    }
}

/// All results of a check run.
#[pyclass(name = "CheckReport", module = "fspbx_ha", frozen)]
pub(crate) struct PyCheckReport {
    inner: CheckReport,
}

#[pymethods]
impl PyCheckReport {
    /// True when nothing failed.
    #[getter]
    fn ok(&self) -> bool {
        self.inner.ok()
    }
    /// Every result, node A's first.
    #[getter]
    fn items(&self) -> Vec<PyCheckItem> {
        self.inner.items.iter().map(PyCheckItem::from).collect()
    }
    /// The result of `check` on `node`, or None.
    fn find(&self, node: &str, check: &str) -> Option<PyCheckItem> {
        self.inner.find(node, check).map(PyCheckItem::from)
    }
    /// The human table the CLI prints.
    fn table(&self) -> String {
        self.inner.render_table()
    }
    /// The report as JSON.
    fn to_json(&self) -> PyResult<String> {
        crate::convert::to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "CheckReport(ok={}, items={})",
            self.inner.ok(),
            self.inner.items.len()
        )
    }
}

/// Runs the preflight checks on both nodes. Blocks (the GIL is released meanwhile).
#[pyfunction]
#[pyo3(signature = (config, *, peer_ssh = true))]
fn check(py: Python<'_>, config: &PyClusterConfig, peer_ssh: bool) -> PyCheckReport {
    let mut options = CheckOptions::default();
    options.peer_ssh = peer_ssh;
    let inner = block_on(py, run_checks(&config.inner, &options));
    PyCheckReport { inner }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCheckItem>()?;
    m.add_class::<PyCheckReport>()?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    Ok(())
}
