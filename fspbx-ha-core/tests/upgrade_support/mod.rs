//! Test support for `fspbx-ha upgrade`: the lab's own `[upgrade]` section and workdir (see
//! `fspbx_ha_lab::upgrade`: a small Laravel-like migrator in shell running SQL migration files
//! with the node's own psql over SSH, `delete-last-batch` deleting the last batch's records
//! from the replicated `migrations` table, `ALTER SUBSCRIPTION … REFRESH PUBLICATION` for every
//! subscription; every command appends its step id to `ran.log`), and a release to upgrade to.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use fspbx_ha_core::config::ClusterConfig;
use fspbx_ha_lab::postgres::PgServer;

use crate::replication_support::LabPair;

pub const MIGRATION_NAME: &str = "2026_11_30_000001_create_call_tags";
pub const MIGRATION_SQL: &str = "SET ROLE fusionpbx;
CREATE TABLE public.v_call_tags (
  call_tag_uuid uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  domain_uuid uuid,
  call_tag_name text NOT NULL,
  insert_date timestamptz DEFAULT now()
);
ALTER TABLE public.v_extensions ADD COLUMN call_tag_uuid uuid;
RESET ROLE;
";
/// The same migration broken on its second statement (a typo in the DDL).
pub fn broken_sql() -> String {
    let broken = MIGRATION_SQL.replacen("ADD COLUMN call_tag_uuid", "ADD COLUM call_tag_uuid", 1);
    assert_ne!(broken, MIGRATION_SQL);
    broken
}

/// What `ran.log` holds after a run that stopped at node B's broken migration (A first).
pub const RAN_UNTIL_B_FAILED: [&str; 5] = [
    "code.a",
    "code.b",
    "migrate.a",
    "delete-last-batch.b",
    "migrate.b",
];

/// What `ran.log` holds after that run was resumed and finished: only migrate.b ran twice.
pub const RAN_AFTER_RESUME: [&str; 8] = [
    "code.a",
    "code.b",
    "migrate.a",
    "delete-last-batch.b",
    "migrate.b",
    "migrate.b",
    "refresh.a",
    "refresh.b",
];

/// The lab's workdir (`<lab>/upgrade`), with the release's migration in `release/`.
pub struct Workdir {
    dir: PathBuf,
}

impl Workdir {
    /// The lab's workdir, from its cluster.toml, with [`MIGRATION_SQL`] in the release.
    pub fn new(lab: &LabPair) -> Workdir {
        let w = Workdir {
            dir: PathBuf::from(&lab.config("").upgrade.workdir),
        };
        assert!(
            w.dir.join("migrate.sh").exists(),
            "the lab wrote its workdir"
        );
        w.write(
            &format!("release/migrations/{MIGRATION_NAME}.sql"),
            MIGRATION_SQL,
        );
        w
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `rel` (directories created).
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// The step ids the commands logged, in order.
    pub fn ran(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("ran.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Where the tests keep the state file.
    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state").join("upgrade-state.json")
    }
}

/// The lab configuration: its `[upgrade]` section as the lab wrote it.
pub fn config(lab: &LabPair, w: &Workdir) -> ClusterConfig {
    let c = lab.config("");
    assert_eq!(Path::new(&c.upgrade.workdir), w.path());
    assert_eq!(c.upgrade.first, "a");
    assert_eq!(c.upgrade.migrate.run, "sh ./migrate.sh");
    assert!(c.problems().is_empty(), "{:?}", c.problems());
    std::fs::create_dir_all(w.state_file().parent().unwrap()).unwrap();
    c
}

/// Whether `pg` has the migration's table.
pub fn has_call_tags(pg: &PgServer) -> bool {
    pg.psql(
        "fusionpbx",
        "SELECT to_regclass('public.v_call_tags') IS NOT NULL",
    )
    .unwrap()
        == "t"
}

/// `count/batch` of the migration's records in `pg`'s `migrations` table.
pub fn migration_record(pg: &PgServer) -> String {
    pg.psql(
        "fusionpbx",
        &format!(
            "SELECT count(*) || '/' || max(batch) FROM public.migrations \
             WHERE migration = '{MIGRATION_NAME}'"
        ),
    )
    .unwrap()
}

/// What the servers say after the upgrade, on each node: the migration's table and column, the
/// new table in the node's subscription in state `r`, the migration recorded once, in batch 5.
pub fn assert_migrated(lab: &LabPair) {
    for (pg, subscription) in [
        (lab.a(), "fspbx_subscription_b_to_a"),
        (lab.b(), "fspbx_subscription_a_to_b"),
    ] {
        assert_eq!(
            pg.psql(
                "fusionpbx",
                "SELECT to_regclass('public.v_call_tags') IS NOT NULL AND EXISTS (
                   SELECT 1 FROM information_schema.columns
                    WHERE table_name = 'v_extensions' AND column_name = 'call_tag_uuid')"
            )
            .unwrap(),
            "t",
            "{}: the migration's table and column",
            pg.name()
        );
        assert_eq!(
            pg.psql(
                "fusionpbx",
                "SELECT string_agg(s.subname || ':' || r.srsubstate::text, ',')
                   FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid
                  WHERE r.srrelid = 'public.v_call_tags'::regclass"
            )
            .unwrap(),
            format!("{subscription}:r"),
            "{}: the new table is in the node's subscription, ready",
            pg.name()
        );
        assert_eq!(
            migration_record(pg),
            "1/5",
            "{}: the migration is recorded once, in batch 5",
            pg.name()
        );
    }
}

/// Rows cross both ways, in the migration's new table and in its new column.
pub fn assert_rows_cross(lab: &LabPair) {
    lab.sql_a(
        "INSERT INTO public.v_call_tags (call_tag_uuid, call_tag_name)
           VALUES ('00000000-0000-0000-0000-00000000000a', 'from A');
         UPDATE public.v_extensions SET call_tag_uuid = '00000000-0000-0000-0000-00000000000a'
          WHERE extensions_uuid = (SELECT min(extensions_uuid::text)::uuid FROM public.v_extensions)",
    );
    lab.sql_b(
        "INSERT INTO public.v_call_tags (call_tag_uuid, call_tag_name)
           VALUES ('00000000-0000-0000-0000-00000000000b', 'from B')",
    );
    let tags =
        "SELECT string_agg(call_tag_name, ',' ORDER BY call_tag_name) FROM public.v_call_tags";
    lab.wait_for(lab.b(), tags, "from A,from B");
    lab.wait_for(lab.a(), tags, "from A,from B");
    lab.wait_for(
        lab.b(),
        "SELECT count(*) FROM public.v_extensions WHERE call_tag_uuid IS NOT NULL",
        "1",
    );
}
