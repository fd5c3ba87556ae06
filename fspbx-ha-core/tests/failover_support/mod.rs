//! What the failover tests share: the lab (two nodes with PostgreSQL, sshd and Kamailio, the
//! floating record on Knot primary + secondary), the controller's test settings, a running
//! controller, node loss, reading the audit log back, and a replicated table with a writer
//! committing rows to it (for switchovers).
//!
//! Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::failover::{AuditRecord, Controller, ControllerStatus, Requirement, read_tail};
use fspbx_ha_core::floating::{DEFAULT_NODE_TTL, Floating};
use fspbx_ha_core::pg::PgConn;
use fspbx_ha_core::replication::{self, Intent, NoProgress, Pair, Side, Verdict};
use fspbx_ha_dns::RecordKind;
use fspbx_ha_dns::propagation::{Checker, Outcome};
use fspbx_ha_lab::cluster_toml::write_cluster_toml;
use fspbx_ha_lab::lab::{Lab, LabOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The probe interval of the CI tests.
pub const INTERVAL: Duration = Duration::from_millis(300);
/// Bad rounds before a node is `Down`.
pub const FALL: u32 = 3;

/// Starts the lab in `dir`: both nodes with PostgreSQL, sshd and Kamailio, plus Knot (and
/// Syncthing when `syncthing`).
pub fn start_lab(dir: &Path, syncthing: bool) -> Lab {
    Lab::start(LabOptions {
        dns: true,
        sip: true,
        syncthing,
        ..LabOptions::new(dir.join("lab"))
    })
    .unwrap()
}

/// The lab's cluster.toml (its probe timeout, 400 ms) with probes every `interval`, rise 2,
/// fall [`FALL`], record re-read every second, fencing bounded by 2 s; the lag, schema and
/// Syncthing gates `off` (the lab sets no replication up; who measures them turns them on).
pub fn lab_config(lab: &Lab, interval: Duration) -> ClusterConfig {
    let path = write_cluster_toml(&lab.topology()).unwrap();
    let mut c = ClusterConfig::load(&path).unwrap();
    c.policy.interval = interval;
    c.policy.fall = FALL;
    c.policy.rise = 2;
    c.failover.lag = Requirement::Off;
    c.failover.schema = Requirement::Off;
    c.failover.sync = Requirement::Off;
    c.failover.record_refresh = Duration::from_secs(1);
    c.failover.fence_timeout = Duration::from_secs(2);
    c
}

/// [`lab_config`] with the CI settings: interval 0.3 s, probe timeout 250 ms, hold-down 60 s.
pub fn config_for(lab: &Lab) -> ClusterConfig {
    let mut c = lab_config(lab, INTERVAL);
    c.policy.hold_down = Duration::from_secs(60);
    for n in &mut c.nodes {
        n.probes.timeout = Duration::from_millis(250);
        assert!(n.probes.sip.is_some(), "the lab config probes SIP");
    }
    c
}

/// Points the floating record at node A (as the configuration says), waits until every
/// authoritative server answers it, and returns the propagation checker.
pub async fn floating_on_a(config: &ClusterConfig) -> (Floating, Checker) {
    let floating = Floating::new(config).unwrap();
    floating.apply(DEFAULT_NODE_TTL).await.unwrap();
    assert!(
        floating
            .verify(None, Duration::from_secs(20))
            .await
            .unwrap()
            .ok
    );
    let checker = floating.checker().await.unwrap();
    (floating, checker)
}

/// What each authoritative server answers for `name`.
pub async fn answers(checker: &Checker, name: &str) -> Vec<Option<Vec<IpAddr>>> {
    checker
        .ask(name, RecordKind::A)
        .await
        .unwrap()
        .into_iter()
        .map(|a| match a.outcome {
            Outcome::Records { values, .. } => Some(values),
            _ => None,
        })
        .collect()
}

/// Every authoritative server answers `want` for `name`.
pub async fn all_answer(checker: &Checker, name: &str, want: &[IpAddr]) -> bool {
    let a = answers(checker, name).await;
    !a.is_empty() && a.iter().all(|v| v.as_deref() == Some(want))
}

/// A controller running in a task until [`Running::stop`].
pub struct Running {
    /// Its `/metrics` and `/health`, when `failover.metrics_listen` is set.
    pub metrics: Option<std::net::SocketAddr>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<ControllerStatus>,
}

impl Running {
    /// Builds a controller for `config` and runs it.
    pub async fn start(config: &ClusterConfig) -> Running {
        let controller = Controller::new(config.clone()).await.unwrap();
        let metrics = controller.metrics_addr();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            controller
                .run(async {
                    let _ = rx.await;
                })
                .await
                .unwrap()
        });
        Running {
            metrics,
            stop,
            task,
        }
    }

    /// Stops it; its final status.
    pub async fn stop(self) -> ControllerStatus {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the controller stops when asked")
            .unwrap()
    }
}

