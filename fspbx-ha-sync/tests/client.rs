//! The typed client against real Syncthing daemons: system, config CRUD, pending, db, events,
//! and its typed errors.

mod common;

use std::time::{Duration, Instant};

use common::{Duo, REC, local};
use fspbx_ha_lab::syncthing::{Syncthing, SyncthingOptions};
use fspbx_ha_sync::model::{DeviceConfig, FolderConfig};
use fspbx_ha_sync::{DeviceId, Error, EventData, EventKind, Secret, SyncthingClient, WaitOptions};
use futures_util::StreamExt;
use serde_json::json;

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn system_routes_answer_with_typed_values() {
    let st = Syncthing::start(SyncthingOptions::node_a()).unwrap();
    let c = SyncthingClient::new("a", &st.api_url(), Secret::new(st.api_key())).unwrap();
    c.ping().await.unwrap();
    c.health().await.unwrap();
    assert_eq!(c.my_id().await.unwrap().as_str(), st.device_id());
    let status = c.system_status().await.unwrap();
    assert_eq!(status.gui_address_used, st.gui_addr().to_string());
    assert!(
        status
            .connection_service_status
            .contains_key(&st.listen_address()),
        "{:?}",
        status.connection_service_status
    );
    let v = c.version().await.unwrap();
    assert!(v.version.starts_with('v') && v.major() >= 1, "{v:?}");
    assert!(
        c.connections()
            .await
            .unwrap()
            .connections
            .values()
            .all(|c| !c.connected),
        "no peer configured"
    );
    let opts = c.options().await.unwrap();
    assert_eq!(opts["listenAddresses"], json!([st.listen_address()]));
}

