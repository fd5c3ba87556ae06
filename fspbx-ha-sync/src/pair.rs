//! [`SyncPair`]: two daemons, observed, planned, applied, watched.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::plan::{self, Action, Observed, PairIntent, PlannedFolder, Step, SyncPlan};
use crate::status::{self, FolderSnapshot, NodeSnapshot, SyncStatus};
use crate::{Error, EventKind, Result, SyncthingClient};

/// Two Syncthing daemons and what we want of them.
#[derive(Debug, Clone)]
pub struct SyncPair {
    clients: [SyncthingClient; 2],
    intent: PairIntent,
}

/// Progress of [`SyncPair::apply_with`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ApplyEvent<'a> {
    /// The plan is known.
    Planned(&'a SyncPlan),
    /// A step is about to be sent.
    Applying(&'a Step),
    /// A step was accepted by the daemon.
    Applied(&'a Step),
    /// Waiting for the daemons to start the folders and report their state.
    Verifying,
}

/// What [`SyncPair::apply`] did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyReport {
    /// The steps sent, in order (empty when the pair was already as wanted).
    pub applied: Vec<Step>,
    /// The folders with their resolved ids.
    pub folders: Vec<PlannedFolder>,
    /// How long it took.
    pub elapsed: Duration,
}

/// How [`SyncPair::wait`] waits.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    /// Give up after this long.
    pub timeout: Duration,
    /// Longest time between two status reads.
    pub poll: Duration,
    /// Rescan every folder on both nodes first, so changes the watcher has not reported yet
    /// are included (Syncthing's watcher waits `fsWatcherDelayS`, 10 s by default).
    pub rescan: bool,
    /// Between status reads, long-poll both daemons' event streams and read again as soon as
    /// either reports a sync event (FolderSummary, FolderCompletion, StateChanged, device
    /// (dis)connected), `poll` at the latest. Off: sleep `poll` between reads.
    pub events: bool,
}

impl WaitOptions {
    /// `timeout`, event-driven with a status read at least every second, rescanning first.
    pub fn new(timeout: Duration) -> Self {
        WaitOptions {
            timeout,
            poll: Duration::from_secs(1),
            rescan: true,
            events: true,
        }
    }
}

/// Shortest gap between two status reads of an event-driven wait (events come in bursts).
const MIN_READ_GAP: Duration = Duration::from_millis(20);

