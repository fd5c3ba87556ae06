//! Syncthing for Python: `SyncthingClient` (the typed REST client) and `SyncPair` (pairing
//! plan/apply, sync status and wait for the cluster's two daemons), with `SyncPlan`,
//! `SyncStatus` and `SyncApplyReport` results. All logic is in `fspbx_ha_sync` and
//! `fspbx_ha_core::files`.

use std::time::Duration;

use fspbx_ha_core::files::{Files, FilesOptions, FilesStatus};
use fspbx_ha_sync::{
    ApplyReport, DeviceId, EventKind, Secret, SyncPlan, SyncthingClient, WaitOptions,
};
use pyo3::create_exception;
use pyo3::prelude::*;

use crate::config::PyClusterConfig;
use crate::convert::{as_py, from_py, to_json};
use crate::errors::FspbxHaError;
use crate::runtime::block_on;

create_exception!(
    _native,
    SyncError,
    FspbxHaError,
    "Syncthing: REST API, pairing, folder problems."
);
create_exception!(
    _native,
    SyncUnauthorizedError,
    SyncError,
    "The Syncthing daemon refused the API key."
);
create_exception!(
    _native,
    SyncUnreachableError,
    SyncError,
    "The Syncthing daemon could not be reached (down, refused, timeout)."
);
create_exception!(
    _native,
    SyncTimeoutError,
    SyncError,
    "sync wait ran out of time before every folder was complete."
);

/// Maps a Syncthing error to the Python hierarchy (messages name node and folder, never a key).
fn sync_err(e: &fspbx_ha_sync::Error) -> PyErr {
    use fspbx_ha_sync::Error as E;
    let msg = e.to_string();
    match e {
        E::Unauthorized { .. } => SyncUnauthorizedError::new_err(msg),
        E::WaitTimeout { .. } => SyncTimeoutError::new_err(msg),
        e if e.is_unreachable() => SyncUnreachableError::new_err(msg),
        _ => SyncError::new_err(msg),
    }
}

fn core_err(py: Python<'_>, e: fspbx_ha_core::Error) -> PyErr {
    match &e {
        fspbx_ha_core::Error::Sync { source, .. } => sync_err(source),
        _ => crate::errors::core_err(py, e),
    }
}

fn device_id(id: &str) -> PyResult<DeviceId> {
    DeviceId::parse(id, "device_id").map_err(|e| sync_err(&e))
}

/// The typed Syncthing REST client for one daemon. The API key never leaves the
/// `X-API-Key` header.
#[pyclass(name = "SyncthingClient", module = "fspbx_ha", frozen)]
pub(crate) struct PySyncthingClient {
    inner: SyncthingClient,
}

#[pymethods]
impl PySyncthingClient {
    /// `SyncthingClient(node, url, api_key)`: `node` names the daemon in errors.
    #[new]
    fn new(node: String, url: &str, api_key: String) -> PyResult<Self> {
        let inner =
            SyncthingClient::new(node, url, Secret::new(api_key)).map_err(|e| sync_err(&e))?;
        Ok(PySyncthingClient { inner })
    }

    /// The node name.
    #[getter]
    fn node(&self) -> String {
        self.inner.node().to_owned()
    }

    /// The base URL.
    #[getter]
    fn url(&self) -> String {
        self.inner.base_url().to_string()
    }

    /// Checks the API answers and accepts the key.
    fn ping(&self, py: Python<'_>) -> PyResult<()> {
        block_on(py, self.inner.ping()).map_err(|e| sync_err(&e))
    }

    /// This daemon's device ID.
    fn my_id(&self, py: Python<'_>) -> PyResult<String> {
        block_on(py, self.inner.my_id())
            .map(|d| d.to_string())
            .map_err(|e| sync_err(&e))
    }

    /// `/rest/system/version` as a dict.
    fn version(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = block_on(py, self.inner.version()).map_err(|e| sync_err(&e))?;
        as_py(py, &v)
    }

