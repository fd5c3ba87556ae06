//! Health probe latency in the lab: SIP OPTIONS over UDP and TCP against Kamailio, a TCP
//! connect (to a plain listener), and PostgreSQL (fresh connection + `SELECT 1` + "accepts writes"), all on
//! loopback; plus the pure SIP code (render a request, parse and match a response).
//!
//! A plain loop of `PROBE_SAMPLES` probes per kind prints p50/p95/p99 of the latency each
//! `Observation` reports (what the failover controller sees); criterion then times the UDP
//! SIP probe and the pure SIP code.
//! Loopback, 2 cores: compare as ratios between commits.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fspbx_ha::core::config::{ClusterConfig, NodeSpec, SipTransport};
use fspbx_ha::core::probe::sip_message::{Framing, OptionsRequest, Parsed, parse_response};
use fspbx_ha::core::probe::{PgProbe, PgProbeMode, Probe, SipProbe, TcpProbe};
use fspbx_ha_lab::kamailio::{Kamailio, KamailioOptions};
use fspbx_ha_lab::postgres::{PgOptions, PgServer};

/// Probes per kind in the percentile loop.
const PROBE_SAMPLES: usize = 500;

fn percentiles(rt: &tokio::runtime::Runtime, name: &str, probe: &dyn Probe) {
    let mut lat: Vec<Duration> = Vec::with_capacity(PROBE_SAMPLES);
    rt.block_on(async {
        for _ in 0..PROBE_SAMPLES {
            let o = probe.probe().await.expect("probe configured");
            assert!(o.ok, "{o}");
            lat.push(o.latency);
        }
    });
    lat.sort();
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
    println!(
        "probe/{name}: n={} p50={:?} p95={:?} p99={:?} max={:?}",
        lat.len(),
        p(0.50),
        p(0.95),
        p(0.99),
        lat[lat.len() - 1]
    );
}

fn pg_node(pg: &PgServer) -> NodeSpec {
    let mut toml = String::new();
    for (name, ip) in [("a", pg.ip().to_string()), ("b", "127.0.0.3".to_owned())] {
        toml.push_str(&format!(
            r#"
[[nodes]]
name = "{name}"
hostname = "{name}.lab.test"
addresses = ["{ip}"]
ssh = {{ host = "{ip}", identity = "/nonexistent" }}
postgres = {{ host = "{ip}", port = {port}, password = "file:{pw}" }}
"#,
            port = pg.port(),
            pw = pg.password_file().display(),
        ));
    }
    toml.push_str(
        r#"
[floating]
zone = "lab.test"
name = "pbx.lab.test"
provider = { kind = "rfc2136", server = "127.0.0.53:53", key_name = "k", key_secret = "env:NONE" }
"#,
    );
    let mut config = ClusterConfig::from_toml_str(&toml).expect("lab configuration");
    config.nodes.swap_remove(0)
}

fn probes(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let sip = Kamailio::start(KamailioOptions::node_a()).expect("lab Kamailio");
    let pg = PgServer::start(PgOptions {
        name: "pg-bench-probe".into(),
        ..PgOptions::default()
    })
    .expect("lab PostgreSQL");
    let host = sip.ip().to_string();
    let udp = SipProbe::new("a", &host, sip.port(), SipTransport::Udp);
    let tcp = SipProbe::new("a", &host, sip.port(), SipTransport::Tcp);
    // A plain listener that accepts and drops: tens of thousands of bare connects would fill
    // Kamailio's connection table, and the probe's own cost is what is measured here.
    let listener = std::net::TcpListener::bind((sip.ip(), 0)).expect("listener");
    let listen_port = listener.local_addr().expect("local addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let connect = TcpProbe::new("a", &host, listen_port);
    let node = pg_node(&pg);
    let pg_probe = PgProbe::new("nodes[0]", &node, PgProbeMode::Writable, None);

    percentiles(&rt, "sip_udp", &udp);
    percentiles(&rt, "sip_tcp", &tcp);
    percentiles(&rt, "tcp_connect", &connect);
    percentiles(&rt, "postgres_writable", &pg_probe);

    // Criterion only for UDP: each TCP-based probe leaves a connection in TIME_WAIT, and the
    // tens of thousands criterion would run exhaust the machine's ephemeral ports (other
    // suites share them). TCP-based probes are measured by the loop above only.
    let mut group = c.benchmark_group("probe");
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("sip_options_udp", |b| {
        b.iter(|| {
            let o = rt.block_on(udp.probe()).expect("probe configured");
            assert!(o.ok, "{o}");
        })
    });
    group.finish();

    let mut pure = c.benchmark_group("sip_message");
    let req = OptionsRequest::new(
        SipTransport::Udp,
        "127.0.0.2",
        5060,
        "127.0.0.2:40000".parse().expect("addr"),
    );
    let answer = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.2:40000;branch={};rport=40000\r\n\
         From: <sip:fspbx-ha@127.0.0.2>;tag={}\r\nTo: <sip:ping@127.0.0.2:5060>;tag=abc\r\n\
         Call-ID: {}\r\nCSeq: 1 OPTIONS\r\nServer: kamailio (5.6.3 (x86_64/linux))\r\n\
         Content-Length: 0\r\n\r\n",
        req.branch, req.from_tag, req.call_id
    );
    pure.bench_function("render_request", |b| b.iter(|| req.render()));
    pure.bench_function("parse_and_match_response", |b| {
        b.iter(
            || match parse_response(answer.as_bytes(), Framing::Datagram) {
                Ok(Parsed::Complete { response, .. }) => assert!(req.is_answered_by(&response)),
                other => panic!("{other:?}"),
            },
        )
    });
    pure.finish();
}

criterion_group!(benches, probes);
criterion_main!(benches);
