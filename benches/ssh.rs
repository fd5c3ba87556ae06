//! Latency of the SSH executor against a real OpenSSH server of the lab (loopback, node A):
//! a full connection (TCP, key exchange, host-key check, public-key login), one command on an
//! open connection, and one `direct-tcpip` channel to a TCP service on the node.
//! Compare the numbers as ratios between commits, not absolutes.

#![allow(missing_docs)] // criterion_group!/criterion_main! generate undocumented items

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fspbx_ha::core::ssh::{SshSession, SshTarget};
use fspbx_ha_lab::sshd::{ClientKey, KeyKind, Sshd, SshdOptions, write_known_hosts};
use tokio::io::AsyncReadExt;

struct Node {
    sshd: Sshd,
    target: SshTarget,
    dir: std::path::PathBuf,
}

fn node(client: KeyKind) -> Node {
    let dir = std::env::temp_dir().join(format!(
        "fspbx-ha-bench-ssh-{}-{client}",
        std::process::id()
    ));
    let key = ClientKey::generate(&dir, client, None).expect("ssh-keygen");
    let sshd = Sshd::start(SshdOptions {
        authorized_keys: vec![key.public_line().to_owned()],
        dir: Some(dir.join("sshd")),
        ..SshdOptions::default()
    })
    .expect("lab sshd");
    let known_hosts = dir.join("known_hosts");
    write_known_hosts(&known_hosts, &[sshd.known_hosts_line()]).expect("known_hosts");
    let target = SshTarget::new(
        "bench",
        sshd.ip().to_string(),
        sshd.port(),
        sshd.user(),
        key.private_path(),
        known_hosts,
    );
    Node { sshd, target, dir }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.sshd.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ssh(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut group = c.benchmark_group("ssh");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));

    for kind in [KeyKind::Ed25519, KeyKind::Rsa] {
        let n = node(kind);
        group.bench_function(format!("connect_and_close/{kind}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let s = SshSession::connect(&n.target).await.expect("connect");
                    s.close().await;
                })
            })
        });
    }

    let n = node(KeyKind::Ed25519);
    let session = rt
        .block_on(SshSession::connect(&n.target))
        .expect("connect");
    group.bench_function("exec_true_on_open_connection", |b| {
        b.iter(|| {
            let out = rt.block_on(session.exec("true")).expect("exec");
            assert!(out.success());
        })
    });
    let (ip, port) = (n.sshd.ip().to_string(), n.sshd.port());
    group.bench_function("direct_tcpip_open_and_first_bytes", |b| {
        b.iter(|| {
            rt.block_on(async {
                // The node's own sshd is the TCP service: read its banner through the tunnel.
                let mut stream = session.open_tcp(&ip, port).await.expect("open_tcp");
                let mut banner = [0u8; 7];
                stream.read_exact(&mut banner).await.expect("banner");
                assert_eq!(&banner, b"SSH-2.0");
            })
        })
    });
    group.finish();
    rt.block_on(session.close());
}

criterion_group!(benches, ssh);
criterion_main!(benches);
