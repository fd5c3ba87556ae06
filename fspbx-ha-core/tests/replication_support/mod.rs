//! Test support for the replication suites: a two-node PostgreSQL pair (node A on 127.0.0.2,
//! node B on 127.0.0.3) with an sshd per node, the cluster configuration pointing at it, and
//! an FS PBX-like schema generated with SQL.

#![allow(dead_code, unreachable_pub)]

use std::fmt::Write as _;
use std::path::PathBuf;

use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_lab::postgres::{PgFlavor, PgOptions, PgServer};
use fspbx_ha_lab::sshd::{ClientKey, KeyKind, Sshd, SshdOptions, write_known_hosts};
use fspbx_ha_lab::{NODE_A_IP, NODE_B_IP};

/// How to start a pair.
#[derive(Debug, Clone)]
pub struct PairOptions {
    /// Build of node A.
    pub flavor_a: PgFlavor,
    /// Build of node B.
    pub flavor_b: PgFlavor,
    /// wal_level of node A.
    pub wal_level_a: String,
    /// Start an sshd per node (pg_hba block, schema copy over SSH).
    pub ssh: bool,
    /// Reach node A's PostgreSQL through its SSH connection (direct-tcpip).
    pub a_via_ssh: bool,
}

impl PairOptions {
    /// Both nodes on `flavor`, wal_level logical, no SSH.
    pub fn new(flavor: PgFlavor) -> PairOptions {
        PairOptions {
            flavor_a: flavor,
            flavor_b: flavor,
            wal_level_a: "logical".into(),
            ssh: false,
            a_via_ssh: false,
        }
    }
}

/// A running pair; everything stops when it is dropped.
pub struct LabPair {
    pub a: PgServer,
    pub b: PgServer,
    pub sshd: Vec<Sshd>,
    key: Option<ClientKey>,
    opts: PairOptions,
    /// The replication role's password (a file referenced by the config).
    pub repl_password: String,
    dir: tempfile::TempDir,
}

impl LabPair {
    /// Starts both servers (concurrently) and, when asked, an sshd per node.
    pub fn start(opts: PairOptions) -> LabPair {
        let dir = tempfile::Builder::new()
            .prefix("fspbx-ha-repl-")
            .tempdir()
            .unwrap();
        let (a, b) = std::thread::scope(|s| {
            let wal = opts.wal_level_a.clone();
            let a = s.spawn(move || {
                PgServer::start(PgOptions {
                    flavor: opts.flavor_a,
                    name: "pg-a".into(),
                    ip: NODE_A_IP,
                    wal_level: wal,
                    ..PgOptions::default()
                })
            });
            let b = s.spawn(move || {
                PgServer::start(PgOptions {
                    flavor: opts.flavor_b,
                    name: "pg-b".into(),
                    ip: NODE_B_IP,
                    ..PgOptions::default()
                })
            });
            (a.join().unwrap(), b.join().unwrap())
        });
        let (a, b) = (
            a.expect("node A's PostgreSQL starts"),
            b.expect("node B's PostgreSQL starts"),
        );
        let mut sshd = Vec::new();
        let mut key = None;
        if opts.ssh {
            let k = ClientKey::generate(dir.path(), KeyKind::Ed25519, None).unwrap();
            for (i, ip) in [NODE_A_IP, NODE_B_IP].into_iter().enumerate() {
                sshd.push(
                    Sshd::start(SshdOptions {
                        ip,
                        dir: Some(dir.path().join(format!("sshd-{i}"))),
                        authorized_keys: vec![k.public_line().to_owned()],
                        ..SshdOptions::default()
                    })
                    .unwrap(),
                );
            }
            let lines: Vec<String> = sshd.iter().map(Sshd::known_hosts_line).collect();
            write_known_hosts(&dir.path().join("known_hosts"), &lines).unwrap();
            key = Some(k);
        }
        let repl_password = format!("r'3pl \\{}", std::process::id());
        std::fs::write(
            dir.path().join("repl_password"),
            format!("{repl_password}\n"),
        )
        .unwrap();
        LabPair {
            a,
            b,
            sshd,
            key,
            opts,
            repl_password,
            dir,
        }
    }

