//! [`SyncthingClient`]: the typed REST client.

use std::sync::Arc;
use std::time::Duration;

use fspbx_ha_secret::Secret;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::model::{
    Completion, Connections, DeviceConfig, FolderConfig, FolderErrors, FolderStatus, PendingDevice,
    PendingFolder, SystemStatus, Version,
};
use crate::{DeviceId, Error, Result};

/// Default timeout of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default TCP connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client for one Syncthing daemon's REST API (`X-API-Key` authentication).
///
/// Cheap to clone (shared connection pool). Every error names the node given at construction.
/// The API key is a [`Secret`]: it goes into the `X-API-Key` header and nowhere else.
///
/// ```no_run
/// # async fn demo() -> fspbx_ha_sync::Result<()> {
/// use fspbx_ha_sync::{Secret, SyncthingClient};
/// let st = SyncthingClient::new("a", "http://127.0.0.1:8384", Secret::new("key"))?;
/// let me = st.my_id().await?;
/// for f in st.folders().await? {
///     let c = st.completion(f.id(), None).await?;
///     println!("{me} {} {:.1}%", f.id(), c.completion);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SyncthingClient {
    inner: Arc<Inner>,
}

struct Inner {
    node: String,
    base: Url,
    key: Secret,
    http: reqwest::Client,
    timeout: Duration,
}

