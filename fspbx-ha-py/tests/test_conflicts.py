"""Stuck and conflicting subscriptions from Python against a real lab pair (PostgreSQL 17 and
18, sshd per node; the subscriber's server log is read over SSH).

Replication is set up both ways, the same uuid key and the same bigserial id are written on both
nodes while the pair is partitioned (subscriptions disabled), then reconnected: both apply
workers fail in a loop. Detected with table, key, LSN and both row versions; fix-row on B and skip
on A; afterwards status is healthy and verify is clean.
"""

import time

import pytest

import fspbx_ha
from conftest import psql, replicating_lab

A_TO_B = "fspbx_subscription_a_to_b"
B_TO_A = "fspbx_subscription_b_to_a"
KEY = "7f2c0a4e-0000-4000-8000-0000000000aa"

SCHEMA = """
SET ROLE fusionpbx;
CREATE TABLE public.v_extensions (extension_uuid uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
  extension text NOT NULL, description text);
CREATE TABLE public.jobs (id bigserial PRIMARY KEY, queue text NOT NULL, payload text NOT NULL);
RESET ROLE;
ALTER SYSTEM SET wal_retrieve_retry_interval = '300ms';
SELECT pg_reload_conf();
"""


def rows_from(node: str) -> str:
    return (
        "BEGIN; INSERT INTO public.v_extensions (extension_uuid, extension, description) "
        f"VALUES ('{KEY}', '1001', 'from {node}'); "
        f"INSERT INTO public.jobs (queue, payload) VALUES ('default', 'job from {node}'); COMMIT;"
    )


@pytest.fixture(scope="module", params=["17", "18"])
def conflict_lab(request, tmp_path_factory):
    """A lab of its own (the shared one stays untouched), replicating both ways."""
    with replicating_lab(tmp_path_factory, f"labconfl{request.param}", ["--pg", request.param],
                         schema_a=SCHEMA, schema_b=SCHEMA) as lab:
        yield lab


def test_same_key_on_both_nodes_detected_and_resolved(conflict_lab):
    a, b = conflict_lab.topology["nodes"]
    pair = conflict_lab.pair
    assert not fspbx_ha.replication_conflicts(pair, sample_interval_s=0.5).any

    # Partition, the same keys on both nodes, reconnect.
    psql(b, f"ALTER SUBSCRIPTION {A_TO_B} DISABLE")
    psql(a, f"ALTER SUBSCRIPTION {B_TO_A} DISABLE")
    time.sleep(0.5)
    psql(a, rows_from("a"))
    psql(b, rows_from("b"))
    psql(b, f"ALTER SUBSCRIPTION {A_TO_B} ENABLE")
    psql(a, f"ALTER SUBSCRIPTION {B_TO_A} ENABLE")

    deadline = time.monotonic() + 20
    while True:
        report = fspbx_ha.replication_conflicts(pair, sample_interval_s=0.8)
        if all(d["error"] for d in report.directions):
            break
        assert time.monotonic() < deadline, report.render()
    assert sorted(report.stuck) == sorted([A_TO_B, B_TO_A])
    d = report.directions[0]
    assert d["subscription"] == A_TO_B and d["state"] == "failing"
    assert d["error"]["relation"] == "public.v_extensions"
    assert d["error"]["key"]["text"] == f"(extension_uuid)=({KEY})"
    assert "/" in d["error"]["finish_lsn"]
    assert "from b" in d["rows"]["subscriber_row"]
    assert "from a" in d["rows"]["publisher_row"]
    if a["pg"]["version_num"] >= 180000:
        assert d["error"]["kind"] == "insert_exists"
        assert d["sample"]["conflicts"]["confl_insert_exists"] > 0
    summary = fspbx_ha.conflict_summary(pair)
    assert [s["state"] for s in summary["directions"]] in (
        ["failing", "failing"], ["failing", "flowing"], ["flowing", "failing"],
    ) and any(s["apply_error_count"] > 0 for s in summary["directions"])

    with pytest.raises(ValueError):
        fspbx_ha.plan_resolution(pair, A_TO_B, skip=True, fix_row=True)
    with pytest.raises(fspbx_ha.ConfigError) as e:
        fspbx_ha.plan_resolution(pair, "nope", skip=True)
    assert A_TO_B in str(e.value)

    # fix-row on B, twice: the failing transaction holds the uuid row and the bigserial row.
    for table, mine in (("v_extensions", "from b"), ("jobs", "job from b")):
        plan = fspbx_ha.plan_resolution(pair, A_TO_B, fix_row=True)
        assert plan.remedy == "fix_row" and plan.node == "b"
        assert plan.steps[0]["sql"].startswith(f'DELETE FROM "public"."{table}" WHERE')
        assert plan.steps[0]["action"] == "unreplicated"
        assert any(mine in lost for lost in plan.lost), plan.render()
        assert f"{table}" in plan.consequence, plan.consequence
        outcome = fspbx_ha.resolve_conflict(pair, plan, resume_timeout_s=60)
    assert outcome.resolved, outcome.to_json()
    assert psql(b, "SELECT description FROM public.v_extensions") == "from a"
    assert psql(b, "SELECT payload FROM public.jobs") == "job from a"

    plan = fspbx_ha.plan_resolution(pair, B_TO_A, skip=True)
    assert "SKIP (lsn = '" in plan.steps[0]["sql"]
    outcome = fspbx_ha.resolve_conflict(pair, plan)
    assert outcome.resolved and outcome.heartbeat_s is not None

    # A kept its rows (B's unreplicated deletes never reached it); the pair converged.
    assert psql(a, "SELECT description FROM public.v_extensions") == "from a"
    assert not fspbx_ha.replication_conflicts(pair, sample_interval_s=0.5).any
    status = pair.status()
    assert status.verdict == "healthy", status.render()
    check = pair.verify()
    assert check.clean, check.render()
