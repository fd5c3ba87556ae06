//! `FailoverPolicy` for Python: the library's sans-I/O policy, driven with synthetic
//! observations and a virtual clock (seconds since the policy was created).

use std::time::{Duration, Instant};

use fspbx_ha_core::failover::{
    Action, FailoverPolicy, Health, Input, NodeId, PolicySettings, Requirement,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

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

fn seconds(field: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        PyValueError::new_err(format!("{field}: expected seconds >= 0, got {s}"))
    })
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
        Ok(self.inner.handle(input, now).into_iter().map(PyAction::from).collect())
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
        self.feed(Input::ProbeRound { node: node_id(node)?, ok }, at)
    }

    /// What the floating record points at (`None`: neither node).
    #[pyo3(signature = (active, at))]
    fn floating_record(&mut self, active: Option<&str>, at: f64) -> PyResult<Vec<PyAction>> {
        let active = active.map(node_id).transpose()?;
        self.feed(Input::FloatingRecord { active }, at)
    }

    /// Replication lag into `node` in seconds (`None`: unknown).
    #[pyo3(signature = (node, lag, at))]
    fn replication_lag(&mut self, node: &str, lag: Option<f64>, at: f64) -> PyResult<Vec<PyAction>> {
        let lag = lag.map(|l| seconds("lag", l)).transpose()?;
        self.feed(Input::ReplicationLag { node: node_id(node)?, lag }, at)
    }

    /// Whether the schemas differ.
    fn schema_drift(&mut self, drift: bool, at: f64) -> PyResult<Vec<PyAction>> {
        self.feed(Input::SchemaDrift { drift }, at)
    }

    /// Whether `node`'s Syncthing folders are complete.
    fn sync_complete(&mut self, node: &str, complete: bool, at: f64) -> PyResult<Vec<PyAction>> {
        self.feed(Input::SyncComplete { node: node_id(node)?, complete }, at)
    }

    /// An operator asks to move the floating record to `to`.
    fn switchover(&mut self, to: &str, at: f64) -> PyResult<Vec<PyAction>> {
        self.feed(Input::SwitchoverRequest { to: node_id(to)? }, at)
    }

    /// The outcome of a flip the caller executed.
    fn flip_result(&mut self, to: &str, ok: bool, at: f64) -> PyResult<Vec<PyAction>> {
        self.feed(Input::FlipResult { to: node_id(to)?, ok }, at)
    }

    /// Re-evaluates at `at` without new input.
    fn tick(&mut self, at: f64) -> PyResult<Vec<PyAction>> {
        let now = self.base + seconds("at", at)?;
        Ok(self.inner.tick(now).into_iter().map(PyAction::from).collect())
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
    Ok(())
}