/// SIGKILLs every process of node `name` (PostgreSQL, sshd, Kamailio; Syncthing too when the
/// lab runs it).
pub fn kill_node(lab: &mut Lab, name: &str) {
    let node = if name == "a" {
        lab.a_mut()
    } else {
        lab.b_mut()
    };
    node.pg.kill_hard();
    node.sshd.kill_hard();
    node.sip.as_mut().unwrap().kill_hard();
    if let Some(st) = node.syncthing.as_mut() {
        st.kill_hard();
    }
}

/// The audit records of `event`, oldest first.
pub fn events(audit: &Path, event: &str) -> Vec<AuditRecord> {
    read_tail(audit, 100_000)
        .unwrap()
        .into_iter()
        .filter(|r| r.event == event)
        .collect()
}

/// Polls `cond` every 50 ms for up to `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A writer committing rows to one node over its own connection, recording every
/// acknowledged id with the moment it was acknowledged.
pub struct Writer {
    stop: Arc<AtomicBool>,
    task: JoinHandle<(Vec<(i64, Instant)>, usize)>,
}

impl Writer {
    /// Starts inserting into `public.switch_rows` on node `side` every `pause`.
    pub async fn start(config: &ClusterConfig, side: Side, pause: Duration) -> Writer {
        let pair = Pair::connect(config).await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let (mut acked, mut errors) = (vec![], 0usize);
            while !flag.load(Ordering::Relaxed) {
                match pair
                    .pg(side)
                    .client()
                    .query_one(
                        "INSERT INTO public.switch_rows DEFAULT VALUES RETURNING id",
                        &[],
                    )
                    .await
                {
                    Ok(row) => acked.push((row.get::<_, i64>(0), Instant::now())),
                    Err(_) => errors += 1,
                }
                tokio::time::sleep(pause).await;
            }
            (acked, errors)
        });
        Writer { stop, task }
    }

    /// Stops it: every acknowledged id with when, and the number of failed inserts.
    pub async fn stop(self) -> (Vec<(i64, Instant)>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// The ids in `public.switch_rows` on the node `pg` is connected to.
pub async fn switch_row_ids(pg: &PgConn) -> HashSet<i64> {
    pg.client()
        .query("SELECT id FROM public.switch_rows", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Ids of `ids` that node `side` does not hold.
pub async fn missing_on(pair: &Pair, side: Side, ids: &[i64]) -> Vec<i64> {
    let have = switch_row_ids(pair.pg(side)).await;
    ids.iter().copied().filter(|i| !have.contains(i)).collect()
}

/// Creates `public.switch_rows` (bigserial) on A and sets replication up both ways (the schema
/// is copied to B).
pub async fn set_up_replication(config: &ClusterConfig) -> Pair {
    replicate_from_a(
        config,
        "CREATE TABLE public.switch_rows (id bigserial PRIMARY KEY, \
         at timestamptz NOT NULL DEFAULT now()); \
         INSERT INTO public.switch_rows DEFAULT VALUES;",
    )
    .await
}

/// Runs `sql` on node A (the tables to replicate), then sets replication up both ways (the
/// schema is copied to B); asserts the pair is not broken.
pub async fn replicate_from_a(config: &ClusterConfig, sql: &str) -> Pair {
    let mut pair = Pair::connect(config).await.unwrap();
    pair.pg(Side::A).client().batch_execute(sql).await.unwrap();
    let plan = pair.plan(&Intent::default()).await.unwrap();
    replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .unwrap();
    let st = replication::status(&pair).await.unwrap();
    assert_ne!(st.verdict, Verdict::Broken, "{}", st.render());
    pair
}

/// The `p` quantile (0 to 1, nearest rank) of `sorted` (ascending); NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
