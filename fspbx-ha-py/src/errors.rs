//! The Python exception hierarchy, mapped from the libraries' error families.
//!
//! ```text
//! FspbxHaError
//! ├── ConfigError      (.problems: list of (key, expected, got))
//! ├── SecretError
//! ├── SshError
//! ├── PostgresError
//! ├── ReplicationError
//! ├── LocalIoError
//! ├── DnsError (and its subclasses, see dns.rs)
//! ├── SyncError (see sync.rs)
//! └── UpgradeError (see upgrade.rs)
//! ```

use fspbx_ha_core::{Error, ErrorFamily};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

create_exception!(
    _native,
    FspbxHaError,
    PyException,
    "Base class of every fspbx_ha error."
);
create_exception!(
    _native,
    ConfigError,
    FspbxHaError,
    "The configuration is unreadable, malformed or invalid."
);
create_exception!(
    _native,
    SecretError,
    FspbxHaError,
    "A secret reference (env:/file:) could not be resolved."
);
create_exception!(
    _native,
    SshError,
    FspbxHaError,
    "SSH: keys, host keys, connection, authentication, commands."
);
create_exception!(
    _native,
    PostgresError,
    FspbxHaError,
    "PostgreSQL: connection or query."
);
create_exception!(
    _native,
    LocalIoError,
    FspbxHaError,
    "A local file could not be written."
);
create_exception!(
    _native,
    ReplicationError,
    FspbxHaError,
    "Replication refused or a step failed; the message names node, step and fix."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FspbxHaError", py.get_type::<FspbxHaError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("SecretError", py.get_type::<SecretError>())?;
    m.add("SshError", py.get_type::<SshError>())?;
    m.add("PostgresError", py.get_type::<PostgresError>())?;
    m.add("LocalIoError", py.get_type::<LocalIoError>())?;
    m.add("ReplicationError", py.get_type::<ReplicationError>())?;
    Ok(())
}

/// Converts a core error into the matching Python exception. Messages come from the libraries
/// and never contain secret values.
pub(crate) fn core_err(py: Python<'_>, e: Error) -> PyErr {
    let msg = e.to_string();
    let err = match e.family() {
        ErrorFamily::Config => ConfigError::new_err(msg),
        ErrorFamily::Secret => SecretError::new_err(msg),
        ErrorFamily::Ssh => SshError::new_err(msg),
        ErrorFamily::Postgres => PostgresError::new_err(msg),
        ErrorFamily::Io => LocalIoError::new_err(msg),
        ErrorFamily::Replication => ReplicationError::new_err(msg),
        ErrorFamily::Sync => crate::sync::SyncError::new_err(msg),
        ErrorFamily::Dns => crate::dns::DnsError::new_err(msg),
        ErrorFamily::Upgrade => crate::upgrade::UpgradeError::new_err(msg),
        _ => FspbxHaError::new_err(msg),
    };
    if let Error::ConfigInvalid { problems, .. } = &e {
        let list: Vec<Bound<'_, PyTuple>> = problems
            .iter()
            .filter_map(|p| {
                PyTuple::new(py, [p.key.as_str(), p.expected.as_str(), p.got.as_str()]).ok()
            })
            .collect();
        let _ = err.value(py).setattr("problems", list);
    } else {
        let _ = err
            .value(py)
            .setattr("problems", Vec::<(String, String, String)>::new());
    }
    err
}
