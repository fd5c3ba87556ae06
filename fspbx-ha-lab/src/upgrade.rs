//! The lab's stand-in for `/var/www/fspbx`, so `fspbx-ha upgrade` runs FS PBX's multinode
//! update procedure for real on the lab pair: `<lab>/upgrade/` holds a small Laravel-like
//! migrator in shell that runs the SQL files of `code-<node>/migrations/` with the node's own
//! psql (the tool runs it over SSH, like `php artisan migrate`) and records each in the
//! replicated `migrations` table as one new batch; `delete-last-batch.sh` deletes the last
//! batch's records (`php artisan migrate:delete-last-batch`); `refresh.sql` runs `ALTER
//! SUBSCRIPTION … REFRESH PUBLICATION` for every subscription (`db:refresh-subscriptions`).
//!
//! "Updating the code" copies `release/` to `code-<node>/`, then `release-<node>/` over it when
//! it exists (a node-specific file: how tests break one node's migration). Every command
//! appends its step id (`$FSPBX_HA_STEP`) to `ran.log`. Both nodes share the filesystem; each
//! command finds its node in `$FSPBX_HA_NODE`, set by the tool.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::lab::LabTopology;

/// Directory name of the workdir inside the lab directory.
pub const WORKDIR: &str = "upgrade";

/// `upgrade.migrate`: runs the pending migrations of `code-$FSPBX_HA_NODE/migrations/*.sql`
/// in one new batch, each in its own transaction together with its `migrations` record.
pub const MIGRATE_SH: &str = r#"set -eu
. "./node-$FSPBX_HA_NODE.env"
echo "$FSPBX_HA_STEP" >> ran.log
batch=$($PSQL -At -c "SELECT coalesce(max(batch), 0) + 1 FROM public.migrations")
ran=0
for f in "code-$FSPBX_HA_NODE"/migrations/*.sql; do
  [ -e "$f" ] || continue
  name=$(basename "$f" .sql)
  seen=$($PSQL -At -c "SELECT count(*) FROM public.migrations WHERE migration = '$name'")
  if [ "$seen" != 0 ]; then continue; fi
  echo "migrating $name (batch $batch) on $FSPBX_HA_NODE"
  $PSQL -1 -f "$f" -c "INSERT INTO public.migrations (migration, batch) VALUES ('$name', $batch)"
  ran=$((ran + 1))
done
echo "$ran migration(s) run on $FSPBX_HA_NODE"
"#;

/// `upgrade.delete_last_batch`: deletes the last batch's records from `migrations`.
pub const DELETE_LAST_BATCH_SH: &str = r#"set -eu
. "./node-$FSPBX_HA_NODE.env"
echo "$FSPBX_HA_STEP" >> ran.log
$PSQL -c "DELETE FROM public.migrations WHERE batch = (SELECT max(batch) FROM public.migrations)"
"#;

/// Run by `upgrade.refresh_subscriptions` (psql's `\gexec`: each ALTER outside a transaction).
pub const REFRESH_SQL: &str = "SELECT format('ALTER SUBSCRIPTION %I REFRESH PUBLICATION', subname)
  FROM pg_catalog.pg_subscription
 WHERE subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
\\gexec
";

/// `upgrade.update_code`.
pub const UPDATE_CODE: &str = "echo \"$FSPBX_HA_STEP\" >> ran.log
rm -rf \"code-$FSPBX_HA_NODE\"
cp -r release \"code-$FSPBX_HA_NODE\"
if [ -d \"release-$FSPBX_HA_NODE\" ]; then cp -r \"release-$FSPBX_HA_NODE/.\" \"code-$FSPBX_HA_NODE/\"; fi";
/// `upgrade.migrate`.
pub const MIGRATE: &str = "sh ./migrate.sh";
/// `upgrade.delete_last_batch`.
pub const DELETE_LAST_BATCH: &str = "sh ./delete-last-batch.sh";
/// `upgrade.refresh_subscriptions`.
pub const REFRESH: &str = ". \"./node-$FSPBX_HA_NODE.env\"
echo \"$FSPBX_HA_STEP\" >> ran.log
$PSQL -f refresh.sql";

/// The workdir of the lab in `topology`.
pub fn workdir(topology: &LabTopology) -> PathBuf {
    topology.dir.join(WORKDIR)
}

/// The `psql` command line of a node, as the scripts use it (`$PSQL`).
fn psql_env(n: &crate::lab::NodeTopology) -> String {
    format!(
        "PSQL=\"{} -X -q -v ON_ERROR_STOP=1 -h {} -p {} -U postgres -d {}\"\n",
        n.pg.bin_dir.join("psql").display(),
        n.pg.socket_dir.display(),
        n.pg.port,
        n.pg.database
    )
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::io("write", path, e))
}

/// Writes the workdir (scripts, one `node-<name>.env` per node, an empty
/// `release/migrations/`) and returns its path. Files already in `release/` stay.
pub fn write_workdir(topology: &LabTopology) -> Result<PathBuf, Error> {
    let dir = workdir(topology);
    let migrations = dir.join("release").join("migrations");
    std::fs::create_dir_all(&migrations).map_err(|e| Error::io("create", &migrations, e))?;
    for n in &topology.nodes {
        write(&dir.join(format!("node-{}.env", n.name)), &psql_env(n))?;
    }
    write(&dir.join("migrate.sh"), MIGRATE_SH)?;
    write(&dir.join("delete-last-batch.sh"), DELETE_LAST_BATCH_SH)?;
    write(&dir.join("refresh.sql"), REFRESH_SQL)?;
    Ok(dir)
}

/// The `[upgrade]` section of the lab's cluster.toml: the workdir and the lab's commands.
pub fn upgrade_toml(topology: &LabTopology) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut t = String::new();
    let _ = writeln!(
        t,
        "[upgrade]\n# The lab's stand-in for /var/www/fspbx (see fspbx-ha-lab's upgrade module):\n\
         # put migrations in release/migrations/*.sql, then `fspbx-ha upgrade --yes`."
    );
    let _ = writeln!(
        t,
        "workdir = {}",
        q(&workdir(topology).display().to_string())
    );
    // With the lab's DNS, the floating record tells the active node, as in production.
    let first = if topology.dns.is_some() {
        "active"
    } else {
        "a"
    };
    let _ = writeln!(t, "first = \"{first}\"");
    let _ = writeln!(t, "update_code = {}", q(UPDATE_CODE));
    let _ = writeln!(t, "migrate = {}", q(MIGRATE));
    let _ = writeln!(t, "delete_last_batch = {}", q(DELETE_LAST_BATCH));
    let _ = writeln!(t, "refresh_subscriptions = {}", q(REFRESH));
    let _ = writeln!(t, "command_timeout = \"120s\"");
    let _ = writeln!(t, "sync_timeout = \"60s\"");
    t
}
