"""Sequences, schema drift and subscription refresh from Python against a real lab pair
(PostgreSQL 17 and 18, sshd per node).

The lab's cluster.toml uses the sync strategy: sequences comply at rest and interleave is
refused. Switched to interleave: a dry run changes nothing, the real run makes node B draw even
ids, and the pair then complies. Drift: a column added on A is named exactly; a table created on
both nodes needs a refresh, a dry run changes nothing, the refresh adds it; a table only on A
blocks the refresh with ReplicationError.
"""

import pytest

import fspbx_ha
from conftest import psql, replicating_lab

SCHEMA = """
CREATE TABLE public.jobs (id bigserial PRIMARY KEY, queue text NOT NULL);
CREATE TABLE public.v_users (user_uuid uuid PRIMARY KEY, username text);
"""


@pytest.fixture(scope="module", params=["17", "18"])
def schema_lab(request, tmp_path_factory):
    """A lab of its own with replication set up both ways over the schema above."""
    rows = "INSERT INTO public.jobs (queue) SELECT 'q' FROM generate_series(1, 300);"
    with replicating_lab(tmp_path_factory, f"labschema{request.param}", ["--pg", request.param],
                         schema_a=SCHEMA + rows, schema_b=SCHEMA) as lab:
        yield lab


def configs(lab):
    text = lab.config_path.read_text()
    assert 'strategy = "sync"' in text, "the lab uses the sync strategy"
    sync = fspbx_ha.ClusterConfig.load(lab.config_path)
    inter = fspbx_ha.ClusterConfig.from_toml(text.replace('strategy = "sync"', 'strategy = "interleave"'))
    return sync, inter


def test_sequences_sync_then_interleave(schema_lab):
    a, b = schema_lab.topology["nodes"]
    sync, inter = configs(schema_lab)

    report = fspbx_ha.replication_sequences(sync)
    assert report["compliance"]["strategy"] == "sync"
    assert report["compliance"]["compliant"] is True
    jobs = report["nodes"][0]["sequences"][0]
    assert (jobs["table_name"], jobs["column"], jobs["kind"], jobs["column_max"]) == ("jobs", "id", "serial", 300)
    assert report["plan"] is None
    with pytest.raises(fspbx_ha.ConfigError) as e:
        fspbx_ha.replication_interleave(sync, dry_run=False)
    assert "replication.sequences.strategy" in str(e.value)

    report = fspbx_ha.replication_sequences(inter)
    assert report["compliance"]["compliant"] is False
    assert len(report["compliance"]["problems"]) == 2

    dry = fspbx_ha.replication_interleave(inter)
    assert dry["applied"] is False
    restarts = [c for c in dry["changes"] if c["action"] == "restart"]
    assert [(c["node"], c["restart_with"]) for c in restarts] == [("a", 301), ("b", 302)]
    incr = "SELECT seqincrement FROM pg_sequence WHERE seqrelid = 'public.jobs_id_seq'::regclass"
    assert psql(b, incr) == "1", "the dry run changed nothing"

    done = fspbx_ha.replication_interleave(inter, dry_run=False)
    assert done["applied"] is True
    assert psql(a, incr) == psql(b, incr) == "2"
    assert psql(b, "INSERT INTO public.jobs (queue) VALUES ('b') RETURNING id") == "302"
    assert psql(a, "INSERT INTO public.jobs (queue) VALUES ('a') RETURNING id") == "301"
    assert fspbx_ha.replication_sequences(inter)["compliance"]["compliant"] is True
    again = fspbx_ha.replication_interleave(inter, dry_run=False)
    assert all(c["action"] == "keep" for c in again["changes"])


def test_drift_and_refresh(schema_lab):
    a, b = schema_lab.topology["nodes"]
    cfg = fspbx_ha.ClusterConfig.load(schema_lab.config_path)

    d = fspbx_ha.replication_drift(cfg)
    assert d.clean, d.render()

    psql(a, "ALTER TABLE public.v_users ADD COLUMN nickname text")
    d = fspbx_ha.replication_drift(cfg)
    assert d.has_drift and not d.clean
    assert d.tables == [{
        "table": '"public"."v_users"',
        "changes": [{"kind": "column_only_on", "column": "nickname", "data_type": "text", "node": "a"}],
    }]
    assert 'column "nickname" (text) only on a' in d.render()
    status = fspbx_ha.ReplicationPair.connect(cfg).status()
    assert status.verdict == "degraded"
    assert any(r.startswith("schema drift in 1 table(s)") for r in status.reasons), status.reasons
    assert status.drift["tables"][0]["table"] == '"public"."v_users"'
    assert status.sequences["strategy"] == "sync" and status.sequences["compliant"] is True
    slots_a = status.slots["nodes"][0]
    assert slots_a["node"] == "a" and slots_a["max_slot_wal_keep_size"] == "-1"
    assert any(s["name"] == "fspbx_subscription_a_to_b" and s["active"] for s in slots_a["slots"])
    assert status.slots["warnings"] == []

    # A table only on A: the refresh is refused, nothing runs.
    psql(a, "CREATE TABLE public.v_new (id uuid PRIMARY KEY)")
    with pytest.raises(fspbx_ha.ReplicationError) as e:
        fspbx_ha.replication_refresh(cfg, dry_run=False)
    assert "node b: subscription fspbx_subscription_a_to_b cannot be refreshed" in str(e.value)

    psql(b, "CREATE TABLE public.v_new (id uuid PRIMARY KEY)")
    d = fspbx_ha.replication_drift(cfg)
    assert d.refresh_needed == [("b", "public.v_new"), ("a", "public.v_new")]
    dry = fspbx_ha.replication_refresh(cfg)
    assert dry["dry_run"] is True and not any(s["done"] for s in dry["subscriptions"])
    assert fspbx_ha.replication_drift(cfg).refresh_needed == d.refresh_needed
    done = fspbx_ha.replication_refresh(cfg, dry_run=False)
    assert all(s["done"] for s in done["subscriptions"])
    assert fspbx_ha.replication_drift(cfg).refresh_needed == []
    assert psql(b, "SELECT count(*) FROM pg_subscription_rel WHERE srrelid = 'public.v_new'::regclass") == "1"

    psql(b, "ALTER TABLE public.v_users ADD COLUMN nickname text")
    assert fspbx_ha.replication_drift(cfg).clean
