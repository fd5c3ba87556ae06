//! Health probes against real servers on loopback: Kamailio (SIP OPTIONS over UDP and TCP), a
//! Python HTTP(S) server, PostgreSQL and Syncthing from the lab. Every server is owned by a
//! guard and stopped by PID, also when a test fails; ports are free ports, so tests run in
//! parallel.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fspbx_ha_core::config::{ClusterConfig, SyncthingSpec};
use fspbx_ha_core::probe::sip_message::OptionsRequest;
use fspbx_ha_core::probe::{
    HttpProbe, Observation, PgProbe, PgProbeMode, Probe, ProbeKind, ProbeSet, SipProbe,
    SipTransport, SyncthingHealthProbe, TcpProbe,
};
use fspbx_ha_lab::kamailio::{Kamailio, KamailioOptions, OptionsReply};
use fspbx_ha_lab::ports::free_port;
use fspbx_ha_lab::postgres::{PgOptions, PgServer};
use fspbx_ha_lab::process::{Guard, wait_until};
use fspbx_ha_lab::syncthing::{Syncthing, SyncthingOptions};
use fspbx_ha_lab::{NODE_A_IP, NODE_B_IP};

const BOTH: [SipTransport; 2] = [SipTransport::Udp, SipTransport::Tcp];

fn kamailio(reply: OptionsReply) -> Kamailio {
    Kamailio::start(KamailioOptions {
        reply,
        ..KamailioOptions::node_a()
    })
    .expect("Kamailio starts")
}

fn sip(k: &Kamailio, t: SipTransport) -> SipProbe {
    SipProbe::new("a", &k.ip().to_string(), k.port(), t)
}

async fn observe(p: &dyn Probe) -> Observation {
    p.probe().await.expect("the probe is configured correctly")
}

// ------------------------------------------------------------------------------------- SIP

#[tokio::test]
async fn sip_options_gets_200_over_udp_and_tcp() {
    let k = kamailio(OptionsReply::Ok);
    for t in BOTH {
        let p = sip(&k, t).with_timeout(Duration::from_secs(2));
        let o = observe(&p).await;
        assert!(o.ok, "{o}");
        assert_eq!(o.kind, ProbeKind::sip(t));
        assert_eq!(o.node, "a");
        assert!(o.detail.starts_with("200 OK from kamailio"), "{o}");
        // Nothing else arrived and nothing had to be sent twice.
        assert!(
            !o.detail.contains("ignored") && !o.detail.contains("retransmission"),
            "{o}"
        );
        assert!(
            o.latency > Duration::ZERO && o.latency < Duration::from_secs(2),
            "{o}"
        );
        assert!(o.target.ends_with(&format!(
            ":{};transport={}",
            k.port(),
            ["udp", "tcp"][t as usize]
        )));
    }
}

