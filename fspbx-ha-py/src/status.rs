//! `pair_status()` for Python: the pair at a glance, as a dict.

use pyo3::prelude::*;

use crate::config::PyClusterConfig;
use crate::runtime::block_on;

/// Reads the floating record, replication both ways and Syncthing's state (blocks; the GIL is
/// released). Returns a dict: `verdict`, `reasons`, `floating`, `replication`, `files`, each
/// part with a `state` of `ok`, `not_configured` or `unavailable`, and `reachable_slots`
/// (the answering node's slots when replication cannot be read as a pair, else None).
#[pyfunction]
fn pair_status(py: Python<'_>, config: &PyClusterConfig) -> PyResult<Py<PyAny>> {
    let status = block_on(py, fspbx_ha_core::status::pair_status(&config.inner));
    crate::convert::as_py(py, &status)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pair_status, m)?)?;
    Ok(())
}
