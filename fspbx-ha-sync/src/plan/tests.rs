use super::*;

const ID_A: &str = "R574UVK-JBUXSSJ-YV5HM7X-36H5G6G-S6VLDNQ-J4ORHDN-HSWBF4W-FLNMTAG";

/// A second valid id, made by computing check characters for an arbitrary 52-char body.
fn id_b() -> DeviceId {
    DeviceId::parse("MFZWI3DBONSGYYLTMRWGC43ENRQXGZDMMFZWI3DBONSGYYLTMRWG", "t").unwrap()
}

fn intent(folders: Vec<FolderIntent>, hardening: bool) -> PairIntent {
    PairIntent {
        nodes: [
            NodeIntent::new("a", "server1", None),
            NodeIntent::new("b", "server2", None),
        ],
        folders,
        hardening,
    }
}

fn fresh(id: DeviceId, listen: &str) -> Observed {
    Observed {
        devices: vec![DeviceConfig(
            json!({"deviceID": id.as_str(), "name": "vm", "addresses": ["dynamic"], "x2": 1}),
        )],
        device_id: id,
        folders: vec![],
        options: json!({"listenAddresses": [listen], "globalAnnounceEnabled": true, "relaysEnabled": false,
                         "localAnnounceEnabled": false, "natEnabled": false, "unknown2x": "kept"}),
        folder_template: Some(FolderConfig(
            json!({"id": "", "path": "~", "type": "sendreceive",
            "rescanIntervalS": 3600, "fsWatcherEnabled": true, "fsWatcherDelayS": 10, "newIn2x": true}),
        )),
        device_template: Some(DeviceConfig(
            json!({"deviceID": "", "addresses": ["dynamic"], "compression": "metadata"}),
        )),
    }
}

fn two_folders() -> Vec<FolderIntent> {
    vec![
        FolderIntent {
            path: "/srv/rec".into(),
            id: None,
            rescan_interval_s: 3600,
        },
        FolderIntent {
            path: "/srv/cache/".into(),
            id: None,
            rescan_interval_s: 300,
        },
    ]
}

/// What a daemon does with each step (PUT inserts/replaces, PATCH merges top-level fields).
fn simulate(obs: &mut [Observed; 2], steps: &[Step]) {
    for s in steps {
        let o = &mut obs[s.node_index];
        match &s.action {
            Action::AddDevice { config, .. } => o.devices.push(config.clone()),
            Action::UpdateDevice { device_id, patch } => {
                let d = o
                    .devices
                    .iter_mut()
                    .find(|d| d.device_id() == device_id.as_str())
                    .unwrap();
                merge(&mut d.0, patch);
            }
            Action::AddFolder { config, .. } => o.folders.push(config.clone()),
            Action::UpdateFolder { folder_id, patch } => {
                let f = o.folders.iter_mut().find(|f| f.id() == folder_id).unwrap();
                merge(&mut f.0, patch);
            }
            Action::UpdateOptions { patch } => merge(&mut o.options, patch),
        }
    }
}

fn merge(target: &mut Value, patch: &Value) {
    for (k, v) in patch.as_object().unwrap() {
        target.as_object_mut().unwrap().insert(k.clone(), v.clone());
    }
}

