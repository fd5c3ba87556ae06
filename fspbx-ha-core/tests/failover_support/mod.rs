//! What the failover tests share: the lab (two nodes with PostgreSQL, sshd and Kamailio, the
//! floating record on Knot primary + secondary), the controller's test settings, a running
//! controller, node loss, and reading the audit log back.
//!
//! Each test file compiles this module on its own and uses a part of it.
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::failover::{AuditRecord, Controller, ControllerStatus, Requirement, read_tail};
use fspbx_ha_core::floating::{DEFAULT_NODE_TTL, Floating};
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

/// The lab's cluster.toml with the CI settings: interval 0.3 s, rise 2, fall 3, probe timeout
/// 250 ms, hold-down 60 s, record re-read every second, fencing bounded by 2 s; the lag,
/// schema and Syncthing gates `off` (tests that measure them turn them on).
pub fn config_for(lab: &Lab) -> ClusterConfig {
    let path = write_cluster_toml(&lab.topology()).unwrap();
    let mut c = ClusterConfig::load(&path).unwrap();
    c.policy.interval = INTERVAL;
    c.policy.fall = FALL;
    c.policy.rise = 2;
    c.policy.hold_down = Duration::from_secs(60);
    for n in &mut c.nodes {
        n.probes.timeout = Duration::from_millis(250);
        assert!(n.probes.sip.is_some(), "the lab config probes SIP");
    }
    c.failover.lag = Requirement::Off;
    c.failover.schema = Requirement::Off;
    c.failover.sync = Requirement::Off;
    c.failover.record_refresh = Duration::from_secs(1);
    c.failover.fence_timeout = Duration::from_secs(2);
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
