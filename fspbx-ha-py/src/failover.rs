//! `FailoverPolicy` for Python: the library's sans-I/O policy, driven with synthetic
//! observations and a virtual clock (seconds since the policy was created); and `Controller`,
//! the library's failover controller, run for a while or in the background.

use std::time::Instant;

use fspbx_ha_core::failover::{
    Action, FailoverPolicy, Health, Input, NodeId, PolicySettings, Requirement,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::convert::seconds;

fn node_id(name: &str) -> PyResult<NodeId> {
    match name.to_ascii_lowercase().as_str() {
        "a" => Ok(NodeId::A),
        "b" => Ok(NodeId::B),
        _ => Err(PyValueError::new_err(format!(
            "node: expected \"a\" or \"b\", got {name:?}"
        ))),
    }
}

fn node_name(n: NodeId) -> &'static str {
    match n {
        NodeId::A => "a",
        NodeId::B => "b",
    }
}

fn requirement(field: &str, value: &str) -> PyResult<Requirement> {
    match value {
        "hard" => Ok(Requirement::Hard),
        "soft" => Ok(Requirement::Soft),
        "off" => Ok(Requirement::Off),
        _ => Err(PyValueError::new_err(format!(
            "{field}: expected \"hard\", \"soft\" or \"off\", got {value:?}"
        ))),
    }
}

/// One action the policy asks for.
#[pyclass(name = "PolicyAction", module = "fspbx_ha", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct PyAction {
    /// `flip_dns`, `fence` or `notify`.
    kind: &'static str,
    /// flip_dns: the target node.
    to: Option<&'static str>,
    /// flip_dns: the node the record is expected to hold now (compare-and-swap guard).
    from_node: Option<&'static str>,
    /// fence: the node to fence.
    node: Option<&'static str>,
    /// notify: `info`, `warning` or `critical`.
    level: Option<&'static str>,
    /// flip_dns: why; notify: the message.
    message: Option<String>,
}

#[pymethods]
impl PyAction {
    fn __repr__(&self) -> String {
        match self.kind {
            "flip_dns" => format!(
                "PolicyAction(flip_dns {:?} -> {:?}: {})",
                self.from_node,
                self.to.unwrap_or("?"),
                self.message.as_deref().unwrap_or("")
            ),
            "fence" => format!("PolicyAction(fence {})", self.node.unwrap_or("?")),
            _ => format!(
                "PolicyAction(notify {}: {})",
                self.level.unwrap_or("?"),
                self.message.as_deref().unwrap_or("")
            ),
        }
    }
}

impl From<Action> for PyAction {
    fn from(a: Action) -> Self {
        let empty = PyAction {
            kind: "notify",
            to: None,
            from_node: None,
            node: None,
            level: None,
            message: None,
        };
        match a {
            Action::FlipDns { from, to, reason } => PyAction {
                kind: "flip_dns",
                to: Some(node_name(to)),
                from_node: from.map(node_name),
                message: Some(reason),
                ..empty
            },
            Action::Fence { node } => PyAction {
                kind: "fence",
                node: Some(node_name(node)),
                ..empty
            },
            Action::Notify { level, message } => PyAction {
                level: Some(level),
                message: Some(message),
                ..empty
            },
        }
    }
}

/// The failover decision state machine. Feed it observations with the time `at` (seconds since
/// creation, never decreasing) and execute the actions it returns.
#[pyclass(name = "FailoverPolicy", module = "fspbx_ha")]
pub(crate) struct PyFailoverPolicy {
    inner: FailoverPolicy,
    base: Instant,
}

impl PyFailoverPolicy {
    fn feed(&mut self, input: Input, at: f64) -> PyResult<Vec<PyAction>> {
        let now = self.base + seconds("at", at)?;
        Ok(self
            .inner
            .handle(input, now)
            .into_iter()
            .map(PyAction::from)
            .collect())
    }
}