/// A real stray response reaches the probe's socket before its own: Kamailio answers a request
/// sent from another socket whose Via names the probe's port (no `rport`, so Kamailio replies to
/// the Via). The probe must skip it by its branch/Call-ID and still take its own 200.
#[tokio::test]
async fn sip_udp_ignores_a_response_to_another_request() {
    let mut k = kamailio(OptionsReply::Ok);
    let probe_port = free_port(NODE_A_IP);
    let probe_addr = SocketAddr::new(NODE_A_IP, probe_port);

    // Queue the stray request first while Kamailio is paused, then the probe's.
    k.pause();
    let stray = OptionsRequest::new(SipTransport::Udp, &k.ip().to_string(), k.port(), probe_addr);
    let stray_text = stray.render().replace(";rport", "");
    let other = UdpSocket::bind(SocketAddr::new(NODE_A_IP, 0)).unwrap();
    other.send_to(stray_text.as_bytes(), k.addr()).unwrap();

    let p = sip(&k, SipTransport::Udp)
        .bind_to(probe_addr)
        .with_timeout(Duration::from_secs(3));
    let run = tokio::spawn(async move { p.probe().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    k.resume();
    let o = run.await.unwrap().unwrap();
    assert!(o.ok, "{o}");
    assert!(o.detail.starts_with("200 OK"), "{o}");
    assert!(o.detail.contains("ignored 1 unmatched message"), "{o}");
}

#[tokio::test]
async fn sip_udp_paused_responder_times_out_within_the_timeout() {
    let mut k = kamailio(OptionsReply::Ok);
    k.pause();
    let timeout = Duration::from_millis(400);
    for t in BOTH {
        let o = observe(&sip(&k, t).with_timeout(timeout)).await;
        assert!(!o.ok, "{o}");
        assert!(o.detail.contains("no answer within 400ms"), "{o}");
        // Bounded by the probe's own timeout (plus scheduling slack), not by anything else.
        assert!(
            o.latency >= timeout && o.latency < timeout + Duration::from_millis(300),
            "{o}"
        );
    }
    k.resume();
    for t in BOTH {
        let o = observe(&sip(&k, t).with_timeout(Duration::from_secs(2))).await;
        assert!(o.ok, "after SIGCONT: {o}");
    }
}

#[tokio::test]
async fn sip_403_is_alive_by_default_and_unhealthy_when_2xx_is_required() {
    let k = kamailio(OptionsReply::Status(403, "Forbidden".into()));
    for t in BOTH {
        let o = observe(&sip(&k, t)).await;
        assert!(o.ok, "{o}");
        assert!(o.detail.starts_with("403 Forbidden"), "{o}");
        let o = observe(&sip(&k, t).require_2xx(true)).await;
        assert!(!o.ok, "{o}");
        assert!(
            o.detail.starts_with("403 Forbidden") && o.detail.contains("a 2xx is required"),
            "{o}"
        );
    }
}

#[tokio::test]
async fn sip_silent_responder_is_not_ok_and_udp_retransmits() {
    let k = kamailio(OptionsReply::Silent);
    let o = observe(&sip(&k, SipTransport::Udp).with_timeout(Duration::from_millis(1200))).await;
    assert!(!o.ok, "{o}");
    assert!(o.detail.starts_with("no answer within 1.2s"), "{o}");
    assert!(o.detail.contains("1 retransmission(s)"), "{o}");
    let o = observe(&sip(&k, SipTransport::Tcp).with_timeout(Duration::from_millis(500))).await;
    assert!(
        !o.ok && o.detail.starts_with("no answer within 500ms"),
        "{o}"
    );
}

#[tokio::test]
async fn sip_nothing_listening_is_refused_at_once() {
    let port = free_port(NODE_B_IP);
    let timeout = Duration::from_secs(3);
    let o =
        observe(&SipProbe::new("b", "127.0.0.3", port, SipTransport::Udp).with_timeout(timeout))
            .await;
    assert!(!o.ok, "{o}");
    assert!(o.detail.contains("port unreachable (ICMP)"), "{o}");
    assert!(o.latency < timeout, "{o}");
    let o =
        observe(&SipProbe::new("b", "127.0.0.3", port, SipTransport::Tcp).with_timeout(timeout))
            .await;
    assert!(!o.ok, "{o}");
    assert!(o.detail.contains("connection refused"), "{o}");
    assert!(o.latency < timeout, "{o}");
}

/// The lab responder changes how it answers on the same port (a SIP stack that hangs while
/// its process lives, then recovers).
#[tokio::test]
async fn sip_responder_that_stops_answering_then_recovers() {
    let mut k = kamailio(OptionsReply::Ok);
    let port = k.port();
    k.set_reply(OptionsReply::Silent).unwrap();
    assert_eq!(k.port(), port);
    let o = observe(&sip(&k, SipTransport::Udp).with_timeout(Duration::from_millis(300))).await;
    assert!(
        !o.ok && o.detail.starts_with("no answer within 300ms"),
        "{o}"
    );
    k.set_reply(OptionsReply::Ok).unwrap();
    let o = observe(&sip(&k, SipTransport::Udp)).await;
    assert!(o.ok && o.detail.starts_with("200 OK"), "{o}");
}

#[tokio::test]
async fn sip_stopped_then_restarted_responder() {
    let mut k = kamailio(OptionsReply::Ok);
    k.stop();
    let o = observe(&sip(&k, SipTransport::Udp)).await;
    assert!(!o.ok && o.detail.contains("port unreachable"), "{o}");
    k.start_again().unwrap();
    let o = observe(&sip(&k, SipTransport::Udp)).await;
    assert!(o.ok, "{o}");
}

// ------------------------------------------------------------------------------- HTTP, TCP

/// `python3 -m http.server` (or an HTTPS variant) on node A, stopped by PID on drop.
struct HttpServer {
    port: u16,
    guard: Guard,
    _dir: tempfile::TempDir,
}

const MARKER: &str = "fspbx-ha probe marker 7f3a";

impl HttpServer {
    fn start(tls: bool) -> HttpServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("index.html"),
            format!("<html>{MARKER}</html>"),
        )
        .unwrap();
        let port = free_port(NODE_A_IP);
        let mut cmd = Command::new("python3");
        if tls {
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            let st = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                ])
                .arg("/CN=127.0.0.2")
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .output()
                .unwrap();
            assert!(
                st.status.success(),
                "{}",
                String::from_utf8_lossy(&st.stderr)
            );
            let script = format!(
                "import http.server, ssl, functools\n\
                 h = functools.partial(http.server.SimpleHTTPRequestHandler, directory={dir:?})\n\
                 s = http.server.HTTPServer(('127.0.0.2', {port}), h)\n\
                 c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
                 c.load_cert_chain({cert:?}, {key:?})\n\
                 s.socket = c.wrap_socket(s.socket, server_side=True)\n\
                 s.serve_forever()\n",
                dir = dir.path().display().to_string(),
                cert = cert.display().to_string(),
                key = key.display().to_string(),
            );
            cmd.arg("-c").arg(script);
        } else {
            cmd.args(["-m", "http.server", "--bind", "127.0.0.2", "--directory"])
                .arg(dir.path())
                .arg(port.to_string());
        }
        let log = dir.path().join("http.log");
        let guard = Guard::spawn(cmd, "http-a", &log).unwrap();
        let addr = SocketAddr::new(NODE_A_IP, port);
        wait_until(
            "python http server",
            Duration::from_secs(10),
            Some(&log),
            || std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok(),
        )
        .unwrap();
        HttpServer {
            port,
            guard,
            _dir: dir,
        }
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.2:{}{path}", self.port)
    }
}

