//! Stuck and conflicting subscriptions for Python: `replication_conflicts`, `conflict_summary`,
//! `plan_resolution`, `resolve_conflict` and their typed results. All logic is in
//! `fspbx_ha_core::replication::conflicts`.

use fspbx_ha_core::replication::conflicts::{
    self, ConflictOptions, ConflictReport, Remedy, RemedyOutcome, RemedyPlan, ResolveOptions,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::convert::{as_py, seconds, to_json};
use crate::errors::core_err;
use crate::replication::PyReplicationPair;
use crate::runtime::block_on;

/// Both directions: state, error (table, key, finish LSN), both row versions.
#[pyclass(name = "ConflictReport", module = "fspbx_ha", frozen)]
pub(crate) struct PyConflictReport {
    inner: ConflictReport,
}

#[pymethods]
impl PyConflictReport {
    /// A direction is stuck.
    #[getter]
    fn any(&self) -> bool {
        self.inner.any()
    }
    /// Names of the stuck subscriptions.
    #[getter]
    fn stuck(&self) -> Vec<String> {
        self.inner.stuck().map(|d| d.subscription.clone()).collect()
    }
    /// Both directions as dicts.
    #[getter]
    fn directions(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.directions)
    }
    fn render(&self) -> String {
        self.inner.render()
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!("ConflictReport(stuck={:?})", self.stuck())
    }
}

/// A remedy's plan: steps (node, SQL), consequence and what will be lost.
#[pyclass(name = "RemedyPlan", module = "fspbx_ha", frozen)]
pub(crate) struct PyRemedyPlan {
    inner: RemedyPlan,
}

#[pymethods]
impl PyRemedyPlan {
    /// The subscription.
    #[getter]
    fn subscription(&self) -> String {
        self.inner.subscription.clone()
    }
    /// The subscriber node.
    #[getter]
    fn node(&self) -> String {
        self.inner.node.clone()
    }
    /// `skip`, `resync` or `fix_row`.
    #[getter]
    fn remedy(&self) -> &'static str {
        match self.inner.remedy {
            Remedy::Skip => "skip",
            Remedy::Resync { .. } => "resync",
            Remedy::FixRow => "fix_row",
        }
    }
    /// Steps as dicts (side, node, action, sql, why).
    #[getter]
    fn steps(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.steps)
    }
    /// The consequence, one sentence.
    #[getter]
    fn consequence(&self) -> String {
        self.inner.consequence.clone()
    }
    /// What will not survive (rows as JSON text, changes not applied).
    #[getter]
    fn lost(&self) -> Vec<String> {
        self.inner.lost.clone()
    }
    /// The conflict the plan answers, as a dict.
    #[getter]
    fn conflict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.conflict)
    }
    fn render(&self) -> String {
        self.inner.render()
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "RemedyPlan({} on {}: {} step(s))",
            self.inner.remedy.describe(),
            self.inner.node,
            self.inner.steps.len()
        )
    }
}

/// What a remedy did and the direction read again afterwards.
#[pyclass(name = "RemedyOutcome", module = "fspbx_ha", frozen)]
pub(crate) struct PyRemedyOutcome {
    inner: RemedyOutcome,
}

#[pymethods]
impl PyRemedyOutcome {
    /// The worker resumed (a heartbeat from the publisher arrived) and the direction flows.
    #[getter]
    fn resolved(&self) -> bool {
        self.inner.resolved
    }
    /// Seconds the heartbeat took, or None.
    #[getter]
    fn heartbeat_s(&self) -> Option<f64> {
        self.inner.heartbeat_s
    }
    /// Rows a re-sync copied.
    #[getter]
    fn rows_copied(&self) -> Option<u64> {
        self.inner.rows_copied
    }
    /// The direction afterwards (a further conflict shows here), as a dict.
    #[getter]
    fn after(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.after)
    }
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!("RemedyOutcome(resolved={})", self.inner.resolved)
    }
}

/// Reads both subscriptions twice `sample_interval_s` apart and, for a stuck one, the
/// subscriber's server log over SSH and both versions of the conflicting row. Blocks.
#[pyfunction]
#[pyo3(signature = (pair, *, sample_interval_s = 1.0, read_log = true))]
fn replication_conflicts(
    py: Python<'_>,
    pair: &PyReplicationPair,
    sample_interval_s: f64,
    read_log: bool,
) -> PyResult<PyConflictReport> {
    let options = ConflictOptions {
        sample_interval: seconds("sample_interval_s", sample_interval_s)?,
        read_log,
    };
    block_on(py, async {
        conflicts::conflicts(&*pair.inner.lock().await, &options).await
    })
    .map(|inner| PyConflictReport { inner })
    .map_err(|e| core_err(py, e))
}

/// One cheap read per direction (for status): `{"directions": [{"subscription", "state",
/// "apply_error_count", "conflicts_counted", ...}]}`.
#[pyfunction]
fn conflict_summary(py: Python<'_>, pair: &PyReplicationPair) -> PyResult<Py<PyAny>> {
    let s = block_on(py, async {
        conflicts::conflict_summary(&*pair.inner.lock().await).await
    })
    .map_err(|e| core_err(py, e))?;
    as_py(py, &s)
}

/// The plan of one remedy for a stuck subscription (nothing changes). Exactly one of `skip`,
/// `resync` (a table) and `fix_row`.
#[pyfunction]
#[pyo3(signature = (pair, subscription, *, skip = false, resync = None, fix_row = false))]
fn plan_resolution(
    py: Python<'_>,
    pair: &PyReplicationPair,
    subscription: &str,
    skip: bool,
    resync: Option<String>,
    fix_row: bool,
) -> PyResult<PyRemedyPlan> {
    let remedy = match (skip, resync, fix_row) {
        (true, None, false) => Remedy::Skip,
        (false, Some(table), false) => Remedy::Resync { table },
        (false, None, true) => Remedy::FixRow,
        _ => {
            return Err(PyValueError::new_err(
                "choose exactly one remedy: skip=True, resync=\"schema.table\" or fix_row=True",
            ));
        }
    };
    block_on(py, async {
        conflicts::plan_resolution(
            &*pair.inner.lock().await,
            subscription,
            &remedy,
            &ConflictOptions::default(),
        )
        .await
    })
    .map(|inner| PyRemedyPlan { inner })
    .map_err(|e| core_err(py, e))
}

/// Runs a plan from `plan_resolution`, then waits (up to `resume_timeout_s`) for a heartbeat
/// from the publisher and reads the direction again.
#[pyfunction]
#[pyo3(signature = (pair, plan, *, resume_timeout_s = 60.0))]
fn resolve_conflict(
    py: Python<'_>,
    pair: &PyReplicationPair,
    plan: &PyRemedyPlan,
    resume_timeout_s: f64,
) -> PyResult<PyRemedyOutcome> {
    let options = ResolveOptions {
        resume_timeout: seconds("resume_timeout_s", resume_timeout_s)?,
        detect: ConflictOptions::default(),
    };
    let p = plan.inner.clone();
    block_on(py, async {
        conflicts::resolve(&*pair.inner.lock().await, &p, &options).await
    })
    .map(|inner| PyRemedyOutcome { inner })
    .map_err(|e| core_err(py, e))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyConflictReport>()?;
    m.add_class::<PyRemedyPlan>()?;
    m.add_class::<PyRemedyOutcome>()?;
    m.add_function(wrap_pyfunction!(replication_conflicts, m)?)?;
    m.add_function(wrap_pyfunction!(conflict_summary, m)?)?;
    m.add_function(wrap_pyfunction!(plan_resolution, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_conflict, m)?)?;
    Ok(())
}
