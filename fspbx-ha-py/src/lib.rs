//! Python bindings for fspbx-ha: the native module `fspbx_ha._native`, re-exported by the
//! `fspbx_ha` package. Each file translates one part of the libraries; no logic lives here.

mod check;
mod config;
mod conflicts;
mod convert;
mod dns;
mod errors;
mod failover;
mod replication;
mod runtime;
mod schema;
mod status;
mod sync;
mod upgrade;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    config::register(m)?;
    dns::register(m)?;
    check::register(m)?;
    status::register(m)?;
    failover::register(m)?;
    replication::register(m)?;
    conflicts::register(m)?;
    schema::register(m)?;
    sync::register(m)?;
    upgrade::register(m)?;
    Ok(())
}
