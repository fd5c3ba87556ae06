//! The CLI against the real lab: `check` exit codes, JSON, and that no secret ever shows.

use assert_cmd::Command;
use fspbx_ha_lab::cluster_toml::write_cluster_toml;
use fspbx_ha_lab::lab::{Lab, LabOptions};
use fspbx_ha_lab::postgres::PgFlavor;

/// A lab with its authoritative DNS, and the three names created through the library
/// (`dns apply`) and propagated to both servers, so that `check` is all green.
fn lab_with_dns(dir: &std::path::Path) -> (Lab, std::path::PathBuf) {
    let lab = Lab::start(LabOptions {
        dns: true,
        ..LabOptions::new(dir.join("lab"))
    })
    .unwrap();
    let config = write_cluster_toml(&lab.topology()).unwrap();
    let cfg = fspbx_ha_core::config::ClusterConfig::load(&config).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let floating = fspbx_ha_core::floating::Floating::new(&cfg).unwrap();
        floating
            .apply(fspbx_ha_core::floating::DEFAULT_NODE_TTL)
            .await
            .unwrap();
        let v = floating
            .verify(None, std::time::Duration::from_secs(20))
            .await
            .unwrap();
        assert!(v.ok, "{v:#?}");
    });
    (lab, config)
}

fn fspbx_ha() -> Command {
    let mut c = Command::cargo_bin("fspbx-ha").unwrap();
    c.env_remove("FSPBX_HA_CONFIG").env_remove("FSPBX_HA_LOG");
    c
}

#[test]
fn check_on_a_good_lab_exits_0_with_json() {
    let dir = tempfile::tempdir().unwrap();
    let (_lab, config) = lab_with_dns(dir.path());
    let out = fspbx_ha()
        .args(["--config", config.to_str().unwrap(), "--json", "check"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["ok"], true);
    let items = v["items"].as_array().unwrap();
    // 10 per node, and the three names at the authoritative servers.
    assert_eq!(items.len(), 23);
    assert!(items.iter().all(|i| i["status"] == "pass"), "{v:#}");

    // The human table, and `check` on a node with PostgreSQL 15: exit 1.
    fspbx_ha()
        .args(["--config", config.to_str().unwrap(), "check"])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("23 passed, 0 warnings, 0 failed"));
}

#[test]
fn check_failures_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LabOptions::new(dir.path().join("lab"));
    options.node_b_pg = Some(PgFlavor::Debian15);
    let lab = Lab::start(options).unwrap();
    let config = write_cluster_toml(&lab.topology()).unwrap();
    fspbx_ha()
        .args(["--config", config.to_str().unwrap(), "check"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains(
            "origin = none needs PostgreSQL 16 or newer",
        ));
}

#[test]
fn secrets_never_show_in_logs_json_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (lab, config) = lab_with_dns(dir.path());
    let tsig = std::fs::read_to_string(&lab.topology().dns.unwrap().update.key_file).unwrap();
    let tsig = tsig.trim().to_string();
    let real_a = lab.a().pg.password().to_string();
    let real_b = lab.b().pg.password().to_string();
    assert!(real_a.len() >= 12, "the lab uses real random passwords");

    // 1. A healthy run with every log level on.
    let ok = fspbx_ha()
        .args([
            "-vvv",
            "--config",
            config.to_str().unwrap(),
            "--json",
            "check",
        ])
        .env("FSPBX_HA_LOG", "trace")
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0));
    // 2. A wrong password for node B (from a file) and a missing env variable for node A.
    let wrong = "Wr0ng-Pa55-".to_string() + &"x".repeat(8);
    let wrong_file = dir.path().join("wrong");
    std::fs::write(&wrong_file, &wrong).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let topo = lab.topology();
    let text = text
        .replace(
            &format!("file:{}", topo.nodes[1].pg.password_file.display()),
            &format!("file:{}", wrong_file.display()),
        )
        .replace(
            &format!("file:{}", topo.nodes[0].pg.password_file.display()),
            "env:FSPBX_HA_TEST_PW_A",
        );
    let bad_config = dir.path().join("bad.toml");
    std::fs::write(&bad_config, text).unwrap();
    let bad = fspbx_ha()
        .args(["-vvv", "--config", bad_config.to_str().unwrap(), "check"])
        .env("FSPBX_HA_LOG", "trace")
        .env_remove("FSPBX_HA_TEST_PW_A")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let bad_out = String::from_utf8_lossy(&bad.stdout);
    assert!(bad_out.contains("FSPBX_HA_TEST_PW_A"), "{bad_out}");
    assert!(
        bad_out.contains("password authentication failed"),
        "{bad_out}"
    );

    for out in [&ok, &bad] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.is_empty());
        for secret in [&real_a, &real_b, &wrong, &tsig] {
            assert!(!all.contains(secret.as_str()), "a secret leaked:\n{all}");
        }
    }
}