#[tokio::test]
async fn http_status_range_and_body_match() {
    let mut s = HttpServer::start(false);
    let page = s.url("http", "/index.html");
    let o = observe(&HttpProbe::new("a", &page).unwrap()).await;
    assert!(o.ok && o.detail == "HTTP 200 OK", "{o}");
    assert_eq!(o.kind, ProbeKind::Http);

    let o = observe(
        &HttpProbe::new("a", &page)
            .unwrap()
            .with_body_contains(MARKER),
    )
    .await;
    assert!(o.ok && o.detail.contains("body contains"), "{o}");
    let o = observe(
        &HttpProbe::new("a", &page)
            .unwrap()
            .with_body_contains("not on the page"),
    )
    .await;
    assert!(
        !o.ok && o.detail.contains("does not contain \"not on the page\""),
        "{o}"
    );

    let missing = s.url("http", "/missing");
    let o = observe(&HttpProbe::new("a", &missing).unwrap()).await;
    assert!(
        !o.ok && o.detail.starts_with("HTTP 404") && o.detail.contains("expected 200..=399"),
        "{o}"
    );
    let o = observe(&HttpProbe::new("a", &missing).unwrap().with_status(404, 404)).await;
    assert!(o.ok, "{o}");

    // TCP connect probe on the same server.
    let tcp = TcpProbe::new("a", "127.0.0.2", s.port);
    let o = observe(&tcp).await;
    assert!(o.ok && o.kind == ProbeKind::Tcp, "{o}");

    s.guard.stop();
    let o = observe(&HttpProbe::new("a", &page).unwrap()).await;
    assert!(!o.ok && o.detail.contains("onnection refused"), "{o}");
    let o = observe(&tcp).await;
    assert!(!o.ok && o.detail.contains("connection refused"), "{o}");
}

#[tokio::test]
async fn https_self_signed_is_refused_unless_invalid_certs_are_accepted() {
    let s = HttpServer::start(true);
    let url = s.url("https", "/index.html");
    let o = observe(
        &HttpProbe::new("a", &url)
            .unwrap()
            .with_timeout(Duration::from_secs(3)),
    )
    .await;
    assert!(!o.ok, "a self-signed certificate must fail by default: {o}");
    assert!(o.detail.to_ascii_lowercase().contains("certificate"), "{o}");
    let p = HttpProbe::new("a", &url)
        .unwrap()
        .accept_invalid_certs(true)
        .unwrap()
        .with_body_contains(MARKER)
        .with_timeout(Duration::from_secs(3));
    let o = observe(&p).await;
    assert!(o.ok, "{o}");
}