#[pymethods]
impl PyFailoverPolicy {
    #[new]
    #[pyo3(signature = (*, rise = 2, fall = 3, hold_down = 300.0, auto_failback = false,
        preferred = "a", max_replication_lag = 10.0, lag = "hard", schema = "hard",
        sync = "soft", flip_timeout = 30.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        rise: u32,
        fall: u32,
        hold_down: f64,
        auto_failback: bool,
        preferred: &str,
        max_replication_lag: f64,
        lag: &str,
        schema: &str,
        sync: &str,
        flip_timeout: f64,
    ) -> PyResult<Self> {
        if rise == 0 || fall == 0 {
            return Err(PyValueError::new_err("rise and fall: expected 1 or more"));
        }
        let settings = PolicySettings {
            rise,
            fall,
            hold_down: seconds("hold_down", hold_down)?,
            auto_failback,
            preferred: node_id(preferred)?,
            max_replication_lag: seconds("max_replication_lag", max_replication_lag)?,
            lag_requirement: requirement("lag", lag)?,
            schema_requirement: requirement("schema", schema)?,
            sync_requirement: requirement("sync", sync)?,
            flip_timeout: seconds("flip_timeout", flip_timeout)?,
        };
        Ok(PyFailoverPolicy {
            inner: FailoverPolicy::new(settings),
            base: Instant::now(),
        })
    }

    /// One round of `node`'s required probes (`ok` when all answered).
    fn probe_round(&mut self, node: &str, ok: bool, at: f64) -> PyResult<Vec<PyAction>> {
        self.feed(
            Input::ProbeRound {
                node: node_id(node)?,
                ok,
            },
            at,
        )
    }

    /// What the floating record points at (`None`: neither node).
    #[pyo3(signature = (active, at))]
    fn floating_record(&mut self, active: Option<&str>, at: f64) -> PyResult<Vec<PyAction>> {
        let active = active.map(node_id).transpose()?;
        self.feed(Input::FloatingRecord { active }, at)
    }

    /// Replication lag into `node` in seconds (`None`: unknown).
    #[pyo3(signature = (node, lag, at))]
    fn replication_lag(
        &mut self,
        node: &str,
        lag: Option<f64>,
        at: f64,
    ) -> PyResult<Vec<PyAction>> {
        let lag = lag.map(|l| seconds("lag", l)).transpose()?;
        self.feed(
            Input::ReplicationLag {
                node: node_id(node)?,
                lag,
            },
            at,
        )
    }

    /// Whether the schemas differ.
    fn schema_drift(&mut self, drift: bool, at: f64) -> PyResult<Vec<PyAction>> {
        self.feed(Input::SchemaDrift { drift }, at)
    }

    /// Whether `node`'s Syncthing folders are complete.
    fn sync_complete(&mut self, node: &str, complete: bool, at: f64) -> PyResult<Vec<PyAction>> {
        self.feed(
            Input::SyncComplete {
                node: node_id(node)?,
                complete,
            },
            at,
        )
    }

    /// An operator asks to move the floating record to `to`.
    fn switchover(&mut self, to: &str, at: f64) -> PyResult<Vec<PyAction>> {
        self.feed(Input::SwitchoverRequest { to: node_id(to)? }, at)
    }

    /// The outcome of a flip the caller executed.
    fn flip_result(&mut self, to: &str, ok: bool, at: f64) -> PyResult<Vec<PyAction>> {
        self.feed(
            Input::FlipResult {
                to: node_id(to)?,
                ok,
            },
            at,
        )
    }

    /// Re-evaluates at `at` without new input.
    fn tick(&mut self, at: f64) -> PyResult<Vec<PyAction>> {
        let now = self.base + seconds("at", at)?;
        Ok(self
            .inner
            .tick(now)
            .into_iter()
            .map(PyAction::from)
            .collect())
    }

    /// `up`, `down` or `unknown`.
    fn health(&self, node: &str) -> PyResult<&'static str> {
        Ok(match self.inner.health(node_id(node)?) {
            Health::Up => "up",
            Health::Down => "down",
            Health::Unknown => "unknown",
        })
    }

    /// The active node as the floating record says, or None.
    #[getter]
    fn active(&self) -> Option<&'static str> {
        self.inner.active().map(node_name)
    }

    /// The target of a flip asked for and not answered yet, or None.
    #[getter]
    fn pending_flip(&self) -> Option<&'static str> {
        self.inner.pending_flip().map(node_name)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyFailoverPolicy>()?;
    m.add_class::<PyAction>()?;
    m.add_class::<controller::PyController>()?;
    m.add_function(wrap_pyfunction!(controller::failover_status, m)?)?;
    Ok(())
}

/// `Controller` for Python: the library's failover controller on the shared runtime.
mod controller {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use fspbx_ha_core::config::ClusterConfig;
    use fspbx_ha_core::failover::{Controller, ControllerStatus, status_report};
    use pyo3::exceptions::{PyRuntimeError, PyValueError};
    use pyo3::prelude::*;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::node_id;
    use crate::config::PyClusterConfig;
    use crate::convert::as_py;
    use crate::errors::core_err;
    use crate::runtime::{block_on, runtime};

    type Run = (
        oneshot::Sender<()>,
        JoinHandle<fspbx_ha_core::Result<ControllerStatus>>,
    );

    /// The failover controller: probes both nodes, feeds the policy, flips the floating record
    /// (compare-and-swap), fences, notifies and audits. Run it for a while with `run_for`, or
    /// in the background with `start` / `stop`.
    #[pyclass(name = "Controller", module = "fspbx_ha")]
    pub(crate) struct PyController {
        config: ClusterConfig,
        status: Option<Arc<Mutex<ControllerStatus>>>,
        metrics_addr: Option<String>,
        running: Option<Run>,
    }

    impl PyController {
        fn build(&mut self, py: Python<'_>) -> PyResult<Controller> {
            if self.running.is_some() {
                return Err(PyRuntimeError::new_err(
                    "the controller is running: call stop() first",
                ));
            }
            let config = self.config.clone();
            let c = block_on(py, Controller::new(config)).map_err(|e| core_err(py, e))?;
            self.status = Some(c.status_handle());
            self.metrics_addr = c.metrics_addr().map(|a| a.to_string());
            Ok(c)
        }
    }