    /// `/rest/system/status` as a dict (all fields).
    fn system_status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = block_on(py, self.inner.system_status()).map_err(|e| sync_err(&e))?;
        as_py(py, &v.raw)
    }

    /// `/rest/system/connections`: `{device_id: {connected, address, ...}}`.
    fn connections(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = block_on(py, self.inner.connections()).map_err(|e| sync_err(&e))?;
        as_py(py, &v.connections)
    }

    /// Configured devices (whole objects).
    fn devices(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = block_on(py, self.inner.devices()).map_err(|e| sync_err(&e))?;
        as_py(py, &v)
    }

    /// Adds or replaces a device (a dict with at least `deviceID`).
    fn put_device(&self, py: Python<'_>, device: &Bound<'_, PyAny>) -> PyResult<()> {
        let d = fspbx_ha_sync::model::DeviceConfig(from_py(py, device)?);
        block_on(py, self.inner.put_device(&d)).map_err(|e| sync_err(&e))
    }

    /// Changes some fields of a device.
    fn patch_device(
        &self,
        py: Python<'_>,
        device_id: &str,
        patch: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (id, p) = (self::device_id(device_id)?, from_py(py, patch)?);
        block_on(py, self.inner.patch_device(&id, &p)).map_err(|e| sync_err(&e))
    }

    /// Removes a device.
    fn delete_device(&self, py: Python<'_>, device_id: &str) -> PyResult<()> {
        let id = self::device_id(device_id)?;
        block_on(py, self.inner.delete_device(&id)).map_err(|e| sync_err(&e))
    }

    /// Configured folders (whole objects).
    fn folders(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = block_on(py, self.inner.folders()).map_err(|e| sync_err(&e))?;
        as_py(py, &v)
    }

    /// Adds or replaces a folder (a dict with at least `id` and `path`).
    fn put_folder(&self, py: Python<'_>, folder: &Bound<'_, PyAny>) -> PyResult<()> {
        let f = fspbx_ha_sync::model::FolderConfig(from_py(py, folder)?);
        block_on(py, self.inner.put_folder(&f)).map_err(|e| sync_err(&e))
    }

    /// Changes some fields of a folder.
    fn patch_folder(
        &self,
        py: Python<'_>,
        folder_id: &str,
        patch: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let p = from_py(py, patch)?;
        block_on(py, self.inner.patch_folder(folder_id, &p)).map_err(|e| sync_err(&e))
    }

    /// Removes a folder.
    fn delete_folder(&self, py: Python<'_>, folder_id: &str) -> PyResult<()> {
        block_on(py, self.inner.delete_folder(folder_id)).map_err(|e| sync_err(&e))
    }

    /// `/rest/config/options` as a dict.
    fn options(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = block_on(py, self.inner.options()).map_err(|e| sync_err(&e))?;
        as_py(py, &v)
    }

    /// Changes some options.
    fn patch_options(&self, py: Python<'_>, patch: &Bound<'_, PyAny>) -> PyResult<()> {
        let p = from_py(py, patch)?;
        block_on(py, self.inner.patch_options(&p)).map_err(|e| sync_err(&e))
    }

    /// Devices that knocked but are not configured.
    fn pending_devices(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = block_on(py, self.inner.pending_devices()).map_err(|e| sync_err(&e))?;
        as_py(py, &v)
    }

    /// Folders offered by connected devices but not shared with them here.
    fn pending_folders(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let v = block_on(py, self.inner.pending_folders()).map_err(|e| sync_err(&e))?;
        as_py(py, &v)
    }

    /// `db/completion` of the local device, or of `device` as this daemon sees it.
    #[pyo3(signature = (folder, device=None))]
    fn completion(
        &self,
        py: Python<'_>,
        folder: &str,
        device: Option<&str>,
    ) -> PyResult<Py<PyAny>> {
        let id = device.map(self::device_id).transpose()?;
        let v =
            block_on(py, self.inner.completion(folder, id.as_ref())).map_err(|e| sync_err(&e))?;
        as_py(py, &v)
    }

    /// `db/status` of a folder.
    fn folder_status(&self, py: Python<'_>, folder: &str) -> PyResult<Py<PyAny>> {
        let v = block_on(py, self.inner.folder_status(folder)).map_err(|e| sync_err(&e))?;
        as_py(py, &v)
    }

    /// Items of a folder that failed to sync.
    fn folder_errors(&self, py: Python<'_>, folder: &str) -> PyResult<Py<PyAny>> {
        let v = block_on(py, self.inner.folder_errors(folder)).map_err(|e| sync_err(&e))?;
        as_py(py, &v.errors)
    }

    /// Rescans a folder (or one sub-path) now; returns when done.
    #[pyo3(signature = (folder, sub=None))]
    fn scan(&self, py: Python<'_>, folder: &str, sub: Option<&str>) -> PyResult<()> {
        block_on(py, self.inner.scan(folder, sub)).map_err(|e| sync_err(&e))
    }

    /// One events long-poll: events after `since` (sync-related kinds), waiting up to
    /// `timeout_s` for the first. Each event is a dict with `id`, `global_id`, `time`, `data`
    /// (`data.type` is the event type; unknown types keep their raw data).
    #[pyo3(signature = (since=0, timeout_s=1.0))]
    fn events(&self, py: Python<'_>, since: u64, timeout_s: f64) -> PyResult<Py<PyAny>> {
        let wait = Duration::from_secs_f64(timeout_s.max(0.0));
        let v = block_on(py, self.inner.events(since, &EventKind::SYNC, wait))
            .map_err(|e| sync_err(&e))?;
        as_py(py, &v)
    }

    fn __repr__(&self) -> String {
        format!(
            "SyncthingClient(node={:?}, url={:?})",
            self.inner.node(),
            self.inner.base_url().as_str()
        )
    }
}

