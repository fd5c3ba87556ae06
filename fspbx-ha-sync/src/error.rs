//! The one error type of `fspbx-ha-sync`.
//!
//! Every variant names the node (our name for the daemon, e.g. `a`) and, where it applies, the
//! folder and the REST route. No variant carries the API key: it only ever travels in the
//! `X-API-Key` header.

use std::time::Duration;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of `fspbx-ha-sync`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configured base URL is not an absolute `http://` or `https://` URL.
    #[error(
        "node {node}: Syncthing URL {url:?} is not usable ({reason}); expected e.g. http://127.0.0.1:8384"
    )]
    InvalidUrl {
        /// Node name.
        node: String,
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The daemon refused the API key (HTTP 401/403).
    #[error(
        "node {node}: Syncthing at {url} refused the API key ({method} {path} -> HTTP {status}); \
         check syncthing.api_key against <gui><apikey> in the node's config.xml"
    )]
    Unauthorized {
        /// Node name.
        node: String,
        /// Base URL (never the key).
        url: String,
        /// HTTP method.
        method: String,
        /// REST route.
        path: String,
        /// 401 or 403.
        status: u16,
    },
    /// The route or object does not exist (HTTP 404).
    #[error(
        "node {node}: {method} {path}: not found (HTTP 404){}",
        hint_suffix(hint)
    )]
    NotFound {
        /// Node name.
        node: String,
        /// HTTP method.
        method: String,
        /// REST route, with the object id.
        path: String,
        /// What the caller may do about it, if known.
        hint: Option<String>,
    },
    /// The daemon answered with another error status.
    #[error("node {node}: {method} {path} failed with HTTP {status}: {message}")]
    Api {
        /// Node name.
        node: String,
        /// HTTP method.
        method: String,
        /// REST route.
        path: String,
        /// HTTP status.
        status: u16,
        /// The body Syncthing sent (trimmed, shortened).
        message: String,
    },
    /// The daemon could not be reached (refused, reset, DNS, TLS...).
    #[error(
        "node {node}: cannot reach Syncthing at {url} ({reason}); check that syncthing runs \
         on the node and that syncthing.url is right"
    )]
    Transport {
        /// Node name.
        node: String,
        /// Base URL.
        url: String,
        /// The innermost cause, e.g. `Connection refused (os error 111)`.
        reason: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// A request did not complete in time.
    #[error("node {node}: {method} {path} on {url} did not answer within {after:?}")]
    Timeout {
        /// Node name.
        node: String,
        /// Base URL.
        url: String,
        /// HTTP method.
        method: String,
        /// REST route.
        path: String,
        /// The timeout.
        after: Duration,
    },
    /// The daemon's answer could not be decoded.
    #[error("node {node}: unexpected answer to {method} {path}: {message}")]
    Decode {
        /// Node name.
        node: String,
        /// HTTP method.
        method: String,
        /// REST route.
        path: String,
        /// What did not fit.
        message: String,
    },
    /// A device ID is not a Syncthing device ID.
    #[error(
        "{context}: {given:?} is not a Syncthing device ID ({reason}); it looks like \
         XXXXXXX-XXXXXXX-XXXXXXX-XXXXXXX-XXXXXXX-XXXXXXX-XXXXXXX-XXXXXXX (syncthing --device-id)"
    )]
    MalformedDeviceId {
        /// Where it came from (e.g. `node b`, `nodes[1].syncthing.device_id`).
        context: String,
        /// The text given.
        given: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Both endpoints are the same Syncthing device.
    #[error(
        "nodes {a} and {b} are the same Syncthing device {device_id}: check both syncthing.url values"
    )]
    SameDevice {
        /// First node.
        a: String,
        /// Second node.
        b: String,
        /// The shared device ID.
        device_id: String,
    },
    /// No address could be found at which the peer reaches this node's sync listener.
    #[error(
        "node {node}: cannot tell where its peer should connect (listen addresses: {}); set the \
         node's peer address or an explicit tcp://IP:PORT listen address",
        listen.join(", ")
    )]
    NoSyncAddress {
        /// Node name.
        node: String,
        /// The daemon's listen addresses.
        listen: Vec<String>,
    },
    /// The two nodes share the same path under different folder ids.
    #[error(
        "folder {path}: node {node_a} shares it as {id_a:?} but node {node_b} as {id_b:?}; set \
         folders[].id to the id to keep (and remove the other folder on its node)"
    )]
    FolderIdMismatch {
        /// The folder path.
        path: String,
        /// First node.
        node_a: String,
        /// Its folder id.
        id_a: String,
        /// Second node.
        node_b: String,
        /// Its folder id.
        id_b: String,
    },
    /// A folder id is already used on a node for another path.
    #[error(
        "node {node}: folder id {folder:?} is already used for {existing_path}, not {wanted_path}; \
         choose another folders[].id or fix the folder on the node"
    )]
    FolderIdConflict {
        /// Node name.
        node: String,
        /// Folder id.
        folder: String,
        /// The path the node has for it.
        existing_path: String,
        /// The path we want.
        wanted_path: String,
    },
    /// The daemon cannot use a folder (path missing, not a directory, not writable, ...).
    #[error(
        "node {node}: folder {folder:?} ({path}) is not usable: {message}; create the \
         directory on the node and make it writable by the Syncthing user"
    )]
    FolderUnusable {
        /// Node name.
        node: String,
        /// Folder id.
        folder: String,
        /// Folder path.
        path: String,
        /// What Syncthing (or the path check) said.
        message: String,
    },
    /// `wait` ran out of time before every folder was complete both ways.
    #[error("sync not complete after {after:?}: {pending}")]
    WaitTimeout {
        /// How long we waited.
        after: Duration,
        /// What was still incomplete, e.g. `recordings a->b 97.5% (12 items, 3.1 MB)`.
        pending: String,
    },
    /// After apply, a re-plan still found steps (something changed the config concurrently).
    #[error(
        "apply did not converge: {remaining} step(s) still planned after applying; first: {first}"
    )]
    NotConverged {
        /// How many steps remain.
        remaining: usize,
        /// The first remaining step.
        first: String,
    },
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_deref()
        .map(|h| format!("; {h}"))
        .unwrap_or_default()
}

impl Error {
    /// The node the error concerns, if any.
    pub fn node(&self) -> Option<&str> {
        use Error::*;
        match self {
            InvalidUrl { node, .. }
            | Unauthorized { node, .. }
            | NotFound { node, .. }
            | Api { node, .. }
            | Transport { node, .. }
            | Timeout { node, .. }
            | Decode { node, .. }
            | NoSyncAddress { node, .. }
            | FolderIdConflict { node, .. }
            | FolderUnusable { node, .. } => Some(node),
            SameDevice { a, .. } => Some(a),
            FolderIdMismatch { node_a, .. } => Some(node_a),
            MalformedDeviceId { .. } | WaitTimeout { .. } | NotConverged { .. } => None,
        }
    }

    /// Whether the daemon could not be reached at all (down, refused, timed out): the error a
    /// caller retries after a restart.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Transport { .. } | Error::Timeout { .. })
    }
}