    /// The configuration file text for this pair; `replication_extra` is appended to the
    /// `[replication]` section.
    pub fn config_toml(&self, replication_extra: &str) -> String {
        let d = self.dir.path();
        let mut t = String::new();
        for (i, (pg, name)) in [(&self.a, "a"), (&self.b, "b")].into_iter().enumerate() {
            let ip = pg.ip();
            let (ssh_port, identity) = match (&self.key, self.sshd.get(i)) {
                (Some(k), Some(s)) => (s.port(), k.private_path().to_path_buf()),
                _ => (22, d.join("no-key")),
            };
            let via_ssh = i == 0 && self.opts.a_via_ssh;
            let _ = write!(
                t,
                r#"
[[nodes]]
name = "{name}"
hostname = "{name}.lab.test"
addresses = ["{ip}"]

[nodes.ssh]
host = "{ip}"
port = {ssh_port}
user = "root"
identity = "{identity}"
known_hosts = "{kh}"
connect_attempts = 1
command_timeout = "120s"

[nodes.postgres]
host = "{ip}"
port = {port}
password = "file:{pw}"
via_ssh = {via_ssh}
"#,
                identity = identity.display(),
                kh = d.join("known_hosts").display(),
                port = pg.port(),
                pw = pg.password_file().display(),
            );
        }
        let dump = self.tool(&self.a, "pg_dump");
        let psql = self.tool(&self.b, "psql");
        let _ = write!(
            t,
            r#"
[floating]
zone = "lab.test"
name = "pbx.lab.test"
provider = {{ kind = "rfc2136", server = "127.0.0.53:53", key_name = "k", key_secret = "env:NONE" }}

[replication]
password = "file:{rp}"
manage_hba = {hba}
copy_timeout = "300s"
pg_dump_command = {dump:?}
psql_command = {psql:?}
{replication_extra}
"#,
            rp = d.join("repl_password").display(),
            hba = self.opts.ssh,
        );
        t
    }

    fn tool(&self, pg: &PgServer, program: &str) -> Vec<String> {
        vec![
            pg.bin_dir().join(program).display().to_string(),
            "-h".into(),
            pg.socket_dir().display().to_string(),
            "-p".into(),
            pg.port().to_string(),
            "-U".into(),
            "postgres".into(),
        ]
    }

    /// The parsed, validated configuration.
    pub fn config(&self, replication_extra: &str) -> ClusterConfig {
        ClusterConfig::from_toml_str(&self.config_toml(replication_extra))
            .expect("lab config is valid")
    }

    /// Writes the configuration to a file (for the CLI) and returns its path.
    pub fn config_file(&self, replication_extra: &str) -> PathBuf {
        let p = self.dir.path().join("cluster.toml");
        std::fs::write(&p, self.config_toml(replication_extra)).unwrap();
        p
    }

    /// psql on node A's `fusionpbx` database as `postgres`.
    pub fn sql_a(&self, sql: &str) -> String {
        self.a.psql("fusionpbx", sql).unwrap()
    }

    /// psql on node B's `fusionpbx` database as `postgres`.
    pub fn sql_b(&self, sql: &str) -> String {
        self.b.psql("fusionpbx", sql).unwrap()
    }

