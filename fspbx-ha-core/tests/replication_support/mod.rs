//! Test support for the replication suites: the lab's two nodes (node A on 127.0.0.2, node B
//! on 127.0.0.3, PostgreSQL and sshd each) with the lab's own cluster configuration, varied per
//! test, and an FS PBX-like schema generated with SQL.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::time::Duration;

use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_core::replication::{self, Intent, NoProgress, Pair, Verdict};
use fspbx_ha_lab::cluster_toml::{replication_password_file, write_cluster_toml};
use fspbx_ha_lab::lab::{Lab, LabOptions};
use fspbx_ha_lab::postgres::{PgFlavor, PgServer};

/// How to start a pair.
#[derive(Debug, Clone)]
pub struct PairOptions {
    /// Build of node A.
    pub flavor_a: PgFlavor,
    /// Build of node B.
    pub flavor_b: PgFlavor,
    /// wal_level of node A.
    pub wal_level_a: String,
    /// Let the configuration use SSH (pg_hba block, schema copy over SSH). Without it the
    /// configuration points SSH at a port and key that cannot work and `manage_hba` is off, so
    /// a test proves that nothing needed SSH.
    pub ssh: bool,
    /// Reach node A's PostgreSQL through its SSH connection (direct-tcpip), as the lab's
    /// cluster.toml does; otherwise directly.
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

/// A running pair (the lab); everything stops when it is dropped.
pub struct LabPair {
    /// Stopped on drop, before its directory is removed (field order).
    lab: Lab,
    opts: PairOptions,
    /// The lab's cluster.toml.
    toml_path: PathBuf,
    /// The replication role's password (the lab's password file, rewritten with quotes, a
    /// backslash and a space so that conninfo quoting is exercised).
    pub repl_password: String,
    dir: tempfile::TempDir,
}

impl LabPair {
    /// Starts the lab (both nodes concurrently) and writes its cluster.toml.
    pub fn start(opts: PairOptions) -> LabPair {
        let dir = tempfile::Builder::new()
            .prefix("fspbx-ha-repl-")
            .tempdir()
            .unwrap();
        let lab = Lab::start(LabOptions {
            pg: opts.flavor_a,
            node_b_pg: Some(opts.flavor_b),
            wal_level_a: Some(opts.wal_level_a.clone()),
            ..LabOptions::new(dir.path().join("lab"))
        })
        .expect("the lab starts");
        let topology = lab.topology();
        let toml_path = write_cluster_toml(&topology).unwrap();
        let repl_password = format!("r'3pl \\{}", std::process::id());
        std::fs::write(
            replication_password_file(&topology),
            format!("{repl_password}\n"),
        )
        .unwrap();
        LabPair {
            lab,
            opts,
            toml_path,
            repl_password,
            dir,
        }
    }

    /// Starts the pair with the same FS PBX-like schema on both nodes (as two FS PBX installs
    /// have), `cdr_rows` CDRs on A and B's rows removed (FS PBX's script empties B before the
    /// copy): no SSH needed to set replication up.
    pub fn with_same_schema(opts: PairOptions, cdr_rows: u32) -> LabPair {
        let lab = LabPair::start(opts);
        let schema = fspbx_schema_sql(cdr_rows);
        lab.sql_a(&schema);
        lab.sql_b(&schema);
        let tables = lab.sql_b(
            "SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') FROM pg_tables
              WHERE schemaname IN ('public', 'Billing Data')",
        );
        lab.sql_b(&format!("TRUNCATE {tables}"));
        lab
    }

    /// Node A's PostgreSQL.
    pub fn a(&self) -> &PgServer {
        &self.lab.a().pg
    }

    /// Node B's PostgreSQL.
    pub fn b(&self) -> &PgServer {
        &self.lab.b().pg
    }

    /// Node A's PostgreSQL, mutable (to stop, kill or restart it).
    pub fn a_mut(&mut self) -> &mut PgServer {
        &mut self.lab.a_mut().pg
    }

    /// Node B's PostgreSQL, mutable.
    pub fn b_mut(&mut self) -> &mut PgServer {
        &mut self.lab.b_mut().pg
    }

    /// The configuration file text for this pair: the lab's cluster.toml with
    /// `replication_extra` added to its `[replication]` section.
    pub fn config_toml(&self, replication_extra: &str) -> String {
        let text = std::fs::read_to_string(&self.toml_path).unwrap();
        assert!(text.contains("\n[replication]\n"), "{text}");
        text.replacen(
            "\n[replication]\n",
            &format!("\n[replication]\n{replication_extra}\n"),
            1,
        )
    }

