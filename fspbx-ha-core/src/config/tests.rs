use super::*;

fn template_with(edit: impl FnOnce(&str) -> String) -> String {
    edit(&ClusterConfig::template())
}

/// The template with `extra` appended, which must be refused: its problems, in order.
pub(super) fn problems_with(extra: &str) -> Vec<ConfigProblem> {
    match ClusterConfig::from_toml_str(&format!("{}\n{extra}", ClusterConfig::template())) {
        Err(Error::ConfigInvalid { problems, .. }) => problems,
        other => panic!("expected ConfigInvalid, got {:?}", other.map(|_| ())),
    }
}

/// The keys `problems` name, in order.
pub(super) fn keys(problems: &[ConfigProblem]) -> Vec<&str> {
    problems.iter().map(|p| p.key.as_str()).collect()
}

#[test]
fn template_parses_and_validates() {
    let c = ClusterConfig::from_toml_str(&ClusterConfig::template()).expect("template is valid");
    assert_eq!(c.nodes.len(), 2);
    assert_eq!(c.nodes[0].name, "a");
    assert_eq!(c.nodes[1].ssh.port, 22, "default port");
    assert_eq!(c.nodes[1].postgres.dbname, "fusionpbx");
    assert_eq!(c.folders.len(), 5, "FS PBX's folder set by default");
    assert_eq!(c.floating.ttl, 60);
    assert_eq!(c.policy.fall, 3);
    assert!(
        c.node("B")
            .is_some_and(|n| n.hostname == "server2.example.com")
    );
    assert_eq!(c.peer_of(&c.nodes[0]).unwrap().name, "b");
}

#[test]
fn port_zero_names_the_key_path() {
    // the second node's SSH port
    let text = template_with(|t| {
        t.replace(
            "host = \"192.0.2.20\"\nidentity",
            "host = \"192.0.2.20\"\nport = 0\nidentity",
        )
    });
    let err = ClusterConfig::from_toml_str(&text).unwrap_err();
    let Error::ConfigInvalid { problems, .. } = &err else {
        panic!("expected ConfigInvalid, got {err:?}")
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].to_string(),
        "nodes[1].ssh.port: expected 1..65535, got 0"
    );
    assert!(
        err.to_string()
            .contains("nodes[1].ssh.port: expected 1..65535, got 0")
    );
}

#[test]
fn out_of_range_and_wrong_types_name_the_key_path() {
    let text = template_with(|t| t.replacen("port = 22", "port = 70000", 1));
    let err = ClusterConfig::from_toml_str(&text).unwrap_err().to_string();
    assert!(err.contains("nodes[0].ssh.port"), "{err}");
    assert!(err.contains("70000"), "{err}");

    let text = template_with(|t| t.replace("ttl = 60", "ttl = \"sixty\""));
    let err = ClusterConfig::from_toml_str(&text).unwrap_err().to_string();
    assert!(err.contains("floating.ttl"), "{err}");

    let text =
        template_with(|t| t.replacen("connect_timeout = \"10s\"", "connect_timeout = \"soon\"", 1));
    let err = ClusterConfig::from_toml_str(&text).unwrap_err().to_string();
    assert!(err.contains("nodes[0].ssh.connect_timeout"), "{err}");
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let text = template_with(|t| t.replacen("user = \"root\"", "user = \"root\"\nusr = \"x\"", 1));
    let err = ClusterConfig::from_toml_str(&text).unwrap_err().to_string();
    assert!(err.contains("nodes[0].ssh"), "{err}");
    assert!(err.contains("usr"), "{err}");
}

#[test]
fn inline_secret_is_refused_without_echoing_it() {
    let text = template_with(|t| {
        t.replace(
            "password = \"env:FSPBX_HA_DB_PASSWORD_B\"",
            "password = \"S3cr3t-Inline-Pw\"",
        )
    });
    let err = ClusterConfig::from_toml_str(&text).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("nodes[1].postgres.password"), "{msg}");
    assert!(!msg.contains("S3cr3t-Inline-Pw"), "{msg}");
    assert!(!format!("{err:?}").contains("S3cr3t-Inline-Pw"));
}

#[test]
fn all_semantic_problems_are_listed_at_once() {
    let text = template_with(|t| {
        t.replace("name = \"b\"", "name = \"a\"")
            .replace("ttl = 60", "ttl = 0")
            .replace("name = \"pbx.example.com\"", "name = \"pbx.example.org\"")
            .replace("fall = 3", "fall = 0")
    });
    let Error::ConfigInvalid { problems, .. } = ClusterConfig::from_toml_str(&text).unwrap_err()
    else {
        panic!("expected ConfigInvalid")
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "nodes[1].name",
            "floating.name",
            "floating.ttl",
            "policy.fall"
        ],
        "{problems:#?}"
    );
}

#[test]
fn node_count_must_be_two() {
    let t = ClusterConfig::template();
    let start = t.find("# Node B").unwrap();
    let end = t.find("# The floating record").unwrap();
    let text = format!("{}{}", &t[..start], &t[end..]);
    let Error::ConfigInvalid { problems, .. } = ClusterConfig::from_toml_str(&text).unwrap_err()
    else {
        panic!("expected ConfigInvalid")
    };
    assert_eq!(problems[0].key, "nodes");
    assert_eq!(problems[0].got, "1 entries");
}

#[test]
fn syntax_errors_give_line_and_column() {
    let err = ClusterConfig::from_toml_str("[[nodes]\nname = 1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn round_trips_through_toml() {
    let c = ClusterConfig::from_toml_str(&ClusterConfig::template()).unwrap();
    let again = ClusterConfig::from_toml_str(&c.to_toml()).unwrap();
    assert_eq!(again.nodes, c.nodes);
    assert_eq!(again.folders, c.folders);
    assert_eq!(again.policy, c.policy);
}

#[test]
fn write_template_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cluster.toml");
    ClusterConfig::write_template(&p, false).unwrap();
    assert!(matches!(
        ClusterConfig::write_template(&p, false),
        Err(Error::AlreadyExists { .. })
    ));
    ClusterConfig::write_template(&p, true).unwrap();
    ClusterConfig::load(&p).unwrap();
}
