//! Replication for Python: `ReplicationPair` (connect, plan, apply, status, verify, teardown)
//! and its typed results. All logic is in `fspbx_ha_core::replication`.

use fspbx_ha_core::replication::{
    self, ApplyObserver, ApplyReport, CopyProgress, Intent, Pair, ReplicationPlan,
    ReplicationStatus, Step, StepOutcome, VerifyReport,
};
use pyo3::prelude::*;

use crate::config::PyClusterConfig;
use crate::convert::{Progress, as_py, to_json};
use crate::errors::core_err;
use crate::runtime::block_on;

/// A replication plan (setup or teardown). Secrets show as `<redacted>`.
#[pyclass(name = "ReplicationPlan", module = "fspbx_ha", frozen)]
pub(crate) struct PyReplicationPlan {
    inner: ReplicationPlan,
}

#[pymethods]
impl PyReplicationPlan {
    /// `setup` or `teardown`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.inner.kind {
            replication::PlanKind::Setup => "setup",
            replication::PlanKind::Teardown => "teardown",
        }
    }
    /// Step ids in order.
    #[getter]
    fn step_ids(&self) -> Vec<String> {
        self.inner.steps.iter().map(|s| s.id.clone()).collect()
    }
    /// The steps as dicts (id, side, node, action, why, destructive, postcondition).
    #[getter]
    fn steps(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.steps)
    }
    /// Existing objects recognized and kept.
    #[getter]
    fn adopted(&self) -> Vec<String> {
        self.inner.adopted.clone()
    }
    /// Warnings and remarks.
    #[getter]
    fn notes(&self) -> Vec<String> {
        self.inner.notes.clone()
    }
    /// Nothing to do.
    #[getter]
    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    /// Some step destroys data or objects.
    #[getter]
    fn is_destructive(&self) -> bool {
        self.inner.is_destructive()
    }
    /// The plan as the CLI prints it.
    fn render(&self) -> String {
        self.inner.render()
    }
    /// The plan as JSON.
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __len__(&self) -> usize {
        self.inner.steps.len()
    }
    fn __repr__(&self) -> String {
        format!(
            "ReplicationPlan(kind={:?}, steps={})",
            self.kind(),
            self.inner.steps.len()
        )
    }
}

/// What `apply` did.
#[pyclass(name = "ApplyReport", module = "fspbx_ha", frozen)]
pub(crate) struct PyApplyReport {
    inner: ApplyReport,
}

#[pymethods]
impl PyApplyReport {
    /// Steps that ran (the rest were already done).
    #[getter]
    fn executed(&self) -> usize {
        self.inner.executed()
    }
    /// Every step: dicts with id, node, result (`executed` / `already_done`), elapsed_s.
    #[getter]
    fn steps(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.steps)
    }
    /// Seconds in all.
    #[getter]
    fn elapsed_s(&self) -> f64 {
        self.inner.elapsed_s
    }
    /// The report as JSON.
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "ApplyReport(steps={}, executed={})",
            self.inner.steps.len(),
            self.inner.executed()
        )
    }
}

/// Health of both directions.
#[pyclass(name = "ReplicationStatus", module = "fspbx_ha", frozen)]
pub(crate) struct PyReplicationStatus {
    inner: ReplicationStatus,
}

#[pymethods]
impl PyReplicationStatus {
    /// `healthy`, `degraded` or `broken`.
    #[getter]
    fn verdict(&self) -> &'static str {
        self.inner.verdict.as_str()
    }
    /// Why (empty when healthy).
    #[getter]
    fn reasons(&self) -> Vec<String> {
        self.inner.reasons.clone()
    }
    /// Both directions as dicts (A -> B first).
    #[getter]
    fn directions(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.directions)
    }
    /// Error and conflict counters worth knowing (history, not findings).
    #[getter]
    fn notes(&self) -> Vec<String> {
        self.inner.notes.clone()
    }
    /// Whether each direction's changes are applied (dict: per direction `state` flowing,
    /// failing, disabled or missing), or None when not readable.
    #[getter]
    fn conflicts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.conflicts)
    }
    /// Schema drift and tables a subscription lacks (dict), or None when not readable.
    #[getter]
    fn drift(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.drift)
    }
    /// The sequence strategy and its compliance (dict), or None when not readable.
    #[getter]
    fn sequences(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.sequences)
    }
    /// Slot safety: both nodes' slots, max_slot_wal_keep_size, warnings (dict), or None.
    #[getter]
    fn slots(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.slots)
    }
    /// The summary the CLI prints.
    fn render(&self) -> String {
        self.inner.render()
    }
    /// The status as JSON.
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!("ReplicationStatus(verdict={:?})", self.verdict())
    }
}

/// The table-by-table comparison.
#[pyclass(name = "VerifyReport", module = "fspbx_ha", frozen)]
pub(crate) struct PyVerifyReport {
    inner: VerifyReport,
}

