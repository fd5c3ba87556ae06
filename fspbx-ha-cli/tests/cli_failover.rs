//! `fspbx-ha failover {switchover,watch,status}` against the real lab (PostgreSQL, sshd,
//! Kamailio per node; the floating record on Knot primary + secondary).

#[path = "../../fspbx-ha-core/tests/failover_support/mod.rs"]
mod failover_support;

use std::time::Duration;

use assert_cmd::Command;
use failover_support::{replicate_from_a, start_lab};
use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::floating::{DEFAULT_NODE_TTL, Floating};
use fspbx_ha_core::replication::{Pair, Side};
use fspbx_ha_dns::RecordKind;
use fspbx_ha_dns::propagation::Outcome;
use fspbx_ha_lab::cluster_toml::write_cluster_toml;

fn fspbx_ha(config: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("fspbx-ha").unwrap();
    c.env_remove("FSPBX_HA_CONFIG")
        .env_remove("FSPBX_HA_LOG")
        .arg("-c")
        .arg(config);
    c
}

/// What every authoritative server answers for the floating name.
fn answers(rt: &tokio::runtime::Runtime, config: &ClusterConfig) -> Vec<String> {
    rt.block_on(async {
        let f = Floating::new(config).unwrap();
        let c = f.checker().await.unwrap();
        c.ask(f.name(), RecordKind::A)
            .await
            .unwrap()
            .into_iter()
            .map(|a| match a.outcome {
                Outcome::Records { values, .. } => format!("{values:?}"),
                other => format!("{other:?}"),
            })
            .collect()
    })
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn switchover_watch_and_status_against_the_lab() {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = start_lab(dir.path(), false);
    let path = write_cluster_toml(&lab.topology()).unwrap();
    let config = ClusterConfig::load(&path).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let f = Floating::new(&config).unwrap();
        f.apply(DEFAULT_NODE_TTL).await.unwrap();
        assert!(f.verify(None, Duration::from_secs(20)).await.unwrap().ok);
        // Replication both ways: the switchover's catch-up and sequence steps run for real.
        replicate_from_a(
            &config,
            "CREATE TABLE public.cli_rows (id bigserial PRIMARY KEY); \
             INSERT INTO public.cli_rows SELECT FROM generate_series(1, 50);",
        )
        .await;
    });
    let seq_b = || {
        rt.block_on(async {
            let pair = Pair::connect(&config).await.unwrap();
            pair.pg(Side::B)
                .client()
                .query_one(
                    "SELECT last_value FROM pg_catalog.pg_sequences \
                     WHERE sequencename = 'cli_rows_id_seq'",
                    &[],
                )
                .await
                .unwrap()
                .get::<_, Option<i64>>(0)
        })
    };
    let seq_b_before = seq_b();
    assert_eq!(answers(&rt, &config), ["[127.0.0.2]", "[127.0.0.2]"]);

    // Dry run: decided, nothing changed.
    let out = fspbx_ha(&path)
        .args(["failover", "switchover", "--to", "b", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("would flip"), "{text}");
    for step in ["catch_up", "sequences", "flip", "drain"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(step) && l.contains("would_do")),
            "dry run shows the {step} step:\n{text}"
        );
    }
    assert!(text.contains("cli_rows_id_seq"), "{text}");
    assert_eq!(answers(&rt, &config), ["[127.0.0.2]", "[127.0.0.2]"]);
    assert_eq!(seq_b(), seq_b_before, "the dry run moved no sequence");

    // The real switchover: both authoritative servers answer B afterwards.
    let out = fspbx_ha(&path)
        .args(["--json", "failover", "switchover", "--to", "b", "--fence"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "flipped");
    assert_eq!(report["from"], "a");
    assert_eq!(report["flip"]["ok"], true);
    assert_eq!(answers(&rt, &config), ["[127.0.0.3]", "[127.0.0.3]"]);
    let steps: Vec<(String, String)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            "health",
            "replication",
            "catch_up",
            "sequences",
            "flip",
            "drain",
            "fence"
        ]
        .map(|s| (s.to_owned(), "done".to_owned())),
        "{report}"
    );
    // B's sequence moved past A's last value (50) by the margin.
    assert!(
        seq_b().is_some_and(|v| v >= 50 + fspbx_ha_core::failover::SEQUENCE_MARGIN),
        "{:?}",
        seq_b()
    );
    // --fence ran the lab's fence command on A (it records the node's address).
    assert_eq!(report["fence"]["node"], "a");
    assert_eq!(report["fence"]["reachable"], true, "{report}");
    let fenced =
        std::fs::read_to_string(fspbx_ha_lab::cluster_toml::fence_log(&lab.topology())).unwrap();
    assert!(fenced.trim_end().ends_with("127.0.0.2"), "{fenced}");

    // Back to A refused while A's SIP stack is dead: exit 1, nothing changed.
    lab.a_mut().sip.as_mut().unwrap().kill_hard();
    let out = fspbx_ha(&path)
        .args(["failover", "switchover", "--to", "a"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("switchover to node a refused"), "{err}");
    assert_eq!(answers(&rt, &config), ["[127.0.0.3]", "[127.0.0.3]"]);

    // An unknown node is a usage error.
    let out = fspbx_ha(&path)
        .args(["failover", "switchover", "--to", "zz"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // watch: runs rounds, serves /metrics, stops on time; B is active, A is down: no flip.
    let out = fspbx_ha(&path)
        .args([
            "--json",
            "failover",
            "watch",
            "--run-for",
            "3s",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(status["rounds"].as_u64().unwrap() >= 3, "{status}");
    assert_eq!(status["active"], "b");
    assert_eq!(status["flips_ok"], 0);
    assert_eq!(status["nodes"][0]["health"], "down", "{status}");
    assert_eq!(status["nodes"][1]["health"], "up", "{status}");

    // status: the audit log holds the switchover's flip and the refusal.
    let out = fspbx_ha(&path)
        .args(["--json", "failover", "status", "-n", "200"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["report"]["active_node"], "b");
    // The counts after the last flip are part of the report (empty or not).
    for key in ["registrations", "calls"] {
        assert!(v["report"][key].is_array(), "{key}: {v}");
    }
    let recent = v["report"]["recent"].as_array().unwrap();
    assert!(
        recent
            .iter()
            .any(|r| r["event"] == "flip" && r["node"] == "b"),
        "{v}"
    );
    assert!(
        recent
            .iter()
            .any(|r| r["event"] == "switchover"
                && r["message"].as_str().unwrap().contains("refused")),
        "{v}"
    );
    let human = fspbx_ha(&path)
        .args(["failover", "status"])
        .output()
        .unwrap();
    assert!(
        stdout(&human).contains("floating record: node b"),
        "{}",
        stdout(&human)
    );
}
