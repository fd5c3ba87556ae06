//! `fspbx-ha dns …` against the lab's Knot (primary 127.0.0.53 + secondary 127.0.0.54).

use assert_cmd::Command;
use fspbx_ha_lab::knot::{Knot, KnotOptions};

fn bin() -> Command {
    let mut c = Command::cargo_bin("fspbx-ha").unwrap();
    c.env_remove("FSPBX_HA_CONFIG").env_remove("FSPBX_HA_LOG");
    c
}

/// The template with the lab's node addresses, zone and Knot as the provider.
fn config(dir: &std::path::Path, k: &Knot, key_file: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("cluster.toml");
    bin()
        .args(["--config", path.to_str().unwrap(), "init"])
        .assert()
        .success();
    let servers: Vec<String> = k.servers().iter().map(|s| format!("\"{s}\"")).collect();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("server1.example.com", "server1.example.test")
        .replace("server2.example.com", "server2.example.test")
        .replace("addresses = [\"192.0.2.10\"]", "addresses = [\"127.0.0.2\"]")
        .replace("addresses = [\"192.0.2.20\"]", "addresses = [\"127.0.0.3\"]")
        .replace("zone = \"example.com\"\nname = \"pbx.example.com\"\nttl = 60", &format!("zone = \"example.test\"\nname = \"pbx.example.test\"\nttl = 30\nnameservers = [{}]", servers.join(", ")))
        .replace("server = \"192.0.2.53:53\"", &format!("server = \"{}\"", k.primary.addr()))
        .replace("key_name = \"fspbx-ha\"", &format!("key_name = \"{}\"", k.key().name))
        .replace("key_secret = \"env:FSPBX_HA_TSIG_KEY\"", &format!("key_secret = \"file:{}\"", key_file.display()));
    std::fs::write(&path, text).unwrap();
    path
}

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

#[test]
fn plan_apply_show_set_verify_against_knot() {
    let dir = tempfile::tempdir().unwrap();
    let k = Knot::start(KnotOptions {
        secondary: true,
        records: vec!["server1 300 A 127.0.0.2".into()],
        ..KnotOptions::default()
    })
    .unwrap();
    let cfg = config(dir.path(), &k, k.key_file());
    let c = cfg.to_str().unwrap();
    let secret = k.key().secret.clone();

    // plan: server2 and the floating record are missing.
    let out = bin()
        .args(["--config", c, "--json", "dns", "plan"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let actions: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unchanged", "create", "create"], "{v:#}");

    // apply, then a second plan has nothing to do.
    bin()
        .args(["--config", c, "dns", "apply"])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("2 change(s) applied"));
    bin()
        .args(["--config", c, "dns", "plan"])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("nothing to change"));
    assert_eq!(
        k.primary.kdig("pbx.example.test", "A").unwrap(),
        ["127.0.0.2"]
    );

    // show: the floating record on node a, both servers answering.
    let out = bin()
        .args(["--config", c, "--json", "dns", "show"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["active_node"], "a", "{v:#}");
    assert_eq!(v["servers"].as_array().unwrap().len(), 2, "{v:#}");
    assert_eq!(v["floating"][0]["values"][0], "127.0.0.2");

    // set --to b: CAS flip, waits for both servers, says when clients move.
    let out = bin()
        .args(["--config", c, "dns", "set", "--to", "b"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("all 2 authoritative server(s) answer it"),
        "{text}"
    );
    assert!(
        text.contains("clients holding the old answer (TTL 30 s) move by"),
        "{text}"
    );
    assert_eq!(
        k.primary.kdig("pbx.example.test", "A").unwrap(),
        ["127.0.0.3"]
    );
    assert_eq!(
        k.secondary
            .as_ref()
            .unwrap()
            .kdig("pbx.example.test", "A")
            .unwrap(),
        ["127.0.0.3"]
    );

    // A stale guard: exit 1, says what is there, nothing changes.
    let out = bin()
        .args([
            "--config",
            c,
            "--json",
            "dns",
            "set",
            "--to",
            "a",
            "--expect",
            "127.0.0.9",
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["found"]["values"][0], "127.0.0.3", "{v:#}");
    assert_eq!(
        k.primary.kdig("pbx.example.test", "A").unwrap(),
        ["127.0.0.3"]
    );

    // verify: exit 0 for the current value, 1 (after the timeout) for a value nobody serves.
    bin()
        .args(["--config", c, "dns", "verify"])
        .assert()
        .code(0);
    bin()
        .args([
            "--config",
            c,
            "dns",
            "verify",
            "--to",
            "127.0.0.9",
            "--timeout",
            "1s",
        ])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("still lag"));

    // No output ever carries the TSIG secret.
    for args in [
        vec!["dns", "show"],
        vec!["--json", "dns", "show"],
        vec!["-vvv", "dns", "set", "--to", "a"],
    ] {
        let out = bin()
            .args(["--config", c])
            .args(&args)
            .env("FSPBX_HA_LOG", "trace")
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(&secret), "secret leaked in {args:?}");
    }
}

#[test]
fn wrong_key_and_bad_target_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let k = Knot::start(KnotOptions::default()).unwrap();
    let wrong = dir.path().join("wrong.key");
    let wrong_secret = "c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1zZXJ2ZXJzLWtleSE=";
    std::fs::write(&wrong, wrong_secret).unwrap();
    let cfg = config(dir.path(), &k, &wrong);
    let c = cfg.to_str().unwrap();
    let out = bin()
        .args(["--config", c, "dns", "set", "--to", "b", "--no-wait"])
        .assert()
        .code(3)
        .get_output()
        .stderr
        .clone();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("rejected the TSIG key"), "{text}");
    assert!(!text.contains(wrong_secret));
    bin()
        .args(["--config", c, "dns", "set", "--to", "nonsense"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--to"));
}