// ------------------------------------------------------------------------------ PostgreSQL

fn config_for(a_pg: &PgServer, a_extra: &str, dir: &Path) -> ClusterConfig {
    let no_pg = free_port(NODE_B_IP);
    let toml = format!(
        r#"
[[nodes]]
name = "a"
hostname = "a.lab.test"
addresses = ["127.0.0.2"]
ssh = {{ host = "127.0.0.2", identity = "{dir}/no-key" }}
postgres = {{ host = "127.0.0.2", port = {port}, password = "file:{pw}", connect_timeout = "2s" }}
{a_extra}

[[nodes]]
name = "b"
hostname = "b.lab.test"
addresses = ["127.0.0.3"]
ssh = {{ host = "127.0.0.3", identity = "{dir}/no-key" }}
postgres = {{ host = "127.0.0.3", port = {no_pg}, password = "file:{pw}" }}

[floating]
zone = "lab.test"
name = "pbx.lab.test"
provider = {{ kind = "rfc2136", server = "127.0.0.53:53", key_name = "k", key_secret = "env:NONE" }}
"#,
        dir = dir.display(),
        port = a_pg.port(),
        pw = a_pg.password_file().display(),
    );
    ClusterConfig::from_toml_str(&toml).unwrap()
}

fn pg_a() -> PgServer {
    PgServer::start(PgOptions {
        name: "pg-probe".into(),
        ip: NODE_A_IP,
        ..PgOptions::default()
    })
    .expect("PostgreSQL starts")
}

#[tokio::test]
async fn postgres_writable_then_read_only_then_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let mut pg = pg_a();
    let config = config_for(&pg, "", dir.path());
    let node = &config.nodes[0];
    let writable = PgProbe::new("nodes[0]", node, PgProbeMode::Writable, None)
        .with_timeout(Duration::from_secs(3));
    let connect = PgProbe::new("nodes[0]", node, PgProbeMode::Connect, None)
        .with_timeout(Duration::from_secs(3));

    let o = observe(&writable).await;
    assert!(o.ok && o.detail.contains("accepts writes"), "{o}");
    assert_eq!(o.kind, ProbeKind::PostgresWritable);
    assert!(
        !o.target.contains(pg.password()),
        "the password never reaches an observation"
    );

    pg.psql(
        "postgres",
        "ALTER SYSTEM SET default_transaction_read_only = on;\nSELECT pg_reload_conf();",
    )
    .unwrap();
    // The reload is asynchronous: new sessions see it once the postmaster has re-read the file.
    let mut o = observe(&writable).await;
    for _ in 0..40 {
        if !o.ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        o = observe(&writable).await;
    }
    assert!(!o.ok, "{o}");
    assert_eq!(o.detail, "read-only: default_transaction_read_only = on");
    let c = observe(&connect).await;
    assert!(
        c.ok && c.kind == ProbeKind::Postgres,
        "connect-only still passes: {c}"
    );

    pg.stop();
    let o = observe(&connect).await;
    assert!(!o.ok && o.detail.starts_with("cannot connect"), "{o}");
    assert!(o.latency < Duration::from_secs(3), "{o}");
}

#[tokio::test]
async fn postgres_password_reference_that_does_not_resolve_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let pg = pg_a();
    let mut config = config_for(&pg, "", dir.path());
    config.nodes[0].postgres.password = "file:/nonexistent/fspbx-ha-pw".parse().unwrap();
    let p = PgProbe::new("nodes[0]", &config.nodes[0], PgProbeMode::Writable, None);
    let e = p.probe().await.unwrap_err();
    assert_eq!(e.family(), fspbx_ha_core::ErrorFamily::Secret);
    assert!(e.to_string().contains("nodes[0].postgres.password"), "{e}");
}

// ------------------------------------------------------------------------------- Syncthing