    /// The parsed, validated configuration, with this pair's variations.
    pub fn config(&self, replication_extra: &str) -> ClusterConfig {
        let mut c = ClusterConfig::from_toml_str(&self.config_toml(replication_extra))
            .expect("lab config is valid");
        for n in &mut c.nodes {
            n.ssh.connect_attempts = 1;
            n.ssh.command_timeout = Duration::from_secs(120);
            if !self.opts.ssh {
                n.ssh.port = 22;
                n.ssh.identity = self.dir.path().join("no-key");
            }
        }
        c.nodes[0].postgres.via_ssh = self.opts.ssh && self.opts.a_via_ssh;
        c.replication.manage_hba = self.opts.ssh;
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        c
    }

    /// Writes the configuration to a file (for the CLI) and returns its path.
    pub fn config_file(&self, replication_extra: &str) -> PathBuf {
        let p = self.dir.path().join("cluster.toml");
        std::fs::write(&p, self.config(replication_extra).to_toml()).unwrap();
        p
    }

    /// psql on node A's `fusionpbx` database as `postgres`.
    pub fn sql_a(&self, sql: &str) -> String {
        self.a().psql("fusionpbx", sql).unwrap()
    }

    /// psql on node B's `fusionpbx` database as `postgres`.
    pub fn sql_b(&self, sql: &str) -> String {
        self.b().psql("fusionpbx", sql).unwrap()
    }

    /// Polls `sql` on `pg` until it prints `want` (10 s).
    pub fn wait_for(&self, pg: &PgServer, sql: &str, want: &str) {
        self.wait_for_within(pg, sql, want, Duration::from_secs(10));
    }

    /// Polls `sql` on `pg` until it prints `want`, for up to `limit`.
    pub fn wait_for_within(&self, pg: &PgServer, sql: &str, want: &str, limit: Duration) {
        let started = std::time::Instant::now();
        loop {
            let got = pg.psql("fusionpbx", sql).unwrap();
            if got == want {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "{} never printed {want:?} for {sql} (last {got:?})",
                pg.name()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Sets replication up with SQL only, exactly as FS PBX's script does it (its names, its
    /// user, its options): `CREATE PUBLICATION … FOR ALL TABLES` on both nodes, B's subscription
    /// with `copy_data = true`, B's tables all ready (within `ready_within`), then A's
    /// subscription with `copy_data = false`.
    pub fn script_setup(&self, ready_within: Duration) {
        self.sql_a("CREATE PUBLICATION fspbx_publication_a FOR ALL TABLES");
        self.sql_b("CREATE PUBLICATION fspbx_publication_b FOR ALL TABLES");
        let subscribe = |on: &PgServer, to: &PgServer, name: &str, publ: &str, copy: bool| {
            on.psql(
                "fusionpbx",
                &format!(
                    "CREATE SUBSCRIPTION {name} CONNECTION 'host={} port={} dbname=fusionpbx user=fusionpbx password={}' \
                     PUBLICATION {publ} WITH (copy_data = {copy}, origin = none)",
                    to.ip(),
                    to.port(),
                    to.password()
                ),
            )
            .unwrap();
        };
        subscribe(
            self.b(),
            self.a(),
            "fspbx_subscription_a_to_b",
            "fspbx_publication_a",
            true,
        );
        self.wait_for_within(
            self.b(),
            "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'",
            "0",
            ready_within,
        );
        subscribe(
            self.a(),
            self.b(),
            "fspbx_subscription_b_to_a",
            "fspbx_publication_b",
            false,
        );
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

/// Sets replication up both ways with the library (`Pair::connect`, the plan of the default
/// intent, `apply`) for `config`, and asserts the pair healthy afterwards.
pub async fn replicate_both_ways(config: &ClusterConfig) -> Pair {
    let mut pair = Pair::connect(config).await.unwrap();
    let plan = pair.plan(&Intent::default()).await.unwrap();
    replication::apply(&mut pair, &plan, &NoProgress)
        .await
        .expect("replication set up both ways");
    let st = replication::status(&pair).await.unwrap();
    assert_eq!(st.verdict, Verdict::Healthy, "{}", st.render());
    pair
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
