//! `ClusterConfig` and `Node` for Python.

use fspbx_ha_core::config::{ClusterConfig, NodeSpec};
use pyo3::prelude::*;

use crate::errors::core_err;

/// The cluster configuration (loaded from TOML and validated).
#[pyclass(name = "ClusterConfig", module = "fspbx_ha", frozen)]
pub(crate) struct PyClusterConfig {
    pub(crate) inner: ClusterConfig,
}

#[pymethods]
impl PyClusterConfig {
    /// Reads, parses and validates a TOML file. Raises ConfigError with `.problems`.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        ClusterConfig::load(path)
            .map(|inner| PyClusterConfig { inner })
            .map_err(|e| core_err(py, e))
    }

    /// Parses and validates TOML text.
    #[staticmethod]
    fn from_toml(py: Python<'_>, text: &str) -> PyResult<Self> {
        ClusterConfig::from_toml_str(text)
            .map(|inner| PyClusterConfig { inner })
            .map_err(|e| core_err(py, e))
    }

    /// The commented template `fspbx-ha init` writes.
    #[staticmethod]
    fn template() -> String {
        ClusterConfig::template()
    }

    /// The two nodes, primary first.
    #[getter]
    fn nodes(&self) -> Vec<PyNode> {
        self.inner
            .nodes
            .iter()
            .map(|n| PyNode { inner: n.clone() })
            .collect()
    }

    /// The node with this name, or `A`/`B`; None if there is none.
    fn node(&self, name: &str) -> Option<PyNode> {
        self.inner.node(name).map(|n| PyNode { inner: n.clone() })
    }

    /// The floating record's name.
    #[getter]
    fn floating_name(&self) -> String {
        self.inner.floating.name.clone()
    }

    /// The floating record's zone.
    #[getter]
    fn floating_zone(&self) -> String {
        self.inner.floating.zone.clone()
    }

    /// The floating record's TTL in seconds.
    #[getter]
    fn floating_ttl(&self) -> u32 {
        self.inner.floating.ttl
    }

    /// The configuration as TOML, defaults filled in (secret references as written).
    fn to_toml(&self) -> String {
        self.inner.to_toml()
    }

    /// The configuration as a JSON string (secret references as written).
    fn to_json(&self) -> PyResult<String> {
        crate::convert::to_json(&self.inner)
    }

    fn __repr__(&self) -> String {
        let names: Vec<&str> = self.inner.nodes.iter().map(|n| n.name.as_str()).collect();
        format!(
            "ClusterConfig(nodes={names:?}, floating={:?})",
            self.inner.floating.name
        )
    }
}

/// One node of the pair.
#[pyclass(name = "Node", module = "fspbx_ha", frozen)]
#[derive(Clone)]
pub(crate) struct PyNode {
    inner: NodeSpec,
}

#[pymethods]
impl PyNode {
    /// Short name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name.clone()
    }
    /// Public host name.
    #[getter]
    fn hostname(&self) -> String {
        self.inner.hostname.clone()
    }
    /// Public addresses.
    #[getter]
    fn addresses(&self) -> Vec<String> {
        self.inner.addresses.iter().map(|a| a.to_string()).collect()
    }
    /// SSH host.
    #[getter]
    fn ssh_host(&self) -> String {
        self.inner.ssh.host.clone()
    }
    /// SSH port.
    #[getter]
    fn ssh_port(&self) -> u16 {
        self.inner.ssh.port
    }
    /// PostgreSQL target as `user@host:port/dbname` (never a password).
    #[getter]
    fn postgres(&self) -> String {
        self.inner.postgres.describe()
    }
    fn __repr__(&self) -> String {
        format!(
            "Node(name={:?}, hostname={:?})",
            self.inner.name, self.inner.hostname
        )
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyClusterConfig>()?;
    m.add_class::<PyNode>()?;
    Ok(())
}
