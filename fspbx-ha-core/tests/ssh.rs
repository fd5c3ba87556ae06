//! The SSH executor against real OpenSSH servers started by the lab (one per test, free ports,
//! so the tests run in parallel).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fspbx_ha_core::ssh::{SshSession, SshTarget};
use fspbx_ha_core::{Error, SecretRef};
use fspbx_ha_lab::postgres::{PgOptions, PgServer};
use fspbx_ha_lab::sshd::{ClientKey, KeyKind, Sshd, SshdOptions, write_known_hosts};

/// One sshd on node A with one authorized client key, and a known_hosts file that knows it.
struct Lab {
    dir: tempfile::TempDir,
    key: ClientKey,
    sshd: Sshd,
}

impl Lab {
    fn start(client: KeyKind, host: KeyKind) -> Lab {
        Lab::start_with(client, host, None, Vec::new())
    }

    fn start_with(
        client: KeyKind,
        host: KeyKind,
        passphrase: Option<&str>,
        extra_config: Vec<String>,
    ) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let key = ClientKey::generate(dir.path(), client, passphrase).unwrap();
        let sshd = Sshd::start(SshdOptions {
            ip: fspbx_ha_lab::NODE_A_IP,
            dir: Some(dir.path().join("sshd")),
            authorized_keys: vec![key.public_line().to_owned()],
            host_key_kind: host,
            extra_config,
            ..SshdOptions::default()
        })
        .unwrap();
        let lab = Lab { dir, key, sshd };
        write_known_hosts(&lab.known_hosts(), &[lab.sshd.known_hosts_line()]).unwrap();
        lab
    }

    fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    fn target(&self) -> SshTarget {
        let mut t = SshTarget::new(
            "pbx-a",
            self.sshd.ip().to_string(),
            self.sshd.port(),
            self.sshd.user(),
            self.key.private_path(),
            self.known_hosts(),
        );
        t.connect_timeout = Duration::from_secs(10);
        t.command_timeout = Duration::from_secs(20);
        t.connect_attempts = 1;
        t
    }

    /// How many TCP connections sshd accepted so far (LogLevel VERBOSE logs each).
    fn connections(&self) -> usize {
        std::fs::read_to_string(self.sshd.log_path())
            .unwrap()
            .matches("Connection from")
            .count()
    }

    /// How many logins sshd accepted so far (one per TCP connection).
    fn accepted_logins(&self) -> usize {
        std::fs::read_to_string(self.sshd.log_path())
            .unwrap()
            .matches("Accepted publickey for root")
            .count()
    }
}

/// The `SHA256:…` fingerprint ssh-keygen computes for a public key line.
fn keygen_fingerprint(public_line: &str, dir: &Path) -> String {
    let file = dir.join("fp.pub");
    std::fs::write(&file, format!("{public_line}\n")).unwrap();
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn command_exit_status_stdout_and_stderr_are_separate() {
    let lab = Lab::start(KeyKind::Ed25519, KeyKind::Ed25519);
    let ssh = SshSession::connect(&lab.target()).await.unwrap();

    let out = ssh
        .exec("sh -c 'echo out; echo err >&2; exit 3'")
        .await
        .unwrap();
    assert_eq!(out.exit_status, Some(3));
    assert_eq!(out.exit_signal, None);
    assert_eq!(out.stdout_str(), "out\n");
    assert_eq!(out.stderr_str(), "err\n");
    assert!(!out.success());

    let ok = ssh.exec("printf 'a\\0b'").await.unwrap();
    assert!(ok.success());
    assert_eq!(ok.stdout, b"a\0b");
    assert!(ok.stderr.is_empty());

    // The command's shell killed by a signal: no exit status, the signal's name.
    let killed = ssh.exec("kill -KILL $$").await.unwrap();
    assert_eq!(killed.exit_status, None);
    assert_eq!(killed.exit_signal.as_deref(), Some("KILL"));

    // exec_checked turns a failure into an error naming node, command, status and stderr.
    let err = ssh
        .exec_checked("sh -c 'echo boom >&2; exit 7'")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::SshCommandFailed { .. }), "{msg}");
    for part in ["pbx-a", "exit status 7", "boom"] {
        assert!(msg.contains(part), "{part:?} missing in {msg}");
    }
    ssh.close().await;
}