    #[pymethods]
    impl PyController {
        /// A controller for `config`; `audit_log` and `metrics_listen` (`"127.0.0.1:0"` picks a
        /// free port) override `[failover]`.
        #[new]
        #[pyo3(signature = (config, *, audit_log = None, metrics_listen = None))]
        fn new(
            config: &PyClusterConfig,
            audit_log: Option<std::path::PathBuf>,
            metrics_listen: Option<&str>,
        ) -> PyResult<Self> {
            let mut config = config.inner.clone();
            if let Some(p) = audit_log {
                config.failover.audit_log = p;
            }
            if let Some(m) = metrics_listen {
                config.failover.metrics_listen = Some(m.parse().map_err(|_| {
                    PyValueError::new_err(format!(
                        "metrics_listen: expected ip:port such as 127.0.0.1:9187, got {m:?}"
                    ))
                })?);
            }
            Ok(PyController {
                config,
                status: None,
                metrics_addr: None,
                running: None,
            })
        }

        /// Runs the controller for `seconds` (blocks; the GIL is released) and returns its
        /// final status as a dict.
        fn run_for(&mut self, py: Python<'_>, seconds: f64) -> PyResult<Py<PyAny>> {
            let d = crate::convert::seconds("seconds", seconds)?;
            let c = self.build(py)?;
            let status = block_on(py, c.run(async move { tokio::time::sleep(d).await }))
                .map_err(|e| core_err(py, e))?;
            as_py(py, &status)
        }

        /// Starts the controller in the background (returns at once).
        fn start(&mut self, py: Python<'_>) -> PyResult<()> {
            let c = self.build(py)?;
            let (tx, rx) = oneshot::channel::<()>();
            let task = runtime().spawn(c.run(async {
                let _ = rx.await;
            }));
            self.running = Some((tx, task));
            Ok(())
        }

        /// Stops a started controller and returns its final status as a dict.
        fn stop(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
            let Some((tx, task)) = self.running.take() else {
                return Err(PyRuntimeError::new_err("the controller is not running"));
            };
            let _ = tx.send(());
            let joined = block_on(py, async {
                tokio::time::timeout(Duration::from_secs(30), task).await
            });
            let status = match joined {
                Ok(Ok(r)) => r.map_err(|e| core_err(py, e))?,
                Ok(Err(e)) => return Err(PyRuntimeError::new_err(format!("controller task: {e}"))),
                Err(_) => {
                    return Err(PyRuntimeError::new_err(
                        "the controller did not stop within 30s",
                    ));
                }
            };
            as_py(py, &status)
        }

        /// Whether it runs in the background.
        #[getter]
        fn running(&self) -> bool {
            self.running.as_ref().is_some_and(|(_, t)| !t.is_finished())
        }

        /// The current (or last) status as a dict: rounds, active node, nodes' health and last
        /// observations, flips, fences, last alert. None before the first start.
        #[getter]
        fn status(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
            self.status
                .as_ref()
                .map(|s| {
                    let snapshot = s.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    as_py(py, &snapshot)
                })
                .transpose()
        }

        /// Where `/metrics` and `/health` are served (`ip:port`), once started.
        #[getter]
        fn metrics_addr(&self) -> Option<String> {
            self.metrics_addr.clone()
        }

        /// The audit log's path.
        #[getter]
        fn audit_log(&self) -> std::path::PathBuf {
            self.config.failover.audit_log.clone()
        }

        /// A planned move of the floating record to `to` (`"a"` or `"b"`): measures both nodes,
        /// asks the policy, waits until `to` has caught up (heartbeat), moves its sequences and
        /// flips unless `dry_run`. Returns a dict (`outcome`: `flipped`, `would_flip` or
        /// `already_active`; `steps`: each step with its status and detail); a refusal raises
        /// FspbxHaError.
        #[pyo3(signature = (to, *, dry_run = false, fence = false))]
        fn switchover(
            &mut self,
            py: Python<'_>,
            to: &str,
            dry_run: bool,
            fence: bool,
        ) -> PyResult<Py<PyAny>> {
            let to = node_id(to)?;
            let mut c = self.build(py)?;
            let report =
                block_on(py, c.switchover(to, dry_run, fence)).map_err(|e| core_err(py, e))?;
            as_py(py, &report)
        }
    }

    /// `failover status` as a dict: the last `last` audit records, the active node, the
    /// controller's /health, and the `registrations` and `calls` samples taken on the new
    /// active node since the last flip (blocks; the GIL is released).
    #[pyfunction]
    #[pyo3(signature = (config, *, last = 20))]
    pub(crate) fn failover_status(
        py: Python<'_>,
        config: &PyClusterConfig,
        last: usize,
    ) -> PyResult<Py<PyAny>> {
        let report =
            block_on(py, status_report(&config.inner, last)).map_err(|e| core_err(py, e))?;
        as_py(py, &report)
    }
}