impl std::fmt::Debug for SyncthingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncthingClient")
            .field("node", &self.inner.node)
            .field("url", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Options of a [`SyncthingClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of one request (the events long-poll adds its own poll time).
    pub timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl SyncthingClient {
    /// A client for node `node` at `base_url` (e.g. `http://127.0.0.1:8384`) with default options.
    pub fn new(node: impl Into<String>, base_url: &str, api_key: Secret) -> Result<Self> {
        Self::with_options(node, base_url, api_key, ClientOptions::default())
    }

    /// A client with explicit [`ClientOptions`].
    pub fn with_options(
        node: impl Into<String>,
        base_url: &str,
        api_key: Secret,
        options: ClientOptions,
    ) -> Result<Self> {
        let node = node.into();
        let invalid = |reason: &str| Error::InvalidUrl {
            node: node.clone(),
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let mut base = Url::parse(base_url.trim()).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("scheme must be http or https"));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(invalid(
                "credentials in the URL are not allowed; use syncthing.api_key",
            ));
        }
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(options.connect_timeout)
            // The GUI's self-signed certificate (https) is accepted only on loopback addresses,
            // which is where FS PBX's API lives (directly or at the end of an SSH forward).
            .tls_danger_accept_invalid_certs(is_loopback(&base))
            .build()
            .map_err(|e| invalid(&format!("HTTP client: {e}")))?;
        Ok(SyncthingClient {
            inner: Arc::new(Inner {
                node,
                base,
                key: api_key,
                http,
                timeout: options.timeout,
            }),
        })
    }

    /// Our name for the node (used in every error).
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    // ------------------------------------------------------------------ plumbing

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        extra_timeout: Duration,
    ) -> Result<Value> {
        let i = &self.inner;
        let url = i.base.join(path).map_err(|e| Error::InvalidUrl {
            node: i.node.clone(),
            url: i.base.to_string(),
            reason: e.to_string(),
        })?;
        let timeout = i.timeout + extra_timeout;
        let mut req = i
            .http
            .request(method.clone(), url)
            .header("X-API-Key", i.key.expose())
            .timeout(timeout);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        tracing::debug!(node = %i.node, %method, path, "syncthing request");
        // A pooled keep-alive connection the daemon closed (restart, shutdown) fails the first
        // request with "connection closed": every route we call is idempotent, so try once more
        // on a fresh connection, which then says what is really wrong (e.g. refused).
        let retry = req.try_clone();
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if !e.is_timeout() && retry.is_some() => {
                tracing::debug!(node = %i.node, error = %e, "retrying once on a fresh connection");
                retry
                    .expect("checked")
                    .send()
                    .await
                    .map_err(|e| self.send_error(&method, path, timeout, e))?
            }
            Err(e) => return Err(self.send_error(&method, path, timeout, e)),
        };
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| self.send_error(&method, path, timeout, e))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| Error::Decode {
                node: i.node.clone(),
                method: method.to_string(),
                path: path.to_owned(),
                message: format!("not JSON: {e}"),
            });
        }
        let code = status.as_u16();
        Err(match code {
            401 | 403 => Error::Unauthorized {
                node: i.node.clone(),
                url: i.base.to_string(),
                method: method.to_string(),
                path: path.to_owned(),
                status: code,
            },
            404 => Error::NotFound {
                node: i.node.clone(),
                method: method.to_string(),
                path: with_query(path, query),
                hint: None,
            },
            _ => Error::Api {
                node: i.node.clone(),
                method: method.to_string(),
                path: with_query(path, query),
                status: code,
                message: shorten(text.trim(), 400),
            },
        })
    }

    fn send_error(
        &self,
        method: &Method,
        path: &str,
        timeout: Duration,
        e: reqwest::Error,
    ) -> Error {
        let i = &self.inner;
        if e.is_timeout() {
            return Error::Timeout {
                node: i.node.clone(),
                url: i.base.to_string(),
                method: method.to_string(),
                path: path.to_owned(),
                after: timeout,
            };
        }
        let mut reason = e.to_string();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            reason = s.to_string();
            src = s.source();
        }
        Error::Transport {
            node: i.node.clone(),
            url: i.base.to_string(),
            reason,
            source: e,
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T> {
        let v = self
            .call(Method::GET, path, query, None, Duration::ZERO)
            .await?;
        self.decode(Method::GET, path, v)
    }

    fn decode<T: DeserializeOwned>(&self, method: Method, path: &str, v: Value) -> Result<T> {
        serde_json::from_value(v).map_err(|e| Error::Decode {
            node: self.inner.node.clone(),
            method: method.to_string(),
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<()> {
        self.call(method, path, &[], body, Duration::ZERO)
            .await
            .map(drop)
    }

    // ------------------------------------------------------------------ system

    /// `GET /rest/system/ping`: the API answers and accepts the key.
    pub async fn ping(&self) -> Result<()> {
        self.get::<Value>("rest/system/ping", &[]).await.map(drop)
    }

    /// `GET /rest/noauth/health` (newer versions), falling back to `/rest/system/ping` where the
    /// route does not exist (Debian's 1.19).
    pub async fn health(&self) -> Result<()> {
        match self.get::<Value>("rest/noauth/health", &[]).await {
            Ok(v) if v.get("status").and_then(Value::as_str) == Some("OK") => Ok(()),
            Ok(v) => Err(Error::Decode {
                node: self.node().to_owned(),
                method: "GET".into(),
                path: "rest/noauth/health".into(),
                message: format!("expected {{\"status\":\"OK\"}}, got {v}"),
            }),
            Err(Error::NotFound { .. }) => self.ping().await,
            Err(e) => Err(e),
        }
    }

    /// `GET /rest/system/status`.
    pub async fn system_status(&self) -> Result<SystemStatus> {
        let raw = self
            .call(Method::GET, "rest/system/status", &[], None, Duration::ZERO)
            .await?;
        let mut s: SystemStatus = self.decode(Method::GET, "rest/system/status", raw.clone())?;
        s.raw = raw;
        Ok(s)
    }

    /// This daemon's device ID (from `/rest/system/status`), validated.
    pub async fn my_id(&self) -> Result<DeviceId> {
        let s = self.system_status().await?;
        DeviceId::parse(&s.my_id, &format!("node {} (myID)", self.node()))
    }

    /// `GET /rest/system/version`.
    pub async fn version(&self) -> Result<Version> {
        self.get("rest/system/version", &[]).await
    }

    /// `GET /rest/system/connections`.
    pub async fn connections(&self) -> Result<Connections> {
        self.get("rest/system/connections", &[]).await
    }

    /// `GET /rest/system/browse?current=`: the directories the daemon sees that start with
    /// `current` (used to check that a folder path exists on the node, as the daemon's user).
    pub async fn browse(&self, current: &str) -> Result<Vec<String>> {
        let v: Value = self
            .get("rest/system/browse", &[("current", current)])
            .await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Whether `path` is an existing directory on the node (through [`browse`](Self::browse)).
    pub async fn dir_exists(&self, path: &str) -> Result<bool> {
        let path = crate::normalize_path(path);
        if path == "/" {
            return Ok(true);
        }
        let parent = match path.rfind('/') {
            Some(0) => "/".to_owned(),
            Some(i) => format!("{}/", &path[..i]),
            None => return Ok(false),
        };
        let entries = self.browse(&parent).await?;
        Ok(entries.iter().any(|e| crate::normalize_path(e) == path))
    }

    // ------------------------------------------------------------------ config

    /// `GET /rest/config`: the whole configuration.
    pub async fn config(&self) -> Result<Value> {
        self.get("rest/config", &[]).await
    }

    /// `GET /rest/config/devices`.
    pub async fn devices(&self) -> Result<Vec<DeviceConfig>> {
        self.get("rest/config/devices", &[]).await
    }

    /// `GET /rest/config/devices/{id}`.
    pub async fn device(&self, id: &DeviceId) -> Result<DeviceConfig> {
        self.get(&format!("rest/config/devices/{id}"), &[]).await
    }

    /// `PUT /rest/config/devices/{id}`: adds or replaces a device (the whole object).
    pub async fn put_device(&self, device: &DeviceConfig) -> Result<()> {
        let id = DeviceId::parse(
            device.device_id(),
            &format!("node {}: device to add", self.node()),
        )?;
        self.send(
            Method::PUT,
            &format!("rest/config/devices/{id}"),
            Some(&device.0),
        )
        .await
    }

    /// `PATCH /rest/config/devices/{id}`: changes the given fields only.
    pub async fn patch_device(&self, id: &DeviceId, patch: &Value) -> Result<()> {
        self.send(
            Method::PATCH,
            &format!("rest/config/devices/{id}"),
            Some(patch),
        )
        .await
    }

    /// `DELETE /rest/config/devices/{id}`.
    pub async fn delete_device(&self, id: &DeviceId) -> Result<()> {
        self.send(Method::DELETE, &format!("rest/config/devices/{id}"), None)
            .await
    }

    /// `GET /rest/config/folders`.
    pub async fn folders(&self) -> Result<Vec<FolderConfig>> {
        self.get("rest/config/folders", &[]).await
    }

    /// `GET /rest/config/folders/{id}`.
    pub async fn folder(&self, id: &str) -> Result<FolderConfig> {
        self.get(&format!("rest/config/folders/{}", enc(id)), &[])
            .await
    }

    /// `PUT /rest/config/folders/{id}`: adds or replaces a folder (the whole object).
    pub async fn put_folder(&self, folder: &FolderConfig) -> Result<()> {
        self.send(
            Method::PUT,
            &format!("rest/config/folders/{}", enc(folder.id())),
            Some(&folder.0),
        )
        .await
    }

    /// `PATCH /rest/config/folders/{id}`: changes the given fields only.
    pub async fn patch_folder(&self, id: &str, patch: &Value) -> Result<()> {
        self.send(
            Method::PATCH,
            &format!("rest/config/folders/{}", enc(id)),
            Some(patch),
        )
        .await
    }

    /// `DELETE /rest/config/folders/{id}`.
    pub async fn delete_folder(&self, id: &str) -> Result<()> {
        self.send(
            Method::DELETE,
            &format!("rest/config/folders/{}", enc(id)),
            None,
        )
        .await
    }

    /// `GET /rest/config/options`.
    pub async fn options(&self) -> Result<Value> {
        self.get("rest/config/options", &[]).await
    }

    /// `PUT /rest/config/options` (the whole object).
    pub async fn put_options(&self, options: &Value) -> Result<()> {
        self.send(Method::PUT, "rest/config/options", Some(options))
            .await
    }

    /// `PATCH /rest/config/options`: changes the given fields only.
    pub async fn patch_options(&self, patch: &Value) -> Result<()> {
        self.send(Method::PATCH, "rest/config/options", Some(patch))
            .await
    }

    /// `GET /rest/config/defaults/folder`: the template for new folders (None where the route
    /// does not exist).
    pub async fn default_folder(&self) -> Result<Option<FolderConfig>> {
        match self.get("rest/config/defaults/folder", &[]).await {
            Ok(f) => Ok(Some(f)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /rest/config/defaults/device`: the template for new devices (None where the route
    /// does not exist).
    pub async fn default_device(&self) -> Result<Option<DeviceConfig>> {
        match self.get("rest/config/defaults/device", &[]).await {
            Ok(d) => Ok(Some(d)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    // ------------------------------------------------------------------ cluster

    /// `GET /rest/cluster/pending/devices`: devices that knocked but are not configured.
    pub async fn pending_devices(&self) -> Result<Vec<PendingDevice>> {
        let v: Value = self.get("rest/cluster/pending/devices", &[]).await?;
        let map = v.as_object().cloned().unwrap_or_default();
        Ok(map
            .into_iter()
            .map(|(id, d)| PendingDevice {
                device_id: id,
                name: s(&d, "name"),
                address: s(&d, "address"),
                time: s(&d, "time"),
            })
            .collect())
    }

    /// `GET /rest/cluster/pending/folders`: folders offered by connected devices but not shared
    /// with them here.
    pub async fn pending_folders(&self) -> Result<Vec<PendingFolder>> {
        let v: Value = self.get("rest/cluster/pending/folders", &[]).await?;
        let mut out = Vec::new();
        for (folder, entry) in v.as_object().cloned().unwrap_or_default() {
            for (device, offer) in entry
                .get("offeredBy")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
            {
                out.push(PendingFolder {
                    folder: folder.clone(),
                    offered_by: device,
                    label: s(&offer, "label"),
                    time: s(&offer, "time"),
                });
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ db

    /// `GET /rest/db/completion`: with a device, this daemon's view of how complete that device
    /// is; without, the local device's completion.
    pub async fn completion(&self, folder: &str, device: Option<&DeviceId>) -> Result<Completion> {
        let r = match device {
            Some(d) => {
                self.get(
                    "rest/db/completion",
                    &[("folder", folder), ("device", d.as_str())],
                )
                .await
            }
            None => self.get("rest/db/completion", &[("folder", folder)]).await,
        };
        r.map_err(|e| self.folder_hint(e, folder))
    }

    /// `GET /rest/db/status`: the folder's state and counters.
    pub async fn folder_status(&self, folder: &str) -> Result<FolderStatus> {
        self.get("rest/db/status", &[("folder", folder)])
            .await
            .map_err(|e| self.folder_hint(e, folder))
    }

    /// `GET /rest/folder/errors`: items that failed to sync.
    pub async fn folder_errors(&self, folder: &str) -> Result<FolderErrors> {
        self.get("rest/folder/errors", &[("folder", folder)])
            .await
            .map_err(|e| self.folder_hint(e, folder))
    }

    /// `POST /rest/db/scan`: rescans the folder (or one sub-path) now; returns when the scan is
    /// done.
    pub async fn scan(&self, folder: &str, sub: Option<&str>) -> Result<()> {
        let mut q = vec![("folder", folder)];
        if let Some(sub) = sub {
            q.push(("sub", sub));
        }
        self.call(Method::POST, "rest/db/scan", &q, None, Duration::ZERO)
            .await
            .map(drop)
            .map_err(|e| self.folder_hint(e, folder))
    }

    /// Syncthing answers 404 or 500 "no such folder" for unknown folders: say which.
    fn folder_hint(&self, e: Error, folder: &str) -> Error {
        match e {
            Error::NotFound {
                node, method, path, ..
            } => Error::NotFound {
                node,
                method,
                path,
                hint: Some(format!(
                    "folder {folder:?} is not configured on this node; run sync apply"
                )),
            },
            Error::Api {
                node,
                method,
                path,
                message,
                ..
            } if message.contains("no such folder") => Error::NotFound {
                node,
                method,
                path,
                hint: Some(format!(
                    "folder {folder:?} is not configured on this node; run sync apply"
                )),
            },
            other => other,
        }
    }
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Percent-encodes a path segment (folder ids may contain anything but `/` is the only
/// character that would break the route).
fn enc(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn with_query(path: &str, query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{path}?{}", q.join("&"))
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_are_rejected_with_the_node() {
        for bad in ["127.0.0.1:8384", "ftp://x", "http://user:pw@h:1/"] {
            let e = SyncthingClient::new("b", bad, Secret::new("k"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("node b: Syncthing URL"), "{e}");
            assert!(!e.contains("pw@") || bad.contains("pw@"), "{e}");
        }
        let c =
            SyncthingClient::new("a", "http://127.0.0.1:8384/sub", Secret::new("sekrit")).unwrap();
        assert_eq!(c.base_url().as_str(), "http://127.0.0.1:8384/sub/");
        assert!(!format!("{c:?}").contains("sekrit"));
    }

    #[test]
    fn folder_ids_are_encoded() {
        assert_eq!(enc("fspbx-ab12"), "fspbx-ab12");
        assert_eq!(enc("a b/c"), "a%20b%2Fc");
    }
}