/// A pairing plan: the REST changes `apply` would make.
#[pyclass(name = "SyncPlan", module = "fspbx_ha", frozen)]
pub(crate) struct PySyncPlan {
    inner: SyncPlan,
}

#[pymethods]
impl PySyncPlan {
    /// Nothing to change.
    fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
    /// The steps as dicts (node_index, node, action {kind, ...}, why).
    #[getter]
    fn steps(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.steps)
    }
    /// One line per step.
    #[getter]
    fn summaries(&self) -> Vec<String> {
        self.inner.steps.iter().map(|s| s.summary()).collect()
    }
    /// The folders with resolved ids (id, path, label, id_source, rescan_interval_s).
    #[getter]
    fn folders(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.folders)
    }
    /// Device IDs of A and B.
    #[getter]
    fn device_ids(&self) -> Vec<String> {
        self.inner
            .device_ids
            .iter()
            .map(ToString::to_string)
            .collect()
    }
    /// The address each node's peer dials (A's, B's).
    #[getter]
    fn sync_addresses(&self) -> Vec<String> {
        self.inner.sync_addresses.to_vec()
    }
    /// The plan as JSON.
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __len__(&self) -> usize {
        self.inner.steps.len()
    }
    fn __repr__(&self) -> String {
        format!("SyncPlan({} step(s))", self.inner.steps.len())
    }
}

/// What `apply` did.
#[pyclass(name = "SyncApplyReport", module = "fspbx_ha", frozen)]
pub(crate) struct PySyncApplyReport {
    inner: ApplyReport,
}

#[pymethods]
impl PySyncApplyReport {
    /// The steps sent (dicts), empty when nothing had to change.
    #[getter]
    fn applied(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.applied)
    }
    /// The folders with resolved ids.
    #[getter]
    fn folders(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.folders)
    }
    /// Seconds taken.
    #[getter]
    fn elapsed_s(&self) -> f64 {
        self.inner.elapsed.as_secs_f64()
    }
    fn __len__(&self) -> usize {
        self.inner.applied.len()
    }
    fn __repr__(&self) -> String {
        format!(
            "SyncApplyReport({} step(s) applied)",
            self.inner.applied.len()
        )
    }
}

/// Sync status: per folder and direction, per node, conflict copies.
#[pyclass(name = "SyncStatus", module = "fspbx_ha", frozen)]
pub(crate) struct PySyncStatus {
    inner: FilesStatus,
}

#[pymethods]
impl PySyncStatus {
    /// Every folder complete both ways and both daemons readable.
    #[getter]
    fn complete(&self) -> bool {
        self.inner.sync.is_complete()
    }
    /// Both daemons connected to each other.
    #[getter]
    fn connected(&self) -> bool {
        self.inner.sync.connected()
    }
    /// Lowest completion percent over all folders and directions.
    #[getter]
    fn completion(&self) -> f64 {
        self.inner.sync.completion()
    }
    /// One line: in sync, or what is pending.
    #[getter]
    fn summary(&self) -> String {
        self.inner.sync.summary()
    }
    /// Per node: node, device_id, version, error, peer_connected, peer_address.
    #[getter]
    fn nodes(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.sync.nodes)
    }
    /// Per folder: id, path, directions (from, to, completion, need_bytes, need_items, ...).
    #[getter]
    fn folders(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.sync.folders)
    }
    /// Per node: node, count of `*.sync-conflict-*` files (None when not counted), error.
    #[getter]
    fn conflicts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        as_py(py, &self.inner.conflicts)
    }
    /// The status as JSON.
    fn to_json(&self) -> PyResult<String> {
        to_json(&self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "SyncStatus(complete={}, {})",
            self.inner.sync.is_complete(),
            self.inner.sync.summary()
        )
    }
}