    /// Polls `sql` on `pg` until it prints `want` (10 s).
    pub fn wait_for(&self, pg: &PgServer, sql: &str, want: &str) {
        let started = std::time::Instant::now();
        loop {
            let got = pg.psql("fusionpbx", sql).unwrap();
            if got == want {
                return;
            }
            assert!(
                started.elapsed().as_secs() < 10,
                "{} never printed {want:?} for {sql} (last {got:?})",
                pg.name()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Replication objects left on a node: `subscriptions|publications|slots`.
    pub fn leftovers(pg: &PgServer) -> String {
        pg.psql(
            "fusionpbx",
            "SELECT (SELECT count(*) FROM pg_subscription) || '|' || (SELECT count(*) FROM pg_publication) \
             || '|' || (SELECT count(*) FROM pg_replication_slots)",
        )
        .unwrap()
    }
}

/// FS PBX-like table names (uuid primary keys `<name>_uuid`).
pub const FSPBX_TABLES: &[&str] = &[
    "v_domains",
    "v_extensions",
    "v_users",
    "v_gateways",
    "v_dialplans",
    "v_dialplan_details",
    "v_ring_groups",
    "v_ring_group_destinations",
    "v_voicemails",
    "v_voicemail_messages",
    "v_devices",
    "v_device_lines",
    "v_device_keys",
    "v_destinations",
    "v_call_center_queues",
    "v_call_center_agents",
    "v_conferences",
    "v_conference_rooms",
    "v_fax",
    "v_contacts",
    "v_contact_phones",
    "v_default_settings",
    "v_domain_settings",
    "v_user_settings",
    "v_groups",
    "v_group_permissions",
    "v_user_groups",
    "v_ivr_menus",
    "v_ivr_menu_options",
    "v_music_on_hold",
    "v_recordings",
    "v_sip_profiles",
    "v_sip_profile_settings",
    "v_vars",
    "v_time_conditions",
    "v_call_flows",
    "v_follow_me",
    "v_follow_me_destinations",
    "v_bridges",
    "v_access_controls",
    "v_access_control_nodes",
    "v_email_templates",
    "v_phrases",
    "v_phrase_details",
    "v_streams",
    "v_number_translations",
    "v_modules",
    "v_languages",
    "v_countries",
    "v_software",
];

/// The schema and rows: FS PBX's uuid-keyed tables (50 rows each), Laravel's bigserial tables,
/// a table without primary key, quoted mixed-case names and names with spaces and quotes in a
/// second schema, a standalone sequence, and `cdr_rows` rows in a CDR-like table. All generated
/// with `generate_series`.
pub fn fspbx_schema_sql(cdr_rows: u32) -> String {
    let names = FSPBX_TABLES
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        r#"
SET ROLE fusionpbx;
DO $$
DECLARE t text; base text;
BEGIN
  FOREACH t IN ARRAY ARRAY[{names}] LOOP
    base := substr(t, 3);
    EXECUTE format('CREATE TABLE public.%I (%I uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
                      domain_uuid uuid, %I text, %I text, enabled text DEFAULT ''true'',
                      insert_date timestamptz DEFAULT now(), insert_user uuid, update_date timestamptz)',
                   t, base || '_uuid', base || '_name', base || '_description');
    EXECUTE format('INSERT INTO public.%I (%I, %I) SELECT md5(i::text || %L), ''row '' || i
                      FROM generate_series(1, 50) i', t, base || '_name', base || '_description', t);
  END LOOP;
END $$;

CREATE TABLE public.jobs (id bigserial PRIMARY KEY, queue varchar(255) NOT NULL, payload text NOT NULL,
  attempts smallint NOT NULL, reserved_at integer, available_at integer NOT NULL, created_at integer NOT NULL);
INSERT INTO public.jobs (queue, payload, attempts, available_at, created_at)
  SELECT 'default', '{{"job":' || i || '}}', 0, i, i FROM generate_series(1, 1000) i;
CREATE TABLE public.failed_jobs (id bigserial PRIMARY KEY, uuid varchar(255) NOT NULL UNIQUE,
  connection text NOT NULL, queue text NOT NULL, payload text NOT NULL, exception text NOT NULL,
  failed_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP);
INSERT INTO public.failed_jobs (uuid, connection, queue, payload, exception)
  SELECT md5(i::text), 'redis', 'default', '{{}}', 'Exception ' || i FROM generate_series(1, 20) i;
CREATE TABLE public.migrations (id serial PRIMARY KEY, migration varchar(255) NOT NULL, batch integer NOT NULL);
INSERT INTO public.migrations (migration, batch)
  SELECT '2024_01_01_' || lpad(i::text, 6, '0') || '_create_table', 1 + i / 40 FROM generate_series(1, 120) i;

-- No primary key (FS PBX's device_phonebook before its REPLICA IDENTITY FULL migration).
CREATE TABLE public.device_phonebook (device_uuid uuid, phonebook_name text, phonebook_number text);
INSERT INTO public.device_phonebook SELECT md5(i::text)::uuid, 'Contact ' || i, '+1555' || lpad(i::text, 7, '0')
  FROM generate_series(1, 200) i;

-- Quoted mixed-case identifiers, spaces and quotes, a second schema.
CREATE TABLE public."CamelCaseSettings" ("SettingId" uuid PRIMARY KEY DEFAULT uuid_generate_v4(), "Value" text);
INSERT INTO public."CamelCaseSettings" ("Value") SELECT 'v' || i FROM generate_series(1, 30) i;
CREATE SCHEMA "Billing Data";
CREATE TABLE "Billing Data"."Call ""Detail"" Records" (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  "Amount" numeric(10,2), note text);
INSERT INTO "Billing Data"."Call ""Detail"" Records" ("Amount", note)
  SELECT i / 7.0, 'it''s row ' || i FROM generate_series(1, 500) i;
CREATE TABLE "Billing Data"."it's a table" (k integer PRIMARY KEY, v text);
INSERT INTO "Billing Data"."it's a table" SELECT i, 'v' || i FROM generate_series(1, 25) i;
CREATE SEQUENCE public.invoice_number_seq;
SELECT setval('public.invoice_number_seq', 5000);

-- CDRs.
CREATE TABLE public.v_xml_cdr (xml_cdr_uuid uuid PRIMARY KEY, domain_uuid uuid, direction varchar(10),
  caller_id_name text, caller_id_number text, destination_number text, start_stamp timestamptz,
  answer_stamp timestamptz, end_stamp timestamptz, duration integer, billsec integer,
  hangup_cause text, record_name text);
INSERT INTO public.v_xml_cdr
  SELECT md5('cdr' || i)::uuid, md5('domain' || (i % 20))::uuid,
         (ARRAY['inbound','outbound','local'])[1 + i % 3], 'Caller ' || i, '+1' || (2000000000 + i),
         (1000 + i % 500)::text, timestamptz '2025-01-01' + i * interval '7 seconds',
         timestamptz '2025-01-01' + i * interval '7 seconds' + interval '3 seconds',
         timestamptz '2025-01-01' + i * interval '7 seconds' + (i % 600) * interval '1 second',
         i % 600, greatest(i % 600 - 3, 0),
         (ARRAY['NORMAL_CLEARING','NO_ANSWER','USER_BUSY','ORIGINATOR_CANCEL'])[1 + i % 4],
         CASE WHEN i % 10 = 0 THEN 'rec-' || i || '.wav' END
    FROM generate_series(1, {cdr_rows}) i;
RESET ROLE;
ANALYZE;
"#
    )
}