/// How long apply waits for a new folder to report a state.
const FOLDER_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a fresh pairing waits for the second node's dial before setting the first node's
/// address for its peer anyway.
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl SyncPair {
    /// A pair of clients (node A, node B) and the intent.
    pub fn new(clients: [SyncthingClient; 2], intent: PairIntent) -> Self {
        SyncPair { clients, intent }
    }

    /// The two clients.
    pub fn clients(&self) -> &[SyncthingClient; 2] {
        &self.clients
    }

    /// The intent.
    pub fn intent(&self) -> &PairIntent {
        &self.intent
    }

    fn names(&self) -> [&str; 2] {
        [
            self.intent.nodes[0].node.as_str(),
            self.intent.nodes[1].node.as_str(),
        ]
    }

    /// Reads what each daemon holds (both at once).
    pub async fn observe(&self) -> Result<[Observed; 2]> {
        let (a, b) = tokio::join!(observe(&self.clients[0]), observe(&self.clients[1]));
        Ok([a?, b?])
    }

    /// The plan for the daemons as they are now.
    pub async fn plan(&self) -> Result<SyncPlan> {
        let [a, b] = self.observe().await?;
        plan::plan(&self.intent, [&a, &b])
    }

    /// Plans and applies; a second run finds nothing to do.
    pub async fn apply(&self) -> Result<ApplyReport> {
        self.apply_with(|_| {}).await
    }

    /// [`apply`](Self::apply) with progress events.
    ///
    /// Before changing anything, the path of every folder to be added is checked on its node
    /// (through the daemon's directory browser): a missing directory fails with
    /// [`Error::FolderUnusable`] naming node and folder. After the steps, the plan is computed
    /// again and must be empty ([`Error::NotConverged`] otherwise), and every folder must leave
    /// the `error` state ([`Error::FolderUnusable`] with Syncthing's message otherwise). A run
    /// interrupted by a daemon restart is resumed by running it again.
    pub async fn apply_with(
        &self,
        mut progress: impl FnMut(ApplyEvent<'_>),
    ) -> Result<ApplyReport> {
        let started = Instant::now();
        let [a, b] = self.observe().await?;
        let plan = plan::plan(&self.intent, [&a, &b])?;
        progress(ApplyEvent::Planned(&plan));
        for step in &plan.steps {
            if let Action::AddFolder {
                folder_id, path, ..
            } = &step.action
            {
                let client = &self.clients[step.node_index];
                if !client.dir_exists(path).await? {
                    return Err(Error::FolderUnusable {
                        node: step.node.clone(),
                        folder: folder_id.clone(),
                        path: path.clone(),
                        message: "the directory does not exist on the node".into(),
                    });
                }
            }
        }
        // Fresh pairing: when both daemons learn each other at the same moment, both dial at
        // once and Syncthing 1.19 may drop both connections as duplicates, leaving the pair
        // unconnected until its next connection loop (measured: up to 20 s). So the first node
        // learns its peer without an address (it cannot dial: discovery is off), the second
        // dials it, and the address is set once they are connected.
        let fresh = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::AddDevice { .. }))
            .count()
            == 2;
        let mut deferred = None;
        for step in &plan.steps {
            progress(ApplyEvent::Applying(step));
            match &step.action {
                Action::AddDevice { device_id, config } if fresh && deferred.is_none() => {
                    let mut quiet = config.clone();
                    quiet.0["addresses"] = serde_json::json!(["dynamic"]);
                    self.clients[step.node_index].put_device(&quiet).await?;
                    let patch = serde_json::json!({ "addresses": config.0["addresses"].clone() });
                    deferred = Some((step.node_index, device_id.clone(), patch));
                }
                _ => execute(&self.clients[step.node_index], step).await?,
            }
            progress(ApplyEvent::Applied(step));
        }
        if let Some((n, peer, patch)) = deferred {
            wait_connected(&self.clients[n], &peer, PEER_CONNECT_TIMEOUT).await;
            self.clients[n].patch_device(&peer, &patch).await?;
        }
        let [a, b] = self.observe().await?;
        let after = plan::plan(&self.intent, [&a, &b])?;
        if let Some(first) = after.steps.first() {
            return Err(Error::NotConverged {
                remaining: after.steps.len(),
                first: first.summary(),
            });
        }
        progress(ApplyEvent::Verifying);
        for (client, node) in self.clients.iter().zip(&self.intent.nodes) {
            for f in &plan.folders {
                verify_folder(client, &node.node, &f.id, &node.local_path(&f.path)).await?;
            }
        }
        Ok(ApplyReport {
            applied: plan.steps,
            folders: plan.folders,
            elapsed: started.elapsed(),
        })
    }

    /// The folders of the intent with resolved ids (as far as the daemons can be read).
    async fn folders(&self) -> Result<Vec<PlannedFolder>> {
        let (a, b) = tokio::join!(self.clients[0].folders(), self.clients[1].folders());
        let (a, b) = (a.ok(), b.ok());
        plan::resolve_folders(&self.intent, [a.as_deref(), b.as_deref()])
    }

    /// The sync status of every folder in both directions. A daemon that cannot be read is
    /// reported in [`crate::NodeSyncStatus::error`] (and makes the status incomplete) rather
    /// than failing the call, so a failover controller sees "not in sync" and why.
    pub async fn status(&self) -> Result<SyncStatus> {
        let folders = self.folders().await?;
        let ids = tokio::join!(self.clients[0].my_id(), self.clients[1].my_id());
        let ids = [ids.0.ok(), ids.1.ok()];
        let (a, b) = tokio::join!(
            snapshot(&self.clients[0], ids[1].as_ref(), &folders),
            snapshot(&self.clients[1], ids[0].as_ref(), &folders)
        );
        let snaps = [a.map_err(|e| strip_node(&e)), b.map_err(|e| strip_node(&e))];
        Ok(status::compute(
            self.names(),
            &folders,
            [&snaps[0], &snaps[1]],
        ))
    }

    /// Rescans every folder of the intent on both nodes (returns when the scans are done).
    pub async fn rescan(&self) -> Result<()> {
        let folders = self.folders().await?;
        for client in &self.clients {
            for f in &folders {
                client.scan(&f.id, None).await?;
            }
        }
        Ok(())
    }

    /// Waits until every folder is complete in both directions, calling `progress` with each
    /// status read. Fails with [`Error::WaitTimeout`] (saying what is still pending) after
    /// `options.timeout`.
    pub async fn wait(
        &self,
        options: &WaitOptions,
        mut progress: impl FnMut(&SyncStatus),
    ) -> Result<SyncStatus> {
        let deadline = Instant::now() + options.timeout;
        if options.rescan {
            match tokio::time::timeout(options.timeout, self.rescan()).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(Error::WaitTimeout {
                        after: options.timeout,
                        pending: "rescan did not finish".into(),
                    });
                }
            }
        }
        let kinds = EventKind::SYNC;
        // From 0: the first poll returns what is buffered at once and sets the ids; asking for
        // the latest id instead blocks a second when no such event happened yet.
        let mut since = [0u64; 2];
        loop {
            let read_at = Instant::now();
            let status = self.status().await?;
            progress(&status);
            if status.is_complete() {
                return Ok(status);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::WaitTimeout {
                    after: options.timeout,
                    pending: status.pending(),
                });
            }
            let gap = options.poll.min(left);
            if options.events && status.nodes.iter().all(|n| n.error.is_none()) {
                // Wake on the first event of either daemon, or after `gap`.
                let (a, b) = (&self.clients[0], &self.clients[1]);
                let poll_s = gap.max(Duration::from_secs(1));
                tokio::select! {
                    r = a.events(since[0], &kinds, poll_s) => {
                        if let Some(last) = r.ok().and_then(|e| e.last().map(|e| e.id)) { since[0] = last; }
                    }
                    r = b.events(since[1], &kinds, poll_s) => {
                        if let Some(last) = r.ok().and_then(|e| e.last().map(|e| e.id)) { since[1] = last; }
                    }
                    _ = tokio::time::sleep(gap) => {}
                }
                let since_read = read_at.elapsed();
                if since_read < MIN_READ_GAP {
                    tokio::time::sleep(MIN_READ_GAP - since_read).await;
                }
            } else {
                tokio::time::sleep(gap).await;
            }
        }
    }
}

