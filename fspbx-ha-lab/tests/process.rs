//! Process guards and free ports, with real child processes and sockets.

use std::collections::HashSet;
use std::net::{TcpListener, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fspbx_ha_lab::process::{self, Guard, StopSignal, pid_alive, wait_until};
use fspbx_ha_lab::{Error, NODE_A_IP, NODE_B_IP, ports::free_port};

fn sleeper(dir: &tempfile::TempDir, name: &str) -> Guard {
    let mut cmd = Command::new("sleep");
    cmd.arg("300");
    Guard::spawn(cmd, name, &dir.path().join(format!("{name}.log"))).unwrap()
}

#[test]
fn guard_dropped_during_a_panic_stops_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Mutex::new(None);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let guard = sleeper(&dir, "panicky");
        *seen.lock().unwrap() = Some(guard.pid());
        assert!(pid_alive(guard.pid(), None));
        panic!("test failure while holding the guard");
    }));
    assert!(result.is_err(), "the closure panicked");
    let pid = seen.lock().unwrap().expect("the process was started");
    assert!(
        !pid_alive(pid, None),
        "PID {pid} still runs after the guard was dropped in a panic"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "PID {pid} was not reaped"
    );
}

#[test]
fn stop_is_idempotent_and_kill_hard_kills() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = sleeper(&dir, "stopper");
    assert!(g.is_running());
    g.stop();
    assert!(!g.is_running());
    g.stop();
    assert!(!g.is_running());

    let mut k = sleeper(&dir, "killed");
    let pid = k.pid();
    k.kill_hard();
    assert!(!k.is_running());
    assert!(!pid_alive(pid, None));
}

#[test]
fn stop_escalates_to_sigkill_when_sigterm_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "trap '' TERM; touch {}; while :; do sleep 0.05; done",
        ready.display()
    ));
    let mut g = Guard::spawn(cmd, "stubborn", &dir.path().join("stubborn.log"))
        .unwrap()
        .with_grace(Duration::from_millis(300));
    wait_until("trap installed", Duration::from_secs(5), None, || {
        ready.exists()
    })
    .unwrap();
    let t = Instant::now();
    g.stop();
    assert!(!g.is_running(), "SIGKILL followed the ignored SIGTERM");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "waited the grace period first"
    );
}

#[test]
fn stop_takes_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("sleep 300 & echo $! > {}; wait", pidfile.display()));
    let mut g = Guard::spawn(cmd, "parent", &dir.path().join("parent.log")).unwrap();
    let mut grandchild = 0;
    wait_until("grandchild pid", Duration::from_secs(5), None, || {
        grandchild = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        grandchild != 0
    })
    .unwrap();
    assert!(pid_alive(grandchild, None));
    g.stop();
    // The orphaned grandchild is a zombie nobody reaps: "alive" treats that as gone.
    wait_until("grandchild gone", Duration::from_secs(5), None, || {
        !pid_alive(grandchild, None)
    })
    .unwrap();
}

#[test]
fn detach_leaves_it_running_until_stopped_by_pid() {
    let dir = tempfile::tempdir().unwrap();
    let g = sleeper(&dir, "detached");
    let start = g.start_time();
    let pid = g.detach();
    std::thread::sleep(Duration::from_millis(100));
    assert!(pid_alive(pid, start), "a detached process keeps running");
    assert!(
        process::stop_pid(pid, start, true, StopSignal::Term, Duration::from_secs(2)),
        "it was running"
    );
    assert!(!pid_alive(pid, None));
    assert!(
        !process::stop_pid(pid, start, true, StopSignal::Term, Duration::from_secs(2)),
        "already gone"
    );
}

#[test]
fn adopted_process_is_stopped_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let g = sleeper(&dir, "to-adopt");
    let pid = g.detach();
    drop(Guard::adopt(pid, "adopted"));
    wait_until("adopted gone", Duration::from_secs(5), None, || {
        !pid_alive(pid, None)
    })
    .unwrap();
}

#[test]
fn spawn_logs_output_and_reports_missing_programs() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("echo.log");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg("echo to-stdout; echo to-stderr >&2");
    let g = Guard::spawn(cmd, "echo", &log).unwrap();
    wait_until("echo exits", Duration::from_secs(5), None, || {
        !g.is_running()
    })
    .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("to-stdout") && text.contains("to-stderr"),
        "{text}"
    );

    let err = Guard::spawn(Command::new("/nonexistent/prog"), "ghost", &log).unwrap_err();
    assert!(
        matches!(err, Error::Spawn { ref name, .. } if name == "ghost"),
        "{err}"
    );
}

#[test]
fn wait_until_times_out_naming_what_and_the_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("x.log");
    std::fs::write(&log, "line one\nFATAL: the reason\n").unwrap();
    let err = wait_until("the widget", Duration::from_millis(120), Some(&log), || {
        false
    })
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("the widget") && msg.contains("FATAL: the reason"),
        "{msg}"
    );
    let mut n = 0;
    wait_until("third poll", Duration::from_secs(5), None, || {
        n += 1;
        n == 3
    })
    .unwrap();
    assert_eq!(n, 3);
}

#[test]
fn free_port_never_repeats_and_is_bindable() {
    let mut seen = HashSet::new();
    for i in 0..400 {
        let ip = if i % 2 == 0 { NODE_A_IP } else { NODE_B_IP };
        let port = free_port(ip);
        assert!((20000..60000).contains(&port), "{port} out of range");
        assert!(seen.insert(port), "port {port} handed out twice");
    }
    let port = free_port(NODE_A_IP);
    assert!(!seen.contains(&port));
    TcpListener::bind((NODE_A_IP, port)).expect("TCP bindable");
    UdpSocket::bind((NODE_A_IP, port)).expect("UDP bindable");
}

#[test]
fn free_port_is_unique_across_threads() {
    let handles: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(|| (0..50).map(|_| free_port(NODE_A_IP)).collect::<Vec<_>>()))
        .collect();
    let mut all = HashSet::new();
    for h in handles {
        for p in h.join().unwrap() {
            assert!(all.insert(p), "port {p} handed out twice");
        }
    }
    assert_eq!(all.len(), 400);
}
