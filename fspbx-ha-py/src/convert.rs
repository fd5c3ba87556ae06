//! Values crossing the boundary: library types (anything `Serialize`) as Python objects and as
//! JSON text, Python dicts/lists as library types, seconds as `Duration`. Every binding file
//! converts here, so all of them give Python the same shapes.

use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors::FspbxHaError;

/// A serializable value as Python objects (dict, list, str, int, float, bool, None), through
/// JSON: integers keep their full range and dicts keep the field order.
pub(crate) fn as_py<T: Serialize + ?Sized>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    let text = to_json(value)?;
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// A serializable value as JSON text.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| FspbxHaError::new_err(e.to_string()))
}

/// A Python dict/list (anything `json.dumps` takes) as a library type; ValueError when it does
/// not have the type's shape.
pub(crate) fn from_py<T: DeserializeOwned>(
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
) -> PyResult<T> {
    let text: String = py
        .import("json")?
        .call_method1("dumps", (value,))?
        .extract()?;
    serde_json::from_str(&text).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// `s` seconds as a `Duration`; ValueError naming `field` when negative or not finite.
pub(crate) fn seconds(field: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| PyValueError::new_err(format!("{field}: expected seconds >= 0, got {s}")))
}

/// A Python callable (or None) fed event dicts, for long runs' `progress=` argument.
/// Exceptions it raises are printed and ignored: they must not break a half-done run.
pub(crate) struct Progress(Option<Py<PyAny>>);

impl Progress {
    /// Wraps the `progress=` argument.
    pub(crate) fn new(callback: Option<Py<PyAny>>) -> Progress {
        Progress(callback)
    }

    /// Calls the callable with `value` (an object) plus `"event": event`.
    pub(crate) fn send(&self, event: &str, mut value: serde_json::Value) {
        let Some(cb) = &self.0 else { return };
        if let Some(o) = value.as_object_mut() {
            o.insert("event".into(), event.into());
        }
        Python::attach(|py| match as_py(py, &value) {
            Ok(arg) => {
                if let Err(e) = cb.call1(py, (arg,)) {
                    e.print(py);
                }
            }
            Err(e) => e.print(py),
        });
    }
}
