//! The lab's Syncthing daemons: start, answer REST with the API key, stop without leftovers.

use std::io::{Read, Write};
use std::net::TcpStream;

use fspbx_ha_lab::syncthing::{Syncthing, SyncthingOptions};

/// A raw HTTP/1.0 GET (the lab crate has no HTTP client): (status line, body).
fn get(st: &Syncthing, path: &str, key: Option<&str>) -> (String, String) {
    let mut s = TcpStream::connect(st.gui_addr()).unwrap();
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n", st.gui_addr());
    if let Some(k) = key {
        req.push_str(&format!("X-API-Key: {k}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let status = buf.lines().next().unwrap_or_default().to_owned();
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] state, f[1] ppid, f[2] pgrp
        if f[2] == pid.to_string() && f[0] != "Z" {
            out.push(p);
        }
    }
    out
}

#[test]
fn two_daemons_start_answer_and_stop_completely() {
    let mut a = Syncthing::start(SyncthingOptions::node_a()).unwrap();
    let b = Syncthing::start(SyncthingOptions::node_b()).unwrap();
    assert_ne!(a.device_id(), b.device_id());
    assert!(a.api_url().starts_with("http://127.0.0.2:"));
    assert!(b.listen_address().starts_with("tcp://127.0.0.3:"));

    let (status, body) = get(&a, "/rest/system/status", Some(a.api_key()));
    assert!(status.contains(" 200 "), "{status} {body}");
    assert!(
        body.contains(&format!("\"myID\": \"{}\"", a.device_id()))
            || body.contains(&format!("\"myID\":\"{}\"", a.device_id())),
        "{body}"
    );
    let (status, _) = get(&a, "/rest/system/status", None);
    assert!(status.contains(" 403 "), "no key must be refused: {status}");

    let (_, config) = get(&a, "/rest/config", Some(a.api_key()));
    assert!(config.contains(&a.listen_address()), "{config}");
    assert!(
        config.contains("\"name\": \"lab-a\"") || config.contains("\"name\":\"lab-a\""),
        "{config}"
    );
    assert_eq!(
        std::fs::read_to_string(a.api_key_file()).unwrap(),
        a.api_key()
    );

    let pid = a.pid().unwrap();
    assert!(!children_of(pid).is_empty());
    a.stop();
    assert!(!a.is_running());
    assert!(
        children_of(pid).is_empty(),
        "processes of the group left: {:?}",
        children_of(pid)
    );
    // Restart on the same ports and home keeps the identity.
    a.start_again().unwrap();
    let (_, body) = get(&a, "/rest/system/status", Some(a.api_key()));
    assert!(body.contains(a.device_id()), "{body}");
}