#[test]
fn fresh_pair_gets_devices_then_folders_and_a_second_plan_is_empty() {
    let mut obs = [
        fresh(ID_A.parse().unwrap(), "tcp://127.0.0.2:22001"),
        fresh(id_b(), "tcp://127.0.0.3:22002"),
    ];
    let i = intent(two_folders(), false);
    let p = plan(&i, [&obs[0], &obs[1]]).unwrap();
    assert_eq!(
        p.sync_addresses,
        [
            "tcp://127.0.0.2:22001".to_owned(),
            "tcp://127.0.0.3:22002".to_owned()
        ]
    );
    let kinds: Vec<String> = p.steps.iter().map(|s| s.summary()).collect();
    assert_eq!(p.steps.len(), 6, "{kinds:#?}");
    // Devices first, each with the peer's explicit address and configured name.
    match &p.steps[0].action {
        Action::AddDevice { device_id, config } => {
            assert_eq!(p.steps[0].node, "a");
            assert_eq!(device_id, &id_b());
            assert_eq!(config.addresses(), ["tcp://127.0.0.3:22002"]);
            assert_eq!(config.name(), "server2");
            assert_eq!(config.0["compression"], "metadata", "template fields kept");
        }
        other => panic!("{other:?}"),
    }
    match &p.steps[2].action {
        Action::AddFolder {
            folder_id,
            path,
            config,
        } => {
            assert_eq!(path, "/srv/rec");
            assert_eq!(folder_id, &stable_folder_id("/srv/rec"));
            assert_eq!(config.folder_type(), "sendreceive");
            assert_eq!(config.device_ids(), [ID_A.to_owned(), id_b().to_string()]);
            assert_eq!(config.rescan_interval_s(), Some(3600));
            assert!(config.fs_watcher_enabled());
            assert_eq!(config.0["newIn2x"], true, "template fields kept");
            assert_eq!(config.label(), "rec");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.folders[1].path, "/srv/cache", "trailing slash normalized");
    simulate(&mut obs, &p.steps);
    let again = plan(&i, [&obs[0], &obs[1]]).unwrap();
    assert!(again.is_empty(), "{:#?}", again.steps);
}

#[test]
fn folder_on_one_side_is_adopted_and_completed() {
    let mut obs = [
        fresh(ID_A.parse().unwrap(), "tcp://127.0.0.2:22001"),
        fresh(id_b(), "tcp://127.0.0.3:22002"),
    ];
    // Node B already shares /srv/rec under FS PBX's own id, with a drifted interval.
    obs[1].folders.push(FolderConfig(json!({"id": "abcde-12345", "path": "/srv/rec/", "type": "sendreceive",
        "devices": [{"deviceID": id_b().as_str()}], "rescanIntervalS": 60, "fsWatcherEnabled": true, "paused": false})));
    let i = intent(two_folders(), false);
    let p = plan(&i, [&obs[0], &obs[1]]).unwrap();
    assert_eq!(p.folders[0].id, "abcde-12345");
    assert_eq!(p.folders[0].id_source, "adopted from node b");
    let on_a: Vec<&Step> = p.steps.iter().filter(|s| matches!(&s.action, Action::AddFolder { folder_id, .. } if folder_id == "abcde-12345")).collect();
    assert_eq!(on_a.len(), 1);
    assert_eq!(on_a[0].node, "a");
    assert!(
        on_a[0].why.contains("exists on node b only"),
        "{}",
        on_a[0].why
    );
    let upd = p
        .steps
        .iter()
        .find(|s| matches!(s.action, Action::UpdateFolder { .. }))
        .unwrap();
    assert_eq!(upd.node, "b");
    let Action::UpdateFolder { patch, .. } = &upd.action else {
        unreachable!()
    };
    assert_eq!(patch["rescanIntervalS"], 3600);
    assert_eq!(
        patch["devices"].as_array().unwrap().len(),
        2,
        "peer added, own entry kept"
    );
    simulate(&mut obs, &p.steps);
    assert!(plan(&i, [&obs[0], &obs[1]]).unwrap().is_empty());
}

#[test]
fn known_device_with_dynamic_address_gets_the_explicit_one() {
    let mut obs = [
        fresh(ID_A.parse().unwrap(), "tcp://127.0.0.2:22001"),
        fresh(id_b(), "tcp://127.0.0.3:22002"),
    ];
    obs[0].devices.push(DeviceConfig(json!({"deviceID": id_b().as_str(), "name": "server2", "addresses": ["dynamic"], "paused": true})));
    let p = plan(&intent(vec![], false), [&obs[0], &obs[1]]).unwrap();
    let s = &p.steps[0];
    assert_eq!(s.node, "a");
    let Action::UpdateDevice { patch, .. } = &s.action else {
        panic!("{s:?}")
    };
    assert_eq!(patch["addresses"], json!(["tcp://127.0.0.3:22002"]));
    assert_eq!(patch["paused"], false);
    assert!(patch.get("name").is_none());
    simulate(&mut obs, &p.steps);
    assert!(
        plan(&intent(vec![], false), [&obs[0], &obs[1]])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn hardening_turns_off_what_is_on_only_when_asked() {
    let obs = [
        fresh(ID_A.parse().unwrap(), "tcp://127.0.0.2:22001"),
        fresh(id_b(), "tcp://127.0.0.3:22002"),
    ];
    assert!(
        plan(&intent(vec![], false), [&obs[0], &obs[1]])
            .unwrap()
            .steps
            .iter()
            .all(|s| !matches!(s.action, Action::UpdateOptions { .. }))
    );
    let p = plan(&intent(vec![], true), [&obs[0], &obs[1]]).unwrap();
    let opts: Vec<&Step> = p
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::UpdateOptions { .. }))
        .collect();
    assert_eq!(opts.len(), 2);
    let Action::UpdateOptions { patch } = &opts[0].action else {
        unreachable!()
    };
    assert_eq!(patch, &json!({"globalAnnounceEnabled": false}));
}

#[test]
fn id_disagreement_and_conflicts_are_errors_naming_nodes() {
    let mut obs = [
        fresh(ID_A.parse().unwrap(), "tcp://127.0.0.2:1"),
        fresh(id_b(), "tcp://127.0.0.3:2"),
    ];
    obs[0]
        .folders
        .push(FolderConfig(json!({"id": "one", "path": "/srv/rec"})));
    obs[1]
        .folders
        .push(FolderConfig(json!({"id": "two", "path": "/srv/rec"})));
    let e = plan(&intent(two_folders(), false), [&obs[0], &obs[1]])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("node a shares it as \"one\"") && e.contains("node b as \"two\""),
        "{e}"
    );

    let mut obs = [
        fresh(ID_A.parse().unwrap(), "tcp://127.0.0.2:1"),
        fresh(id_b(), "tcp://127.0.0.3:2"),
    ];
    obs[1]
        .folders
        .push(FolderConfig(json!({"id": "taken", "path": "/elsewhere"})));
    let i = intent(
        vec![FolderIntent {
            path: "/srv/rec".into(),
            id: Some("taken".into()),
            rescan_interval_s: 60,
        }],
        false,
    );
    let e = plan(&i, [&obs[0], &obs[1]]).unwrap_err().to_string();
    assert!(
        e.starts_with("node b: folder id \"taken\" is already used for /elsewhere"),
        "{e}"
    );

    let same = [
        fresh(ID_A.parse().unwrap(), "tcp://127.0.0.2:1"),
        fresh(ID_A.parse().unwrap(), "tcp://127.0.0.3:2"),
    ];
    let e = plan(&intent(vec![], false), [&same[0], &same[1]])
        .unwrap_err()
        .to_string();
    assert!(e.contains("same Syncthing device"), "{e}");
}