#[tokio::test]
async fn many_commands_share_one_connection() {
    let lab = Lab::start(KeyKind::Ed25519, KeyKind::Ed25519);
    let ssh = SshSession::connect(&lab.target()).await.unwrap();

    // SSH_CONNECTION = "client_ip client_port server_ip server_port": the same for every
    // command means the same TCP connection.
    let mut seen = std::collections::HashSet::new();
    for i in 0..15 {
        let out = ssh
            .exec(&format!("echo $SSH_CONNECTION; echo n={i}"))
            .await
            .unwrap();
        let text = out.stdout_str().into_owned();
        let mut lines = text.lines();
        seen.insert(lines.next().unwrap().to_owned());
        assert_eq!(lines.next().unwrap(), format!("n={i}"));
    }
    // Concurrent channels on clones of the session (below sshd's MaxSessions of 10).
    let mut tasks = Vec::new();
    for i in 0..8 {
        let ssh = ssh.clone();
        tasks.push(tokio::spawn(async move {
            let out = ssh
                .exec(&format!("sleep 0.2; echo $SSH_CONNECTION; echo n={i}"))
                .await
                .unwrap();
            (i, out.stdout_str().into_owned())
        }));
    }
    for t in tasks {
        let (i, text) = t.await.unwrap();
        let mut lines = text.lines();
        seen.insert(lines.next().unwrap().to_owned());
        assert_eq!(lines.next().unwrap(), format!("n={i}"));
    }
    assert_eq!(seen.len(), 1, "commands used several connections: {seen:?}");
    assert_eq!(lab.accepted_logins(), 1, "sshd saw more than one login");
}

#[tokio::test]
async fn known_host_key_is_accepted_and_reported() {
    let lab = Lab::start(KeyKind::Ed25519, KeyKind::Ed25519);
    let ssh = SshSession::connect(&lab.target()).await.unwrap();
    let expected = keygen_fingerprint(lab.sshd.host_public_key(), lab.dir.path());
    assert_eq!(ssh.host_key_fingerprint(), Some(expected.as_str()));
    assert_eq!(ssh.exec("echo hi").await.unwrap().stdout_str(), "hi\n");
}

#[tokio::test]
async fn unknown_host_key_is_refused_with_a_clear_error() {
    let lab = Lab::start(KeyKind::Ed25519, KeyKind::Ed25519);
    // known_hosts knows the host on another port only.
    let other = format!(
        "[{}]:{} {}",
        lab.sshd.ip(),
        lab.sshd.port().wrapping_add(1),
        lab.sshd.host_key_type_and_base64()
    );
    write_known_hosts(&lab.known_hosts(), &[other.as_str()]).unwrap();
    let before = std::fs::read_to_string(lab.known_hosts()).unwrap();

    let err = SshSession::connect(&lab.target()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::SshHostKeyUnknown { ref fingerprint, .. }
            if *fingerprint == keygen_fingerprint(lab.sshd.host_public_key(), lab.dir.path())),
        "{msg}"
    );
    for part in [
        "pbx-a".to_owned(),
        format!("{}:{}", lab.sshd.ip(), lab.sshd.port()),
        "SHA256:".to_owned(),
        lab.known_hosts().display().to_string(),
        "ssh-keyscan".to_owned(),
    ] {
        assert!(msg.contains(&part), "{part:?} missing in {msg}");
    }
    // Strict mode does not touch the file, and sshd saw no login.
    assert_eq!(std::fs::read_to_string(lab.known_hosts()).unwrap(), before);
    assert_eq!(lab.accepted_logins(), 0);

    // A missing known_hosts file is refused the same way and not created.
    std::fs::remove_file(lab.known_hosts()).unwrap();
    let err = SshSession::connect(&lab.target()).await.unwrap_err();
    assert!(matches!(err, Error::SshHostKeyUnknown { .. }), "{err}");
    assert!(!lab.known_hosts().exists());
}