/// The lab's Syncthing is Debian's 1.19, which predates `/rest/noauth/health` (it answers
/// `403 CSRF Error` there): the probe says so, and with the API key it falls back to
/// `/rest/system/ping`. The key never appears in an observation.
#[tokio::test]
async fn syncthing_health_of_a_real_daemon() {
    let mut st = Syncthing::start(SyncthingOptions::node_a()).expect("Syncthing starts");
    let bare = SyncthingHealthProbe::new("a", "nodes[0].syncthing.url", &st.api_url())
        .unwrap()
        .with_timeout(Duration::from_secs(3));
    let o = observe(&bare).await;
    assert!(!o.ok && o.detail.contains("no /rest/noauth/health"), "{o}");

    let reference = format!("file:{}", st.api_key_file().display());
    let p = SyncthingHealthProbe::new("a", "nodes[0].syncthing.url", &st.api_url())
        .unwrap()
        .with_api_key(reference.parse().unwrap())
        .with_timeout(Duration::from_secs(3));
    for _ in 0..2 {
        let o = observe(&p).await;
        assert!(
            o.ok && o.detail.starts_with("pong from /rest/system/ping"),
            "{o}"
        );
        assert!(!o.detail.contains(st.api_key()) && !o.target.contains(st.api_key()));
        assert!(o.target.ends_with("/rest/noauth/health"), "{o}");
    }
    // A wrong key is refused by the real daemon.
    let wrong_dir = tempfile::tempdir().unwrap();
    let wrong = wrong_dir.path().join("key");
    std::fs::write(&wrong, "not-the-key").unwrap();
    let w = SyncthingHealthProbe::new("a", "nodes[0].syncthing.url", &st.api_url())
        .unwrap()
        .with_api_key(format!("file:{}", wrong.display()).parse().unwrap())
        .with_timeout(Duration::from_secs(3));
    let o = observe(&w).await;
    assert!(!o.ok && o.detail.contains("API key was refused"), "{o}");

    st.stop();
    let o = observe(&p).await;
    assert!(!o.ok && o.detail.contains("onnection refused"), "{o}");
}

/// Syncthing releases with the health endpoint (1.20 and later) are not installable here, so
/// this stands in for one: a tiny HTTP responder giving the documented answer
/// (`{"status": "OK"}` on `/rest/noauth/health`, nothing else).
#[tokio::test]
async fn syncthing_health_endpoint_as_documented() {
    let port = free_port(NODE_A_IP);
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "import http.server\n\
         class H(http.server.BaseHTTPRequestHandler):\n\
         \x20   def do_GET(self):\n\
         \x20       ok = self.path == '/rest/noauth/health' and 'X-API-Key' not in self.headers\n\
         \x20       body = b'{{\"status\": \"OK\"}}' if ok else b'nope'\n\
         \x20       self.send_response(200 if ok else 404)\n\
         \x20       self.send_header('Content-Length', str(len(body)))\n\
         \x20       self.end_headers()\n\
         \x20       self.wfile.write(body)\n\
         http.server.HTTPServer(('127.0.0.2', {port}), H).serve_forever()\n"
    );
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script);
    let log = dir.path().join("st.log");
    let _guard = Guard::spawn(cmd, "fake-health", &log).unwrap();
    let addr = SocketAddr::new(NODE_A_IP, port);
    wait_until(
        "health responder",
        Duration::from_secs(10),
        Some(&log),
        || std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok(),
    )
    .unwrap();
    let p = SyncthingHealthProbe::new("a", "nodes[0].syncthing.url", &format!("http://{addr}/"))
        .unwrap()
        .with_api_key("env:FSPBX_HA_PROBE_TEST_UNSET".parse().unwrap());
    let o = observe(&p).await;
    assert!(o.ok && o.detail == "status OK", "{o}");
    assert_eq!(o.kind, ProbeKind::Syncthing);
}

// ------------------------------------------------------------------------- the set, config

