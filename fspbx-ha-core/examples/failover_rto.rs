//! Lab scenario: failover RTO, false flips and the watcher's footprint, with the settings of
//! issue 7 (probe interval 0.5 s, fall 3, rise 2; probe timeout 400 ms as the lab config
//! writes it).
//!
//! ```text
//! cargo run --release -p fspbx-ha-core --example failover_rto -- [trials] [blips] [footprint_s]
//! ```
//!
//! - **RTO** (`trials`, default 20): node A healthy and active, the controller running and both
//!   nodes `Up`; then, at a random phase of the probe rounds, SIGKILL of every process of A
//!   (PostgreSQL, sshd, Kamailio). Measured from the kill until the Knot primary answers B,
//!   and until *every* authoritative server (primary and secondary) answers B — polled every
//!   10 ms. A is restarted between trials.
//! - **False flips** (`blips`, default 30): A's SIP responder SIGSTOPped for 1.2 s (< fall ×
//!   interval = 1.5 s), then 2 s of health, again and again; the flips counted must be 0.
//! - **Footprint** (`footprint_s`, default 60; 0 skips): `fspbx-ha failover watch` (the binary
//!   from `FSPBX_HA_BIN`, else `target/release/fspbx-ha`) on the healthy pair: peak RSS
//!   (VmHWM) and CPU share of one core (utime + stime over wall time).

#[path = "../tests/failover_support/mod.rs"]
mod failover_support;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use failover_support::{lab_config, percentile, start_lab};
use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::failover::{Controller, ControllerStatus, Health};
use fspbx_ha_core::floating::{DEFAULT_NODE_TTL, FlipOptions, Floating};
use fspbx_ha_dns::RecordKind;
use fspbx_ha_dns::propagation::{Checker, Outcome};
use fspbx_ha_lab::lab::Lab;

const INTERVAL: Duration = Duration::from_millis(500);

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