#[tokio::test]
async fn changed_host_key_is_refused_naming_the_physical_line() {
    let lab = Lab::start(KeyKind::Ed25519, KeyKind::Ed25519);
    let impostor = ClientKey::generate(lab.dir.path(), KeyKind::Ed25519, None).unwrap();
    let wrong = format!(
        "[{}]:{} ssh-ed25519 {}",
        lab.sshd.ip(),
        lab.sshd.port(),
        impostor.public_base64()
    );
    let lines = [
        "# known hosts of the lab".to_owned(),
        "# (comments and blank lines count as lines)".to_owned(),
        String::new(),
        "[127.0.0.9]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKWdnSe8cgDtBNPTBQJeAggCFVILersEjoUJuXok7Hs7".to_owned(),
        "# the next line is stale".to_owned(),
        wrong,
    ];
    write_known_hosts(&lab.known_hosts(), &lines).unwrap();

    for tofu in [false, true] {
        let mut target = lab.target();
        target.trust_on_first_use = tofu;
        let err = SshSession::connect(&target).await.unwrap_err();
        let msg = err.to_string();
        match &err {
            Error::SshHostKeyChanged {
                line,
                known_hosts,
                fingerprint,
                recorded_fingerprint,
                ..
            } => {
                assert_eq!(*line, 6, "{msg}");
                assert_eq!(known_hosts, &lab.known_hosts());
                assert_eq!(
                    fingerprint,
                    &keygen_fingerprint(lab.sshd.host_public_key(), lab.dir.path())
                );
                assert_eq!(
                    recorded_fingerprint,
                    &keygen_fingerprint(impostor.public_line(), lab.dir.path())
                );
            }
            other => panic!("expected SshHostKeyChanged, got {other:?}"),
        }
        assert!(msg.contains("line 6"), "{msg}");
        assert!(
            msg.contains(&lab.known_hosts().display().to_string()),
            "{msg}"
        );
    }
    // Even with TOFU the file was not changed.
    assert_eq!(
        std::fs::read_to_string(lab.known_hosts())
            .unwrap()
            .lines()
            .count(),
        6
    );
    assert_eq!(lab.accepted_logins(), 0);
}

#[tokio::test]
async fn trust_on_first_use_records_the_key_then_refuses_a_changed_one() {
    let mut lab = Lab::start(KeyKind::Ed25519, KeyKind::Ed25519);
    let kh = lab.dir.path().join("fresh").join("known_hosts");
    let mut target = lab.target();
    target.known_hosts = kh.clone();
    target.trust_on_first_use = true;

    let ssh = SshSession::connect(&target).await.unwrap();
    assert!(ssh.exec("true").await.unwrap().success());
    ssh.close().await;
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        format!("{}\n", lab.sshd.known_hosts_line())
    );

    // Now strict: the recorded key is accepted, nothing more is appended.
    target.trust_on_first_use = false;
    let ssh = SshSession::connect(&target).await.unwrap();
    assert!(ssh.exec("true").await.unwrap().success());
    ssh.close().await;
    assert_eq!(std::fs::read_to_string(&kh).unwrap().lines().count(), 1);

    // The node is "reinstalled": TOFU does not accept the new key.
    lab.sshd.rotate_host_key().unwrap();
    target.trust_on_first_use = true;
    let err = SshSession::connect(&target).await.unwrap_err();
    assert!(
        matches!(err, Error::SshHostKeyChanged { line: 1, .. }),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&kh).unwrap().lines().count(), 1);
}

#[tokio::test]
async fn wrong_client_key_is_refused_with_a_clear_error() {
    let lab = Lab::start(KeyKind::Ed25519, KeyKind::Ed25519);
    let stranger = ClientKey::generate(lab.dir.path(), KeyKind::Ed25519, None).unwrap();
    let mut target = lab.target();
    target.identity = stranger.private_path().to_owned();
    target.connect_attempts = 3; // must not be retried

    let connections_before = lab.connections();
    let err = SshSession::connect(&target).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::SshAuthRejected { .. }), "{msg}");
    assert_eq!(
        lab.connections() - connections_before,
        1,
        "an authentication failure must not be retried"
    );
    for part in [
        "pbx-a".to_owned(),
        "root".to_owned(),
        stranger.private_path().display().to_string(),
        "publickey".to_owned(),
    ] {
        assert!(msg.contains(&part), "{part:?} missing in {msg}");
    }
    assert_eq!(lab.accepted_logins(), 0);

    // A missing key file names the path.
    target.identity = lab.dir.path().join("no-such-key");
    let err = SshSession::connect(&target).await.unwrap_err();
    assert!(matches!(err, Error::SshKeyRead { .. }), "{err}");
    assert!(err.to_string().contains("no-such-key"));
}

#[tokio::test]
async fn rsa_client_key_signs_with_sha2() {
    // ssh-rsa (SHA-1) signatures are not accepted by this server: success proves rsa-sha2-*.
    let lab = Lab::start_with(
        KeyKind::Rsa,
        KeyKind::Rsa,
        None,
        vec!["PubkeyAcceptedAlgorithms rsa-sha2-512,rsa-sha2-256".to_owned()],
    );
    let ssh = SshSession::connect(&lab.target()).await.unwrap();
    let out = ssh.exec("echo rsa-ok").await.unwrap();
    assert_eq!(out.stdout_str(), "rsa-ok\n");
    let expected = keygen_fingerprint(lab.sshd.host_public_key(), lab.dir.path());
    assert_eq!(ssh.host_key_fingerprint(), Some(expected.as_str()));
    let log = std::fs::read_to_string(lab.sshd.log_path()).unwrap();
    assert!(log.contains("Accepted publickey for root"), "{log}");
    assert!(log.contains("ssh2: RSA SHA256:"), "{log}");
}