#[pymethods]
impl PyVerifyReport {
    /// No table differs.
    #[getter]
    fn clean(&self) -> bool {
        self.inner.clean()
    }
    /// Tables that differ.
    #[getter]
    fn differing(&self) -> Vec<String> {
        self.inner.differing.clone()
    }
    /// Rows compared.
    #[getter]
    fn rows_compared(&self) -> i64 {
        self.inner.rows_compared
    }
    /// Every table as dicts (table, rows_a, rows_b, digest_a, digest_b, equal).
    #[getter]
    fn tables(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.tables)
    }
    /// The summary the CLI prints.
    fn render(&self) -> String {
        self.inner.render()
    }
    /// The report as JSON.
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "VerifyReport(clean={}, tables={})",
            self.inner.clean(),
            self.inner.tables.len()
        )
    }
}

/// Events of `apply` as dicts: `{"event": "step_started", ...}`, `{"event": "step_finished",
/// ...}`, `{"event": "copy", ...CopyProgress fields}`.
impl ApplyObserver for Progress {
    fn step_started(&self, step: &Step, index: usize, total: usize) {
        self.send(
            "step_started",
            serde_json::json!({ "id": step.id, "node": step.node, "index": index, "total": total }),
        );
    }
    fn step_finished(&self, _step: &Step, outcome: &StepOutcome) {
        self.send(
            "step_finished",
            serde_json::to_value(outcome).unwrap_or_default(),
        );
    }
    fn copy_progress(&self, progress: &CopyProgress) {
        self.send("copy", serde_json::to_value(progress).unwrap_or_default());
    }
}

/// Open connections to both nodes' PostgreSQL, for replication work.
#[pyclass(name = "ReplicationPair", module = "fspbx_ha", frozen)]
pub(crate) struct PyReplicationPair {
    pub(crate) inner: tokio::sync::Mutex<Pair>,
}

fn intent(allow_restart: bool, destructive: bool) -> Intent {
    let mut i = Intent::default();
    i.allow_restart = allow_restart;
    i.destructive = destructive;
    i
}

#[pymethods]
impl PyReplicationPair {
    /// Connects to both nodes (through SSH where the config says so). Blocks.
    #[staticmethod]
    fn connect(py: Python<'_>, config: &PyClusterConfig) -> PyResult<Self> {
        let cfg = config.inner.clone();
        let pair =
            block_on(py, async move { Pair::connect(&cfg).await }).map_err(|e| core_err(py, e))?;
        Ok(PyReplicationPair {
            inner: tokio::sync::Mutex::new(pair),
        })
    }

    /// The setup plan (nothing changes). Raises FspbxHaError naming node, step and fix when
    /// the pair cannot or must not be set up without consent.
    #[pyo3(signature = (*, allow_restart = false, destructive = false))]
    fn plan(
        &self,
        py: Python<'_>,
        allow_restart: bool,
        destructive: bool,
    ) -> PyResult<PyReplicationPlan> {
        let i = intent(allow_restart, destructive);
        block_on(py, async { self.inner.lock().await.plan(&i).await })
            .map(|inner| PyReplicationPlan { inner })
            .map_err(|e| core_err(py, e))
    }

    /// Runs `plan` (from `plan()` or `teardown_plan()`); steps already done are skipped.
    /// `progress` is called with one dict per event.
    #[pyo3(signature = (plan, *, progress = None))]
    fn apply(
        &self,
        py: Python<'_>,
        plan: &PyReplicationPlan,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyApplyReport> {
        let observer = Progress::new(progress);
        let p = plan.inner.clone();
        block_on(py, async {
            let mut pair = self.inner.lock().await;
            replication::apply(&mut pair, &p, &observer).await
        })
        .map(|inner| PyApplyReport { inner })
        .map_err(|e| core_err(py, e))
    }

    /// Health of both directions (writes a heartbeat on each node and waits for it).
    fn status(&self, py: Python<'_>) -> PyResult<PyReplicationStatus> {
        block_on(py, async {
            replication::status(&*self.inner.lock().await).await
        })
        .map(|inner| PyReplicationStatus { inner })
        .map_err(|e| core_err(py, e))
    }

    /// Compares every table on both nodes.
    fn verify(&self, py: Python<'_>) -> PyResult<PyVerifyReport> {
        block_on(py, async {
            replication::verify(&*self.inner.lock().await).await
        })
        .map(|inner| PyVerifyReport { inner })
        .map_err(|e| core_err(py, e))
    }

    /// The teardown plan (nothing changes until it is applied).
    fn teardown_plan(&self, py: Python<'_>) -> PyResult<PyReplicationPlan> {
        block_on(py, async { self.inner.lock().await.teardown_plan().await })
            .map(|inner| PyReplicationPlan { inner })
            .map_err(|e| core_err(py, e))
    }

    /// Both nodes' inventories as dicts (version, settings, tables, sequences, publications,
    /// subscriptions, slots, fingerprint).
    fn inventories(&self, py: Python<'_>) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        let (a, b) = block_on(py, async { self.inner.lock().await.inventories().await })
            .map_err(|e| core_err(py, e))?;
        Ok((as_py(py, &a)?, as_py(py, &b)?))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyReplicationPair>()?;
    m.add_class::<PyReplicationPlan>()?;
    m.add_class::<PyApplyReport>()?;
    m.add_class::<PyReplicationStatus>()?;
    m.add_class::<PyVerifyReport>()?;
    Ok(())
}