#[tokio::test]
async fn probe_set_from_config_runs_every_probe_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let k = kamailio(OptionsReply::Ok);
    let http = HttpServer::start(false);
    let pg = pg_a();
    let extra = format!(
        "probes = {{ timeout = \"2s\", sip = {{ host = \"127.0.0.2\", port = {sip}, transport = \"tcp\", require_2xx = true }}, \
         http = {{ url = \"{url}\", status_min = 200, status_max = 299, body_contains = \"{MARKER}\" }} }}",
        sip = k.port(),
        url = http.url("http", "/"),
    );
    let config = config_for(&pg, &extra, dir.path());
    let set = ProbeSet::from_config(&config, &[None, None]).unwrap();
    // Node A: SIP, HTTP, PostgreSQL; node B: PostgreSQL only (no SIP/HTTP/Syncthing configured).
    let kinds: Vec<(String, ProbeKind)> = set
        .probes()
        .iter()
        .map(|p| (p.node().to_owned(), p.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("a".into(), ProbeKind::SipTcp),
            ("a".into(), ProbeKind::Http),
            ("a".into(), ProbeKind::PostgresWritable),
            ("b".into(), ProbeKind::PostgresWritable),
        ]
    );
    let started = Instant::now();
    let obs = set.run_all().await;
    let took = started.elapsed();
    assert_eq!(obs.len(), 4);
    for o in &obs[..3] {
        assert!(o.ok, "{o}");
    }
    assert!(
        !obs[3].ok && obs[3].detail.starts_with("cannot connect"),
        "{}",
        obs[3]
    );
    assert!(
        took < Duration::from_secs(2),
        "bounded by the 2 s probe timeout: {took:?}"
    );
    // Observations serialize for the audit log.
    let json = serde_json::to_value(&obs[0]).unwrap();
    assert_eq!(json["kind"], "sip_tcp");
    assert_eq!(json["ok"], true);
}

#[tokio::test]
async fn probe_set_runs_paused_probes_in_parallel() {
    let mut k = kamailio(OptionsReply::Ok);
    k.pause();
    let timeout = Duration::from_millis(400);
    let mut set = ProbeSet::new();
    for _ in 0..4 {
        set.push(sip(&k, SipTransport::Udp).with_timeout(timeout));
    }
    let started = Instant::now();
    let obs = set.run_all().await;
    let took = started.elapsed();
    assert!(
        obs.iter()
            .all(|o| !o.ok && o.detail.contains("no answer within 400ms"))
    );
    // Four 400 ms timeouts run one after the other would take 1.6 s.
    assert!(took < timeout * 3, "took {took:?}");
    k.resume();
}

#[test]
fn via_ssh_without_a_session_is_refused_naming_the_key() {
    let mut config = ClusterConfig::from_toml_str(&ClusterConfig::template()).unwrap();
    for n in &mut config.nodes {
        n.postgres.via_ssh = false;
        n.syncthing = None;
    }
    assert!(ProbeSet::from_config(&config, &[None, None]).is_ok());

    config.nodes[1].postgres.via_ssh = true;
    let e = ProbeSet::from_config(&config, &[None, None]).unwrap_err();
    assert!(e.to_string().contains("nodes[1].postgres.via_ssh"), "{e}");

    config.nodes[1].postgres.via_ssh = false;
    config.nodes[0].syncthing = Some(SyncthingSpec {
        url: "http://127.0.0.1:8384".into(),
        api_key: "env:FSPBX_HA_TEST_NONE".parse().unwrap(),
        via_ssh: true,
        folder_root: None,
    });
    let e = ProbeSet::from_config(&config, &[None, None]).unwrap_err();
    assert!(e.to_string().contains("nodes[0].syncthing.via_ssh"), "{e}");
    // Switched off, the Syncthing probe is not built at all.
    config.nodes[0].probes.syncthing = false;
    config.nodes[0].probes.postgres = PgProbeMode::Off;
    config.nodes[1].probes.postgres = PgProbeMode::Off;
    let set = ProbeSet::from_config(&config, &[None, None]).unwrap();
    assert!(set.probes().iter().all(|p| !matches!(
        p.kind(),
        ProbeKind::Syncthing | ProbeKind::Postgres | ProbeKind::PostgresWritable
    )));
}

#[test]
fn probe_settings_are_validated_with_their_key_path() {
    let text = ClusterConfig::template().replacen(
        "[nodes.probes]\n",
        "[nodes.probes]\ntimeout = \"0s\"\n",
        1,
    );
    let e = ClusterConfig::from_toml_str(&text).unwrap_err().to_string();
    assert!(e.contains("nodes[0].probes.timeout"), "{e}");
}