/// Two environment variables this process already has, with different one-line values.
///
/// Tests cannot set variables (`set_var` is unsafe and unsafe code is forbidden here), so the
/// `env:` passphrase test encrypts the key with the value of a variable that exists anyway.
fn two_existing_env_vars() -> ((String, String), (String, String)) {
    let usable = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty() && !v.contains('\n') && v.len() < 512)
            .map(|v| (name.to_owned(), v))
    };
    let found: Vec<(String, String)> = ["CARGO_MANIFEST_DIR", "PATH", "HOME", "CARGO_PKG_NAME"]
        .iter()
        .filter_map(|n| usable(n))
        .collect();
    let first = found
        .first()
        .expect("no usable environment variable")
        .clone();
    let second = found
        .iter()
        .find(|(_, v)| *v != first.1)
        .expect("no second usable environment variable")
        .clone();
    (first, second)
}

#[tokio::test]
async fn encrypted_key_needs_its_passphrase_reference() {
    let ((right_var, right_value), (wrong_var, wrong_value)) = two_existing_env_vars();
    let lab = Lab::start_with(
        KeyKind::Ed25519,
        KeyKind::Ed25519,
        Some(&right_value),
        Vec::new(),
    );
    let mut target = lab.target();

    // No passphrase configured: clear error, no connection attempted.
    let connections_before = lab.connections();
    let err = SshSession::connect(&target).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::SshKeyEncrypted { .. }), "{msg}");
    assert!(
        msg.contains(&lab.key.private_path().display().to_string()),
        "{msg}"
    );
    assert!(
        msg.contains("ssh.passphrase") && msg.contains("env:"),
        "{msg}"
    );
    assert_eq!(
        lab.connections(),
        connections_before,
        "no connection was expected"
    );

    // The reference points at an unset variable.
    target.passphrase = Some("env:FSPBX_HA_TEST_SSH_PASS_UNSET_91".parse().unwrap());
    let err = SshSession::connect(&target).await.unwrap_err();
    assert!(matches!(err, Error::SshPassphraseSecret { .. }), "{err}");
    assert!(err.to_string().contains("FSPBX_HA_TEST_SSH_PASS_UNSET_91"));

    // A wrong passphrase: named by reference, never by value.
    target.passphrase = Some(SecretRef::env(&wrong_var));
    let err = SshSession::connect(&target).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::SshKeyPassphrase { .. }), "{msg}");
    assert!(msg.contains(&format!("env:{wrong_var}")), "{msg}");
    assert!(!msg.contains(&wrong_value) && !format!("{err:?}").contains(&wrong_value));

    // The right reference unlocks it: env: ...
    target.passphrase = Some(SecretRef::env(&right_var));
    let ssh = SshSession::connect(&target).await.unwrap();
    assert_eq!(
        ssh.exec("echo unlocked").await.unwrap().stdout_str(),
        "unlocked\n"
    );
    ssh.close().await;

    // ... and file:
    let pass_file = lab.dir.path().join("ssh-passphrase");
    std::fs::write(&pass_file, format!("{right_value}\n")).unwrap();
    target.passphrase = Some(SecretRef::file(&pass_file));
    let ssh = SshSession::connect(&target).await.unwrap();
    assert!(ssh.exec("true").await.unwrap().success());
}

