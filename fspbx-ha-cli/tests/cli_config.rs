//! The CLI's configuration handling: `init`, validation errors with key paths, exit codes and
//! JSON output. No servers needed.

use assert_cmd::Command;
use predicates::prelude::*;

fn fspbx_ha() -> Command {
    let mut c = Command::cargo_bin("fspbx-ha").unwrap();
    c.env_remove("FSPBX_HA_CONFIG");
    c
}

#[test]
fn init_writes_a_template_that_validates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.toml");
    fspbx_ha()
        .args(["--config", path.to_str().unwrap(), "init"])
        .assert()
        .success()
        .stdout(predicate::str::contains("wrote"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("[floating]"));
    // A second init refuses to overwrite: usage error, exit 2.
    fspbx_ha()
        .args(["--config", path.to_str().unwrap(), "init"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--force"));
    // `config` validates and prints with defaults.
    fspbx_ha()
        .args(["--config", path.to_str().unwrap(), "config"])
        .assert()
        .success()
        .stdout(predicate::str::contains("is valid"));
}

#[test]
fn invalid_values_are_listed_with_key_paths_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.toml");
    let text = fspbx_ha_core_template()
        .replacen("port = 22", "port = 0", 1)
        .replace("ttl = 60", "ttl = 0");
    std::fs::write(&path, text).unwrap();
    fspbx_ha()
        .args(["--config", path.to_str().unwrap(), "check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "nodes[0].ssh.port: expected 1..65535, got 0",
        ))
        .stderr(predicate::str::contains("floating.ttl"));

    let out = fspbx_ha()
        .args(["--config", path.to_str().unwrap(), "--json", "check"])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 2);
    let keys: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["nodes[0].ssh.port", "floating.ttl"]);
}

#[test]
fn missing_file_is_a_usage_error_naming_the_path() {
    fspbx_ha()
        .args(["--config", "/nonexistent/cluster.toml", "check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/cluster.toml"));
}

#[test]
fn help_documents_exit_codes() {
    fspbx_ha()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes"))
        .stdout(predicate::str::contains(
            "2  bad usage or invalid configuration",
        ));
}

fn fspbx_ha_core_template() -> String {
    let out = fspbx_ha().args(["init", "--stdout"]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_reader_that_goes_away_ends_the_cli_quietly_with_141() {
    // stdout is a pipe whose reading end is closed before the CLI writes: the write fails
    // with EPIPE (Rust ignores SIGPIPE), which must end the process like any Unix tool, not
    // with a panic message.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("fspbx-ha"))
        .args(["init", "--stdout"])
        .env_remove("FSPBX_HA_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
