"""fspbx_ha.upgrade() end to end on a lab pair of its own (PostgreSQL 17, sshd per node, both
directions replicating).

The FS PBX commands are replaced by the lab's (the ``[upgrade]`` section of the lab's
cluster.toml, workdir ``<lab>/upgrade``): a small Laravel-like migrator in shell runs SQL
migration files with the node's own psql over SSH and records them in the replicated
``migrations`` table; delete-last-batch deletes the last batch's records; refresh runs
``ALTER SUBSCRIPTION … REFRESH PUBLICATION``. Every command appends its step id to ``ran.log``. Node B's migration is broken first: the run
stops there, the fix is made, a second call resumes at that step and finishes.
"""

import json

import pytest

import fspbx_ha
from conftest import psql, replicating_lab, wait_for

SCHEMA = r"""
SET ROLE fusionpbx;
CREATE TABLE public.v_extensions (extensions_uuid uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  extension text, insert_date timestamptz DEFAULT now());
INSERT INTO public.v_extensions (extension) SELECT (1000 + i)::text FROM generate_series(1, 50) i;
CREATE TABLE public.v_domains (domain_uuid uuid PRIMARY KEY DEFAULT uuid_generate_v4(), domain_name text);
INSERT INTO public.v_domains (domain_name) SELECT 'd' || i || '.example' FROM generate_series(1, 5) i;
CREATE TABLE public.migrations (id serial PRIMARY KEY, migration varchar(255) NOT NULL, batch integer NOT NULL);
INSERT INTO public.migrations (migration, batch)
  SELECT '2024_01_01_' || lpad(i::text, 6, '0') || '_create_table', 1 + i / 10 FROM generate_series(1, 30) i;
RESET ROLE;
"""

MIGRATION_NAME = "2026_11_30_000002_create_call_tags"
MIGRATION = """SET ROLE fusionpbx;
CREATE TABLE public.v_call_tags (call_tag_uuid uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  call_tag_name text NOT NULL);
ALTER TABLE public.v_extensions ADD COLUMN call_tag_uuid uuid;
RESET ROLE;
"""
BROKEN = MIGRATION.replace("ADD COLUMN", "ADD COLUM")


@pytest.fixture(scope="module")
def upgrade_lab(tmp_path_factory):
    """A lab of its own, replicating both ways. Its cluster.toml carries the lab's [upgrade]
    section and `<lab>/upgrade` its workdir; the release gets one migration, broken on node B."""
    with replicating_lab(tmp_path_factory, "labupgrade", schema_a=SCHEMA) as lab:
        assert lab.pair.status().verdict == "healthy"

        work = lab.dir / "upgrade"
        assert (work / "migrate.sh").exists(), "the lab wrote its workdir"
        (work / "release" / "migrations" / f"{MIGRATION_NAME}.sql").write_text(MIGRATION)
        # Node B's release carries a broken migration (release-b/ overrides release/ there).
        broken = work / "release-b" / "migrations"
        broken.mkdir(parents=True)
        (broken / f"{MIGRATION_NAME}.sql").write_text(BROKEN)
        lab.upgrade_config = lab.config_path
        lab.workdir = work
        yield lab


def ran(lab) -> list:
    log = lab.workdir / "ran.log"
    return log.read_text().split() if log.exists() else []