#[tokio::test]
async fn command_timeout_stops_the_command_and_keeps_the_session() {
    let lab = Lab::start(KeyKind::Ed25519, KeyKind::Ed25519);
    let mut target = lab.target();
    target.command_timeout = Duration::from_secs(1);
    let ssh = SshSession::connect(&target).await.unwrap();

    let started = Instant::now();
    let err = ssh.exec("sleep 30.731").await.unwrap_err();
    let waited = started.elapsed();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::SshCommandTimeout { after, .. } if after == Duration::from_secs(1)),
        "{msg}"
    );
    assert!(
        msg.contains("sleep 30.731") && msg.contains("pbx-a"),
        "{msg}"
    );
    assert!(
        waited < Duration::from_secs(4),
        "timeout fired after {waited:?}"
    );

    // The session still works, and the node stops the command by itself shortly after the
    // client gave up (its own limit is the timeout plus 2 s), long before it would end.
    let mut gone = false;
    for _ in 0..80 {
        let ps = ssh
            .exec_with_timeout("ps -eo args", Duration::from_secs(20))
            .await
            .unwrap();
        let listing = ps.stdout_str();
        assert!(
            listing.contains("ps -eo args"),
            "no process listing: {listing}"
        );
        if !listing.lines().any(|l| l.trim() == "sleep 30.731") {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the timed-out command still runs on the node");
    assert!(started.elapsed() < Duration::from_secs(25));
}

#[tokio::test]
async fn connect_retries_then_fails_cleanly_on_a_closed_port() {
    let dir = tempfile::tempdir().unwrap();
    let key = ClientKey::generate(dir.path(), KeyKind::Ed25519, None).unwrap();
    let port = fspbx_ha_lab::ports::free_port(fspbx_ha_lab::NODE_B_IP);
    let mut target = SshTarget::new(
        "pbx-b",
        fspbx_ha_lab::NODE_B_IP.to_string(),
        port,
        "root",
        key.private_path(),
        dir.path().join("known_hosts"),
    );
    target.connect_attempts = 3;
    target.connect_timeout = Duration::from_secs(2);

    let started = Instant::now();
    let err = SshSession::connect(&target).await.unwrap_err();
    let elapsed = started.elapsed();
    let msg = err.to_string();
    match &err {
        Error::SshConnect {
            attempts, source, ..
        } => {
            assert_eq!(*attempts, 3);
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected SshConnect, got {other:?}"),
    }
    for part in ["pbx-b", &format!("127.0.0.3:{port}"), "3 attempt"] {
        assert!(msg.contains(part), "{part:?} missing in {msg}");
    }
    // Two backoff pauses (200 ms and 400 ms at least) prove the retries happened.
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
}

#[tokio::test]
async fn connect_retries_until_sshd_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let key = ClientKey::generate(dir.path(), KeyKind::Ed25519, None).unwrap();
    let port = fspbx_ha_lab::ports::free_port(fspbx_ha_lab::NODE_B_IP);
    let mut target = SshTarget::new(
        "pbx-b",
        fspbx_ha_lab::NODE_B_IP.to_string(),
        port,
        "root",
        key.private_path(),
        dir.path().join("known_hosts"),
    );
    target.trust_on_first_use = true;
    target.connect_attempts = 8;

    let sshd_dir = dir.path().join("sshd");
    let public = key.public_line().to_owned();
    let starter = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(500));
        Sshd::start(SshdOptions {
            ip: fspbx_ha_lab::NODE_B_IP,
            port: Some(port),
            dir: Some(sshd_dir),
            authorized_keys: vec![public],
            ..SshdOptions::default()
        })
        .unwrap()
    });
    let ssh = SshSession::connect(&target).await.unwrap();
    let sshd = starter.await.unwrap();
    assert_eq!(ssh.exec("echo late").await.unwrap().stdout_str(), "late\n");
    assert_eq!(
        std::fs::read_to_string(&target.known_hosts).unwrap().trim(),
        sshd.known_hosts_line()
    );
}

#[tokio::test]
async fn stdin_carries_secrets_without_argv() {
    let lab = Lab::start(KeyKind::Ed25519, KeyKind::Ed25519);
    let ssh = SshSession::connect(&lab.target()).await.unwrap();
    let secret = format!("s3cret-{}", std::process::id());

    // `cat` echoes stdin; `ps` then lists every command line on the machine.
    let out = ssh
        .exec_with_input("cat; echo; ps -eo args", secret.as_bytes())
        .await
        .unwrap();
    assert!(out.success(), "{}", out.stderr_str());
    let text = out.stdout_str();
    let (first, rest) = text.split_once('\n').unwrap();
    assert_eq!(first, secret);
    assert!(rest.contains("ps -eo args"), "ps output missing: {rest}");
    assert!(
        !rest.contains(&secret),
        "the secret is on a command line:\n{rest}"
    );

    // A large input does not deadlock against the channel window.
    let big = vec![b'x'; 3 * 1024 * 1024];
    let out = ssh.exec_with_input("wc -c", &big).await.unwrap();
    assert_eq!(out.stdout_str().trim(), big.len().to_string());

    // A command that ignores its stdin still finishes.
    let out = ssh.exec_with_input("echo ignored", &big).await.unwrap();
    assert_eq!(out.stdout_str(), "ignored\n");
}