async fn answers(checker: &Checker, name: &str) -> Vec<Option<Vec<IpAddr>>> {
    checker
        .ask(name, RecordKind::A)
        .await
        .map(|v| {
            v.into_iter()
                .map(|a| match a.outcome {
                    Outcome::Records { values, .. } => Some(values),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<ControllerStatus>,
    status: std::sync::Arc<std::sync::Mutex<ControllerStatus>>,
}

async fn start(config: &ClusterConfig) -> Running {
    let c = Controller::new(config.clone()).await.expect("controller");
    let status = c.status_handle();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        c.run(async {
            let _ = rx.await;
        })
        .await
        .expect("controller run")
    });
    Running { stop, task, status }
}

impl Running {
    async fn both_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let up = {
                let s = self.status.lock().unwrap();
                s.nodes.iter().all(|n| n.health == Health::Up)
            };
            if up {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "both nodes did not come up: {:#?}",
            self.status.lock().unwrap()
        );
    }

    async fn stop(self) -> ControllerStatus {
        let _ = self.stop.send(());
        self.task.await.expect("controller task")
    }
}

fn kill_a(lab: &mut Lab) {
    let a = lab.a_mut();
    a.pg.kill_hard();
    a.sshd.kill_hard();
    if let Some(s) = a.sip.as_mut() {
        s.kill_hard();
    }
}

fn restart_a(lab: &mut Lab) {
    let a = lab.a_mut();
    a.pg.start_again().expect("pg A");
    a.sshd.start_again().expect("sshd A");
    if let Some(s) = a.sip.as_mut() {
        s.start_again().expect("sip A");
    }
}

/// (peak RSS in KiB, CPU seconds) of `pid` from /proc.
fn footprint_of(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((hwm, ticks as f64 / 100.0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let trials = arg(1, 20);
    let blips = arg(2, 30);
    let footprint_s = arg(3, 60);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lab = start_lab(dir.path(), false);
    // Rise 2, fall 3; no replication in this lab: the gates are not measured (see the e2e test).
    let config = lab_config(&lab, INTERVAL);
    let floating = Floating::new(&config).expect("floating");
    floating.apply(DEFAULT_NODE_TTL).await.expect("dns apply");
    let checker = floating.checker().await.expect("checker");
    let name = config.floating.name.clone();
    let addr_b = config.nodes[1].addresses.clone();
    let to_a = floating.resolve_target("a", "to").expect("target a");
    let probe_timeout = config.nodes[0].probes.timeout;
    println!(
        "settings: interval {INTERVAL:?}, rise 2, fall 3, probe timeout {probe_timeout:?}, \
         Knot primary + secondary (NOTIFY/IXFR), {trials} trials"
    );

    // --- RTO
    let (mut primary, mut all) = (vec![], vec![]);
    for t in 0..trials {
        if t > 0 {
            restart_a(&mut lab);
        }
        assert!(
            floating
                .flip(&to_a, &FlipOptions::default())
                .await
                .expect("flip to A")
                .ok()
        );
        let run = start(&config).await;
        run.both_up().await;
        // A random phase against the probe rounds, as a real failure has.
        tokio::time::sleep(INTERVAL.mul_f64(rand::random::<f64>())).await;
        let killed = Instant::now();
        kill_a(&mut lab);
        let (mut p_at, mut all_at) = (None, None);
        while killed.elapsed() < Duration::from_secs(30) && all_at.is_none() {
            let a = answers(&checker, &name).await;
            if p_at.is_none() && a.first().and_then(|v| v.as_deref()) == Some(&addr_b[..]) {
                p_at = Some(killed.elapsed());
            }
            if !a.is_empty() && a.iter().all(|v| v.as_deref() == Some(&addr_b[..])) {
                all_at = Some(killed.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let status = run.stop().await;
        let all_at = all_at.expect("every server answers B within 30 s");
        let p_at = p_at.unwrap_or(all_at);
        println!(
            "trial {:>2}: primary {:.2} s, all servers {:.2} s, flips {}",
            t + 1,
            p_at.as_secs_f64(),
            all_at.as_secs_f64(),
            status.flips_ok
        );
        assert_eq!(status.flips_ok, 1, "exactly one flip per trial");
        primary.push(p_at.as_secs_f64());
        all.push(all_at.as_secs_f64());
    }
    primary.sort_by(f64::total_cmp);
    all.sort_by(f64::total_cmp);
    if trials > 0 {
        println!(
            "RTO to the primary:     p50 {:.2} s  p95 {:.2} s  max {:.2} s",
            percentile(&primary, 0.5),
            percentile(&primary, 0.95),
            primary.last().copied().unwrap_or(f64::NAN)
        );
        println!(
            "RTO to every server:    p50 {:.2} s  p95 {:.2} s  max {:.2} s",
            percentile(&all, 0.5),
            percentile(&all, 0.95),
            all.last().copied().unwrap_or(f64::NAN)
        );
        restart_a(&mut lab);
    }

    // --- False flips
    if blips > 0 {
        assert!(
            floating
                .flip(&to_a, &FlipOptions::default())
                .await
                .expect("flip to A")
                .ok()
        );
        let run = start(&config).await;
        run.both_up().await;
        let pause = INTERVAL * 12 / 5; // 1.2 s < fall × interval = 1.5 s
        for _ in 0..blips {
            lab.a_mut().sip.as_mut().expect("sip").pause();
            tokio::time::sleep(pause).await;
            lab.a_mut().sip.as_mut().expect("sip").resume();
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let status = run.stop().await;
        println!(
            "false flips: {} over {blips} blips of {pause:?} (fall × interval = {:?}); {} rounds",
            status.flips_ok + status.flips_failed,
            INTERVAL * 3,
            status.rounds
        );
    }

    // --- Footprint of `fspbx-ha failover watch`
    if footprint_s > 0 {
        let bin = std::env::var_os("FSPBX_HA_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../target/release/fspbx-ha")
            });
        if !bin.exists() {
            println!(
                "footprint skipped: {} is missing (cargo build --release -p fspbx-ha-cli)",
                bin.display()
            );
            return;
        }
        let watch_cfg = dir.path().join("watch.toml");
        std::fs::write(&watch_cfg, config.to_toml()).expect("write config");
        let mut child = std::process::Command::new(&bin)
            .arg("-c")
            .arg(&watch_cfg)
            .args(["failover", "watch", "--run-for"])
            .arg(footprint_s.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn fspbx-ha");
        let pid = child.id();
        let started = Instant::now();
        let mut last = None;
        while started.elapsed() < Duration::from_secs(footprint_s) {
            if let Some(f) = footprint_of(pid) {
                last = Some((f, started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let _ = child.wait();
        if let Some(((hwm_kib, cpu_s), wall)) = last {
            println!(
                "footprint of `failover watch` over {:.0} s at interval {INTERVAL:?}: peak RSS \
                 {:.1} MiB, CPU {:.2} % of one core",
                wall.as_secs_f64(),
                hwm_kib as f64 / 1024.0,
                100.0 * cpu_s / wall.as_secs_f64()
            );
        }
    }
}