def test_upgrade_stops_on_node_b_and_resumes_after_the_fix(upgrade_lab):
    lab = upgrade_lab
    a, b = lab.topology["nodes"]
    state_file = lab.dir / "upgrade-state.json"

    # Dry run: every step, node and exact command; nothing runs, nothing is written.
    # The lab runs DNS, so its [upgrade] says first = "active"; no floating record is set here,
    # so the first node is named.
    with pytest.raises(fspbx_ha.ConfigError) as e:
        fspbx_ha.upgrade(lab.upgrade_config, dry_run=True)
    assert "pass --first NODE" in str(e.value)
    dry = fspbx_ha.upgrade(lab.upgrade_config, dry_run=True, first="a")
    assert dry.dry_run and not dry.finished
    assert dry.first == "a"
    assert dry.step_ids[3:11] == ["code.a", "code.b", "migrate.a", "caughtup.b",
                                  "delete-last-batch.b", "migrate.b", "refresh.a", "refresh.b"]
    assert {s["result"] for s in dry.steps} == {"would_run"}
    migrate_b = dry.plan["steps"][8]
    assert migrate_b["node"] == "b"
    assert migrate_b["action"]["run"] == "sh ./migrate.sh"
    assert migrate_b["action"]["sent"].startswith(f"cd {lab.workdir} && export FSPBX_HA_NODE=b")
    assert "migrate.b on b" in dry.render()
    assert ran(lab) == [] and not state_file.exists()

    # The run stops at node B's broken migration.
    with pytest.raises(fspbx_ha.UpgradeError) as e:
        fspbx_ha.upgrade(lab.upgrade_config, first="a")
    f = e.value.failure
    assert (f["step"], f["node"], f["command"]) == ("migrate.b", "b", "sh ./migrate.sh")
    assert f["status"] == "exit status 3"
    assert "ADD COLUM call_tag_uuid" in f["stderr_tail"]
    assert "it resumes at migrate.b" in str(e.value)
    state = json.loads(state_file.read_text())
    assert state["failed"]["id"] == "migrate.b" and not state["finished"]
    assert [d["id"] for d in state["done"]] == dry.step_ids[:8]
    assert psql(a, "SELECT to_regclass('public.v_call_tags') IS NOT NULL") == "t"
    assert psql(b, "SELECT to_regclass('public.v_call_tags') IS NULL") == "t"

    # Fix the deployed file on node B; call again (the recorded run knows its first node): it
    # resumes at migrate.b and finishes.
    (lab.workdir / "code-b" / "migrations" / f"{MIGRATION_NAME}.sql").write_text(MIGRATION)
    events = []
    report = fspbx_ha.upgrade(lab.upgrade_config, progress=events.append)
    assert report.finished and report.resumed
    assert report.skipped == dry.step_ids[:8]
    assert report.executed == dry.step_ids[8:]
    assert report.new_tables == ["public.v_call_tags"]
    assert events[0]["event"] == "plan_ready" and events[0]["done"] == dry.step_ids[:8]
    assert [e["id"] for e in events if e["event"] == "step_started"] == dry.step_ids[8:]
    assert ran(lab) == ["code.a", "code.b", "migrate.a", "delete-last-batch.b",
                        "migrate.b", "migrate.b", "refresh.a", "refresh.b"]
    assert json.loads(state_file.read_text())["finished"] is True

    # The servers: the table in both subscriptions, ready; rows cross both ways.
    for node, sub in ((a, "fspbx_subscription_b_to_a"), (b, "fspbx_subscription_a_to_b")):
        assert psql(node, "SELECT s.subname || ':' || r.srsubstate::text FROM pg_subscription_rel r "
                          "JOIN pg_subscription s ON s.oid = r.srsubid "
                          "WHERE r.srrelid = 'public.v_call_tags'::regclass") == f"{sub}:r"
        assert psql(node, "SELECT count(*) FROM public.migrations "
                          f"WHERE migration = '{MIGRATION_NAME}'") == "1"
    psql(a, "INSERT INTO public.v_call_tags (call_tag_name) VALUES ('from A')")
    psql(b, "INSERT INTO public.v_call_tags (call_tag_name) VALUES ('from B')")
    tags = "SELECT string_agg(call_tag_name, ',' ORDER BY call_tag_name) FROM public.v_call_tags"
    wait_for(a, tags, "from A,from B")
    wait_for(b, tags, "from A,from B")
    pair = fspbx_ha.ReplicationPair.connect(fspbx_ha.ClusterConfig.load(lab.upgrade_config))
    status = pair.status()
    for d in status.directions:
        assert d["worker_running"] and d["heartbeat_lag_s"] is not None
        assert d["tables_ready"] == d["tables_total"]
