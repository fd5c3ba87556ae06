//! `fspbx_ha.upgrade(...)`: FS PBX's multinode update procedure, checked and resumable, and its
//! typed report. All logic is in `fspbx_ha_core::upgrade`.

use std::path::PathBuf;
use std::time::Duration;

use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::upgrade::{
    UpgradeObserver, UpgradeOptions, UpgradePlan, UpgradeReport, UpgradeStep, UpgradeStepOutcome,
};
use fspbx_ha_core::{Error, ErrorFamily};
use pyo3::create_exception;
use pyo3::prelude::*;

use crate::convert::{Progress, as_py, to_json};
use crate::errors::{FspbxHaError, core_err};
use crate::runtime::block_on;

create_exception!(
    _native,
    UpgradeError,
    FspbxHaError,
    "The upgrade stopped: a command or check failed, or the state file belongs to another plan. \
     ``failure`` holds the step, node, command, status and the last lines of its stderr when a \
     command or check failed; running again resumes at that step."
);

/// The outcome of `upgrade()` (or of a dry run).
#[pyclass(name = "UpgradeReport", module = "fspbx_ha", frozen)]
pub(crate) struct PyUpgradeReport {
    inner: UpgradeReport,
}

#[pymethods]
impl PyUpgradeReport {
    /// Nothing ran.
    #[getter]
    fn dry_run(&self) -> bool {
        self.inner.dry_run
    }
    /// Every step passed.
    #[getter]
    fn finished(&self) -> bool {
        self.inner.finished
    }
    /// The run continued one an earlier run recorded in the state file.
    #[getter]
    fn resumed(&self) -> bool {
        self.inner.resumed
    }
    /// The node migrated first.
    #[getter]
    fn first(&self) -> &str {
        &self.inner.plan.first
    }
    /// Step ids in order.
    #[getter]
    fn step_ids(&self) -> Vec<String> {
        self.inner.plan.steps.iter().map(|s| s.id.clone()).collect()
    }
    /// Steps this run executed.
    #[getter]
    fn executed(&self) -> Vec<String> {
        self.inner
            .executed()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
    /// Steps skipped because the state file records them done.
    #[getter]
    fn skipped(&self) -> Vec<String> {
        self.inner
            .skipped()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
    /// Tables the migration added.
    #[getter]
    fn new_tables(&self) -> Vec<String> {
        self.inner.new_tables.clone()
    }
    /// The state file.
    #[getter]
    fn state_file(&self) -> String {
        self.inner.state_file.display().to_string()
    }
    /// The plan as a dict (first, second, steps with id, node, action, postcondition, why;
    /// fingerprint).
    #[getter]
    fn plan(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.plan)
    }
    /// Every step's outcome as dicts (id, node, result, elapsed_s, note).
    #[getter]
    fn steps(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.steps)
    }
    /// Seconds for the whole run.
    #[getter]
    fn elapsed_s(&self) -> f64 {
        self.inner.elapsed_s
    }
    /// The human summary (the plan with every command, for a dry run).
    fn render(&self) -> String {
        self.inner.render()
    }
    /// The whole report as a dict.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner)
    }
    /// The whole report as JSON.
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "UpgradeReport(first={:?}, finished={}, executed={}, skipped={})",
            self.inner.plan.first,
            self.inner.finished,
            self.inner.executed().len(),
            self.inner.skipped().len()
        )
    }
}

/// Events of `upgrade` as dicts: `{"event": "plan_ready", "first", "second", "done"}`,
/// `{"event": "step_started", "id", "node", "index", "total", "command"}`,
/// `{"event": "step_running", "id", "node", "elapsed_s"}`, `{"event": "step_finished", ...the
/// outcome}`.
impl UpgradeObserver for Progress {
    fn plan_ready(&self, plan: &UpgradePlan, done: &[String]) {
        self.send(
            "plan_ready",
            serde_json::json!({ "first": plan.first, "second": plan.second, "done": done }),
        );
    }
    fn step_started(&self, step: &UpgradeStep, index: usize, total: usize) {
        self.send(
            "step_started",
            serde_json::json!({
                "id": step.id, "node": step.node, "index": index, "total": total,
                "command": step.command()
            }),
        );
    }
    fn step_running(&self, step: &UpgradeStep, elapsed: Duration) {
        self.send(
            "step_running",
            serde_json::json!({
                "id": step.id, "node": step.node, "elapsed_s": elapsed.as_secs_f64()
            }),
        );
    }
    fn step_finished(&self, _step: &UpgradeStep, outcome: &UpgradeStepOutcome) {
        self.send(
            "step_finished",
            serde_json::to_value(outcome).unwrap_or_default(),
        );
    }
}

/// The error as an `UpgradeError` (other families keep their own class) with `failure` set.
fn upgrade_err(py: Python<'_>, e: Error) -> PyErr {
    let failure = fspbx_ha_core::upgrade::failure_details(&e);
    let err = if e.family() == ErrorFamily::Upgrade {
        UpgradeError::new_err(e.to_string())
    } else {
        core_err(py, e)
    };
    let value = failure
        .as_ref()
        .and_then(|f| as_py(py, f).ok())
        .unwrap_or_else(|| py.None());
    let _ = err.value(py).setattr("failure", value);
    err
}

/// Runs FS PBX's multinode update procedure for the pair in `config_path` (see the stub's
/// docstring). Blocks; the GIL is released.
#[pyfunction]
#[pyo3(signature = (config_path, *, dry_run = false, first = None, restart = false, state_file = None, progress = None))]
fn upgrade(
    py: Python<'_>,
    config_path: PathBuf,
    dry_run: bool,
    first: Option<String>,
    restart: bool,
    state_file: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
) -> PyResult<PyUpgradeReport> {
    let config = ClusterConfig::load(&config_path).map_err(|e| core_err(py, e))?;
    let state_file = state_file
        .unwrap_or_else(|| fspbx_ha_core::upgrade::state_file_for(&config, Some(&config_path)));
    let opts = UpgradeOptions {
        dry_run,
        first,
        restart,
        state_file,
    };
    let observer = Progress::new(progress);
    block_on(py, async {
        fspbx_ha_core::upgrade::upgrade(&config, &opts, &observer).await
    })
    .map(|inner| PyUpgradeReport { inner })
    .map_err(|e| upgrade_err(py, e))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("UpgradeError", m.py().get_type::<UpgradeError>())?;
    m.add_class::<PyUpgradeReport>()?;
    m.add_function(wrap_pyfunction!(upgrade, m)?)?;
    Ok(())
}