#[test]
fn sync_address_derivation() {
    let mut n = NodeIntent::new("b", "b", None);
    let o = |l: &[&str]| json!({"listenAddresses": l});
    assert_eq!(
        sync_address(&n, &o(&["tcp://10.0.0.2:22000"])).unwrap(),
        "tcp://10.0.0.2:22000"
    );
    let e = sync_address(&n, &o(&["default"])).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "node b: cannot tell where its peer should connect (listen addresses: default)"
        ),
        "{e}"
    );
    n.peer_address = Some("192.0.2.20".parse().unwrap());
    assert_eq!(
        sync_address(&n, &o(&["default"])).unwrap(),
        "tcp://192.0.2.20:22000"
    );
    assert_eq!(
        sync_address(&n, &o(&["quic://0.0.0.0:22000", "tcp://0.0.0.0:23000"])).unwrap(),
        "tcp://192.0.2.20:23000"
    );
    n.peer_address = Some("2001:db8::1".parse().unwrap());
    assert_eq!(
        sync_address(&n, &o(&["tcp://:22000"])).unwrap(),
        "tcp://[2001:db8::1]:22000"
    );
    n.sync_address = Some("tcp://h:1".into());
    assert_eq!(sync_address(&n, &o(&[])).unwrap(), "tcp://h:1");
}

#[test]
fn path_prefix_moves_folders_on_that_node_only() {
    let mut obs = [
        fresh(ID_A.parse().unwrap(), "tcp://127.0.0.2:1"),
        fresh(id_b(), "tcp://127.0.0.3:2"),
    ];
    let mut i = intent(
        vec![FolderIntent {
            path: "/srv/rec".into(),
            id: None,
            rescan_interval_s: 60,
        }],
        false,
    );
    i.nodes[1].path_prefix = Some("/tmp/b/".into());
    obs[1].folders.push(FolderConfig(json!({"id": "old", "path": "/tmp/b/srv/rec", "type": "sendreceive",
        "devices": [{"deviceID": id_b().as_str()}], "rescanIntervalS": 60, "fsWatcherEnabled": true})));
    let p = plan(&i, [&obs[0], &obs[1]]).unwrap();
    assert_eq!(p.folders[0].id, "old", "adopted through the prefixed path");
    let add = p
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::AddFolder { path, .. } => Some((s.node.clone(), path.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(add, ("a".to_owned(), "/srv/rec".to_owned()));
    simulate(&mut obs, &p.steps);
    assert!(plan(&i, [&obs[0], &obs[1]]).unwrap().is_empty());
}