#[tokio::test]
async fn wrong_key_is_unauthorized_and_never_echoed() {
    let st = Syncthing::start(SyncthingOptions::node_a()).unwrap();
    let c = SyncthingClient::new("a", &st.api_url(), Secret::new("not-the-key-3141")).unwrap();
    let err = c.system_status().await.unwrap_err();
    assert!(
        matches!(&err, Error::Unauthorized { node, status: 403, .. } if node == "a"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("node a: Syncthing at") && text.contains("refused the API key"),
        "{text}"
    );
    assert!(!text.contains("3141") && !format!("{err:?}").contains("3141"));
    assert!(!text.contains(st.api_key()));
}

#[tokio::test]
async fn daemon_down_is_a_transport_error_naming_the_node() {
    let mut st = Syncthing::start(SyncthingOptions::node_b()).unwrap();
    let c = SyncthingClient::new("b", &st.api_url(), Secret::new(st.api_key())).unwrap();
    c.ping().await.unwrap();
    st.stop();
    let err = c.ping().await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert_eq!(err.node(), Some("b"));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "node b: cannot reach Syncthing at {}/",
            st.api_url()
        )),
        "{text}"
    );
    assert!(text.contains("refused"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_device_ids_are_refused_before_any_request() {
    let st = Syncthing::start(SyncthingOptions::node_a()).unwrap();
    let c = SyncthingClient::new("a", &st.api_url(), Secret::new(st.api_key())).unwrap();
    let bad =
        DeviceConfig(json!({"deviceID": "NOT-A-DEVICE-ID", "name": "x", "addresses": ["dynamic"]}));
    let err = c.put_device(&bad).await.unwrap_err();
    assert!(
        matches!(&err, Error::MalformedDeviceId { context, .. } if context.contains("node a")),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("\"NOT-A-DEVICE-ID\" is not a Syncthing device ID"),
        "{err}"
    );
    // A typo in a real id is caught by its check characters.
    let typo = st.device_id().replacen(
        &st.device_id()[8..9],
        if &st.device_id()[8..9] == "A" {
            "B"
        } else {
            "A"
        },
        1,
    );
    let err = DeviceId::parse(&typo, "nodes[1]").unwrap_err().to_string();
    assert!(err.contains("check character"), "{err}");
    assert_eq!(c.devices().await.unwrap().len(), 1, "nothing was added");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_crud_round_trips_whole_objects() {
    let duo = Duo::start(&[REC]);
    let (a, b) = (duo.client(0), duo.client(1));
    let id_b = DeviceId::parse(duo.b.device_id(), "b").unwrap();
    // PUT a device, read it, PATCH it, DELETE it.
    a.put_device(&DeviceConfig(
        json!({"deviceID": id_b.as_str(), "name": "lab-b", "addresses": [duo.b.listen_address()]}),
    ))
    .await
    .unwrap();
    let d = a.device(&id_b).await.unwrap();
    assert_eq!(
        (d.name(), d.addresses()),
        ("lab-b", vec![duo.b.listen_address()])
    );
    assert!(
        d.0.get("compression").is_some(),
        "the daemon filled its defaults"
    );
    a.patch_device(&id_b, &json!({"name": "renamed"}))
        .await
        .unwrap();
    assert_eq!(a.device(&id_b).await.unwrap().name(), "renamed");
    a.delete_device(&id_b).await.unwrap();
    let err = a.device(&id_b).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    // A folder read back and PUT unchanged is identical (no field lost).
    let path = local(&duo.a, REC).display().to_string();
    let mut f = a
        .default_folder()
        .await
        .unwrap()
        .expect("1.19 has /rest/config/defaults/folder");
    f.0["id"] = json!("crud-test");
    f.0["path"] = json!(path);
    a.put_folder(&f).await.unwrap();
    let read = a.folder("crud-test").await.unwrap();
    a.put_folder(&read).await.unwrap();
    assert_eq!(a.folder("crud-test").await.unwrap(), read);
    a.patch_folder("crud-test", &json!({"rescanIntervalS": 77}))
        .await
        .unwrap();
    assert_eq!(
        a.folder("crud-test").await.unwrap().rescan_interval_s(),
        Some(77)
    );
    // db routes on a real folder.
    a.scan("crud-test", None).await.unwrap();
    let st = a.folder_status("crud-test").await.unwrap();
    assert_eq!(st.state, "idle");
    assert_eq!(
        a.completion("crud-test", None).await.unwrap().completion,
        100.0
    );
    assert!(
        a.folder_errors("crud-test")
            .await
            .unwrap()
            .errors
            .is_empty()
    );
    a.delete_folder("crud-test").await.unwrap();
    let err = a.folder_status("crud-test").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("\"crud-test\" is not configured on this node"),
        "{err}"
    );

    // Options: PATCH one field, PUT the whole object back.
    let opts = a.options().await.unwrap();
    a.patch_options(&json!({"reconnectionIntervalS": 33}))
        .await
        .unwrap();
    assert_eq!(a.options().await.unwrap()["reconnectionIntervalS"], 33);
    a.put_options(&opts).await.unwrap();
    assert_eq!(a.options().await.unwrap(), opts);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_devices_and_folders_show_what_the_peer_offers() {
    let duo = Duo::start(&[REC]);
    let (a, b) = (duo.client(0), duo.client(1));
    let (id_a, id_b) = (a.my_id().await.unwrap(), b.my_id().await.unwrap());
    // Only A knows B: B sees A knocking.
    a.put_device(&DeviceConfig(
        json!({"deviceID": id_b.as_str(), "name": "lab-b", "addresses": [duo.b.listen_address()]}),
    ))
    .await
    .unwrap();
    eventually("B's pending device A", || async {
        b.pending_devices()
            .await
            .unwrap()
            .iter()
            .any(|p| p.device_id == id_a.as_str())
    })
    .await;
    // B accepts A; A shares a folder with B that B does not have: B sees it pending.
    b.put_device(&DeviceConfig(
        json!({"deviceID": id_a.as_str(), "name": "lab-a", "addresses": [duo.a.listen_address()]}),
    ))
    .await
    .unwrap();
    let mut f = a.default_folder().await.unwrap().unwrap();
    f.0["id"] = json!("offered");
    f.0["label"] = json!("Offered folder");
    f.0["path"] = json!(local(&duo.a, REC).display().to_string());
    f.0["devices"] = json!([{"deviceID": id_a.as_str()}, {"deviceID": id_b.as_str()}]);
    a.put_folder(&FolderConfig(f.0)).await.unwrap();
    eventually("B's pending folder", || async {
        b.pending_folders().await.unwrap().iter().any(|p| {
            p.folder == "offered" && p.offered_by == id_a.as_str() && p.label == "Offered folder"
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_reports_connection_state_and_completion() {
    let duo = Duo::start(&[REC]);
    let a = duo.client(0);
    let since = a.last_event_id(&EventKind::SYNC).await.unwrap();
    let events = a.event_stream(since, EventKind::SYNC.to_vec(), Duration::from_secs(5));
    let pair = duo.pair(&[(REC, 3600)]);
    pair.apply().await.unwrap();
    std::fs::write(local(&duo.a, REC).join("event probe.txt"), b"x").unwrap();
    pair.wait(&WaitOptions::new(Duration::from_secs(60)), |_| {})
        .await
        .unwrap();

    let folder = fspbx_ha_sync::stable_folder_id(REC);
    let id_b = duo.b.device_id().to_owned();
    let (mut connected, mut state, mut completion, mut last_id) = (false, false, false, since);
    let mut events = Box::pin(events);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(connected && state && completion) {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, events.next())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        assert!(ev.id > last_id, "ids increase: {} after {last_id}", ev.id);
        last_id = ev.id;
        match &ev.data {
            EventData::DeviceConnected { id, .. } if *id == id_b => connected = true,
            EventData::StateChanged { folder: f, .. } if *f == folder => state = true,
            EventData::FolderCompletion {
                folder: f,
                device,
                completion: c,
                ..
            } if *f == folder && *device == id_b && *c == 100.0 => completion = true,
            _ => {}
        }
    }
}