#[tokio::test]
async fn postgres_through_ssh_tunnel_and_local_forward() {
    let lab = Lab::start(KeyKind::Ed25519, KeyKind::Ed25519);
    let pg = tokio::task::spawn_blocking(|| {
        PgServer::start(PgOptions {
            name: "pg-ssh-test".to_owned(),
            ip: fspbx_ha_lab::NODE_A_IP,
            ..PgOptions::default()
        })
        .unwrap()
    })
    .await
    .unwrap();
    let ssh = SshSession::connect(&lab.target()).await.unwrap();

    // 1. One direct-tcpip stream, PostgreSQL protocol over it.
    let stream = ssh.open_tcp(&pg.ip().to_string(), pg.port()).await.unwrap();
    let mut config = tokio_postgres::Config::new();
    config
        .user(pg.user())
        .password(pg.password())
        .dbname(pg.database());
    let (client, connection) = config
        .connect_raw(stream, tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn_task = tokio::spawn(connection);
    let row = client.query_one("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    let port: i32 = client
        .query_one("SELECT current_setting('port')::int4", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(port, i32::from(pg.port()));
    drop(client);
    let _ = conn_task.await;

    // 2. A local forward and an ordinary tokio_postgres::connect to it.
    let forward = ssh
        .forward_local(&pg.ip().to_string(), pg.port())
        .await
        .unwrap();
    let local = forward.local_addr();
    assert!(local.ip().is_loopback());
    assert_ne!(local.port(), pg.port());
    let dsn = format!(
        "host={} port={} user={} password={} dbname={}",
        local.ip(),
        local.port(),
        pg.user(),
        pg.password(),
        pg.database()
    );
    for _ in 0..2 {
        // two connections through the same forward
        let (client, connection) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(connection);
        let v: i32 = client
            .query_one("SELECT 1::int4", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, 1);
        drop(client);
        let _ = task.await;
    }
    // The forward stops listening when dropped.
    drop(forward);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(local).await.is_err());

    // A port nothing listens on: the channel is refused with an error naming the target.
    let closed = fspbx_ha_lab::ports::free_port(fspbx_ha_lab::NODE_A_IP);
    let err = ssh.open_tcp("127.0.0.2", closed).await.unwrap_err();
    assert!(
        matches!(err, Error::SshChannel { .. }) && err.to_string().contains(&closed.to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn closed_or_lost_connection_is_reported() {
    let mut lab = Lab::start(KeyKind::Ed25519, KeyKind::Ed25519);
    let mut target = lab.target();
    target.keepalive_interval = Duration::from_secs(1);

    let ssh = SshSession::connect(&target).await.unwrap();
    ssh.close().await;
    for _ in 0..100 {
        if ssh.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = ssh.exec("true").await.unwrap_err();
    assert!(matches!(err, Error::SshDisconnected { .. }), "{err}");

    // Node loss: every sshd process (listener and per-connection) SIGKILLed under an open
    // session.
    let ssh = SshSession::connect(&target).await.unwrap();
    assert!(ssh.exec("true").await.unwrap().success());
    assert_eq!(lab.sshd.connection_pids().len(), 1);
    lab.sshd.kill_hard();
    let mut closed = false;
    for _ in 0..250 {
        if ssh.is_closed() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "the lost connection was not noticed");
    let err = ssh.exec("true").await.unwrap_err();
    assert!(matches!(err, Error::SshDisconnected { .. }), "{err}");
    // And the node no longer accepts connections.
    let err = SshSession::connect(&target).await.unwrap_err();
    assert!(matches!(err, Error::SshConnect { .. }), "{err}");
}

#[tokio::test]
async fn keepalive_detects_a_hung_node() {
    let lab = Lab::start(KeyKind::Ed25519, KeyKind::Ed25519);
    let mut target = lab.target();
    target.keepalive_interval = Duration::from_millis(500);
    let ssh = SshSession::connect(&target).await.unwrap();
    assert!(ssh.exec("true").await.unwrap().success());

    // The node hangs: its sshd process for this connection stops answering, TCP stays up.
    assert_eq!(lab.sshd.pause_connections(), 1);
    let mut closed = false;
    for _ in 0..200 {
        if ssh.is_closed() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lab.sshd.resume_connections();
    assert!(closed, "keepalive did not notice the hung node");
    let err = ssh.exec("true").await.unwrap_err();
    assert!(matches!(err, Error::SshDisconnected { .. }), "{err}");
}