/// The cluster's two Syncthing daemons (through SSH forwards when `via_ssh`).
#[pyclass(name = "SyncPair", module = "fspbx_ha", frozen)]
pub(crate) struct PySyncPair {
    inner: Files,
}

#[pymethods]
impl PySyncPair {
    /// Connects to both nodes' daemons as `config` says. `ssh=False` skips SSH where the API
    /// is reached directly (no path check over SSH, no conflict count); `hardening` turns off
    /// discovery, relays and NAT; `path_prefix` (A's, B's) moves every folder under a
    /// directory on that node (trees mounted elsewhere).
    #[staticmethod]
    #[pyo3(signature = (config, ssh=true, hardening=true, path_prefix=None))]
    fn connect(
        py: Python<'_>,
        config: &PyClusterConfig,
        ssh: bool,
        hardening: bool,
        path_prefix: Option<(Option<String>, Option<String>)>,
    ) -> PyResult<Self> {
        let (a, b) = path_prefix.unwrap_or_default();
        let options = FilesOptions {
            ssh,
            hardening,
            path_prefix: [a, b],
        };
        let cfg = config.inner.clone();
        let inner = block_on(py, async move { Files::connect(&cfg, options).await })
            .map_err(|e| core_err(py, e))?;
        Ok(PySyncPair { inner })
    }

    /// The pairing plan (nothing changes).
    fn plan(&self, py: Python<'_>) -> PyResult<PySyncPlan> {
        let inner = block_on(py, self.inner.plan()).map_err(|e| core_err(py, e))?;
        Ok(PySyncPlan { inner })
    }

    /// Pairs the daemons; a second call applies nothing.
    fn apply(&self, py: Python<'_>) -> PyResult<PySyncApplyReport> {
        let inner = block_on(py, self.inner.apply()).map_err(|e| core_err(py, e))?;
        Ok(PySyncApplyReport { inner })
    }

    /// The sync status (never raises for a daemon that is down: see `nodes[i]["error"]`).
    fn status(&self, py: Python<'_>) -> PyResult<PySyncStatus> {
        let inner = block_on(py, self.inner.status()).map_err(|e| core_err(py, e))?;
        Ok(PySyncStatus { inner })
    }

    /// Blocks until every folder is complete both ways; `progress(summary: str)` is called
    /// with each status read. Raises SyncTimeoutError after `timeout_s`.
    #[pyo3(signature = (timeout_s=600.0, progress=None, rescan=true))]
    fn wait(
        &self,
        py: Python<'_>,
        timeout_s: f64,
        progress: Option<Py<PyAny>>,
        rescan: bool,
    ) -> PyResult<PySyncStatus> {
        let mut options = WaitOptions::new(Duration::from_secs_f64(timeout_s.max(0.0)));
        options.rescan = rescan;
        let fut = self.inner.wait(&options, |s| {
            if let Some(cb) = &progress {
                let summary = s.summary();
                Python::attach(|py| {
                    if let Err(e) = cb.call1(py, (summary,)) {
                        e.print(py);
                    }
                });
            }
        });
        block_on(py, fut).map_err(|e| core_err(py, e))?;
        let inner = block_on(py, self.inner.status()).map_err(|e| core_err(py, e))?;
        Ok(PySyncStatus { inner })
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SyncError", py.get_type::<SyncError>())?;
    m.add(
        "SyncUnauthorizedError",
        py.get_type::<SyncUnauthorizedError>(),
    )?;
    m.add(
        "SyncUnreachableError",
        py.get_type::<SyncUnreachableError>(),
    )?;
    m.add("SyncTimeoutError", py.get_type::<SyncTimeoutError>())?;
    m.add_class::<PySyncthingClient>()?;
    m.add_class::<PySyncPlan>()?;
    m.add_class::<PySyncApplyReport>()?;
    m.add_class::<PySyncStatus>()?;
    m.add_class::<PySyncPair>()?;
    Ok(())
}