/// The message of an error without its leading `node X: ` (the status names the node itself).
fn strip_node(e: &Error) -> String {
    let text = e.to_string();
    match e.node() {
        Some(n) => text
            .strip_prefix(&format!("node {n}: "))
            .map(str::to_owned)
            .unwrap_or(text),
        None => text,
    }
}

async fn observe(c: &SyncthingClient) -> Result<Observed> {
    let device_id = c.my_id().await?;
    let (devices, folders, options, ft, dt) = tokio::join!(
        c.devices(),
        c.folders(),
        c.options(),
        c.default_folder(),
        c.default_device()
    );
    Ok(Observed {
        device_id,
        devices: devices?,
        folders: folders?,
        options: options?,
        folder_template: ft?,
        device_template: dt?,
    })
}

async fn execute(c: &SyncthingClient, step: &Step) -> Result<()> {
    tracing::info!(step = %step.summary(), "applying");
    match &step.action {
        Action::AddDevice { config, .. } => c.put_device(config).await,
        Action::UpdateDevice { device_id, patch } => c.patch_device(device_id, patch).await,
        Action::AddFolder { config, .. } => c.put_folder(config).await,
        Action::UpdateFolder { folder_id, patch } => c.patch_folder(folder_id, patch).await,
        Action::UpdateOptions { patch } => c.patch_options(patch).await,
    }
}

/// Polls until `c` has a connection up to `peer` or `timeout` passes (not an error: the
/// daemons keep trying on their own).
async fn wait_connected(c: &SyncthingClient, peer: &crate::DeviceId, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(conns) = c.connections().await
            && conns
                .connections
                .get(peer.as_str())
                .is_some_and(|x| x.connected)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(node = %c.node(), peer = %peer, "peer not connected yet; setting its address anyway");
}

/// Waits until the daemon reports a state for the folder; fails when that state is `error`.
async fn verify_folder(c: &SyncthingClient, node: &str, folder: &str, path: &str) -> Result<()> {
    let deadline = Instant::now() + FOLDER_START_TIMEOUT;
    loop {
        let st = c.folder_status(folder).await?;
        if st.state == "error" || !st.error.is_empty() {
            return Err(Error::FolderUnusable {
                node: node.to_owned(),
                folder: folder.to_owned(),
                path: path.to_owned(),
                message: if st.error.is_empty() {
                    "folder is in the error state".into()
                } else {
                    st.error
                },
            });
        }
        if (!st.state.is_empty() && st.state != "unknown") || Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn snapshot(
    c: &SyncthingClient,
    peer: Option<&crate::DeviceId>,
    folders: &[PlannedFolder],
) -> Result<NodeSnapshot> {
    let (id, version, connections, configured) =
        tokio::join!(c.my_id(), c.version(), c.connections(), c.folders());
    let configured = configured?;
    let mut snap = NodeSnapshot {
        device_id: Some(id?),
        version: version?.version,
        connections: connections?,
        folders: configured,
        per_folder: Default::default(),
    };
    for f in folders {
        if !snap.folders.iter().any(|c| c.id() == f.id) {
            continue;
        }
        let (status, local, errors) = tokio::join!(
            c.folder_status(&f.id),
            c.completion(&f.id, None),
            c.folder_errors(&f.id)
        );
        let peer_view = match peer {
            Some(p) => c.completion(&f.id, Some(p)).await?,
            None => Default::default(),
        };
        snap.per_folder.insert(
            f.id.clone(),
            FolderSnapshot {
                status: status?,
                local: local?,
                peer_view,
                errors: errors?.errors,
            },
        );
    }
    Ok(snap)
}
