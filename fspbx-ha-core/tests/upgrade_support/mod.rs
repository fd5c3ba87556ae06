//! Test support for `fspbx-ha upgrade`: the lab's own `[upgrade]` section and workdir (see
//! `fspbx_ha_lab::upgrade`: a small Laravel-like migrator in shell running SQL migration files
//! with the node's own psql over SSH, `delete-last-batch` deleting the last batch's records
//! from the replicated `migrations` table, `ALTER SUBSCRIPTION … REFRESH PUBLICATION` for every
//! subscription; every command appends its step id to `ran.log`), and a release to upgrade to.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use fspbx_ha_core::config::ClusterConfig;

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
pub const BROKEN_SQL: &str = "SET ROLE fusionpbx;
CREATE TABLE public.v_call_tags (
  call_tag_uuid uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  domain_uuid uuid,
  call_tag_name text NOT NULL,
  insert_date timestamptz DEFAULT now()
);
ALTER TABLE public.v_extensions ADD COLUM call_tag_uuid uuid;
RESET ROLE;
";

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
