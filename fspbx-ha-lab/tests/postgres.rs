//! PostgreSQL servers of every flavor, started for real.

use fspbx_ha_lab::postgres::{PgFlavor, PgOptions, PgServer};
use fspbx_ha_lab::process;

fn start(flavor: PgFlavor, wal_level: &str) -> PgServer {
    PgServer::start(PgOptions {
        flavor,
        name: format!("pg{}-{wal_level}", flavor.major()),
        wal_level: wal_level.to_owned(),
        ..PgOptions::default()
    })
    .unwrap_or_else(|e| panic!("PostgreSQL {flavor} should start: {e}"))
}

fn check_flavor(flavor: PgFlavor, wal_level: &str) {
    let pg = start(flavor, wal_level);
    let version = pg.psql("postgres", "SELECT version()").unwrap();
    assert!(
        version.starts_with(&format!("PostgreSQL {}.", flavor.major())),
        "{flavor}: {version}"
    );
    assert_eq!(pg.version_num() / 10000, flavor.major());
    assert_eq!(pg.psql("postgres", "SHOW wal_level").unwrap(), wal_level);
    assert_eq!(
        pg.psql("postgres", "SHOW track_commit_timestamp").unwrap(),
        "on"
    );
    assert_eq!(
        pg.psql("postgres", "SHOW listen_addresses").unwrap(),
        pg.ip().to_string()
    );
    // The FS PBX role, database and extension exist.
    let ext = pg
        .psql(
            "fusionpbx",
            "SELECT extname FROM pg_extension WHERE extname = 'uuid-ossp'",
        )
        .unwrap();
    assert_eq!(ext, "uuid-ossp");
    let owner = pg
        .psql(
            "postgres",
            "SELECT r.rolname || ' ' || r.rolsuper FROM pg_database d \
             JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = 'fusionpbx'",
        )
        .unwrap();
    assert_eq!(owner, "fusionpbx true");
    assert!(
        pg.psql("fusionpbx", "SELECT uuid_generate_v4()")
            .unwrap()
            .len()
            == 36
    );
    // The password file is private and holds the password.
    let meta = std::fs::metadata(pg.password_file()).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(pg.password_file())
            .unwrap()
            .trim_end(),
        pg.password()
    );
    let pid = pg.pid().expect("running");
    let data = pg.base_dir().to_owned();
    drop(pg);
    assert!(
        !process::pid_alive(pid, None),
        "postmaster {pid} outlived its PgServer"
    );
    assert!(
        !data.exists(),
        "temporary data dir {} left behind",
        data.display()
    );
}

#[test]
fn v17_starts_with_logical_wal() {
    check_flavor(PgFlavor::V17, "logical");
}

#[test]
fn v18_starts_with_replica_wal() {
    check_flavor(PgFlavor::V18, "replica");
}

#[test]
fn debian15_starts() {
    check_flavor(PgFlavor::Debian15, "logical");
}

#[test]
fn setting_overrides_replace_defaults() {
    let pg = PgServer::start(PgOptions {
        name: "pg-bad-settings".into(),
        ip: fspbx_ha_lab::NODE_B_IP,
        settings: vec![
            ("max_replication_slots".into(), "0".into()),
            ("track_commit_timestamp".into(), "off".into()),
        ],
        ..PgOptions::default()
    })
    .unwrap();
    assert_eq!(
        pg.psql("postgres", "SHOW max_replication_slots").unwrap(),
        "0"
    );
    assert_eq!(
        pg.psql("postgres", "SHOW track_commit_timestamp").unwrap(),
        "off"
    );
    assert_eq!(
        pg.psql("postgres", "SHOW listen_addresses").unwrap(),
        "127.0.0.3"
    );
}

#[test]
fn killed_server_restarts_with_data_intact() {
    let mut pg = start(PgFlavor::V17, "logical");
    pg.psql(
        "fusionpbx",
        "CREATE TABLE t (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), v text); \
         INSERT INTO t (v) VALUES ('kept'); CHECKPOINT;",
    )
    .unwrap();
    let old = pg.pid().unwrap();
    pg.kill_hard();
    assert!(
        !process::pid_alive(old, None),
        "postmaster survived SIGKILL"
    );
    assert!(!pg.is_running());
    assert!(
        pg.psql("fusionpbx", "SELECT 1").is_err(),
        "a killed server must not answer"
    );
    pg.start_again().unwrap();
    assert_ne!(pg.pid().unwrap(), old);
    assert_eq!(pg.psql("fusionpbx", "SELECT v FROM t").unwrap(), "kept");
    // And a clean stop + start keeps it too.
    pg.stop();
    assert!(!pg.is_running());
    pg.start_again().unwrap();
    assert_eq!(pg.psql("fusionpbx", "SELECT count(*) FROM t").unwrap(), "1");
}

#[test]
fn bad_sql_is_an_error_naming_the_server() {
    let pg = start(PgFlavor::V17, "logical");
    let err = pg
        .psql("postgres", "SELECT * FROM no_such_table")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no_such_table") && err.contains("pg17-logical"),
        "{err}"
    );
}
