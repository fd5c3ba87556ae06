"""Replication from Python against a real lab pair (PostgreSQL 17, sshd per node).

plan -> apply (with a progress callback) -> status healthy -> rows cross both ways -> verify
clean -> a second apply runs nothing -> teardown leaves no subscription, publication or slot.
Node B starts empty: its schema is copied from node A over SSH, and pg_hba.conf gets the block.
"""

import pytest

import fspbx_ha
from conftest import Lab, psql, wait_for

REPL_PASSWORD = "py th0n'repl"

SCHEMA = r"""
SET ROLE fusionpbx;
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['v_domains','v_extensions','v_users','v_gateways','v_dialplans',
                           'v_ring_groups','v_voicemails','v_devices','v_destinations','v_fax'] LOOP
    EXECUTE format('CREATE TABLE public.%I (%I uuid PRIMARY KEY DEFAULT uuid_generate_v4(),
                      domain_uuid uuid, description text, insert_date timestamptz DEFAULT now())',
                   t, substr(t, 3) || '_uuid');
    EXECUTE format('INSERT INTO public.%I (description) SELECT ''row '' || i
                      FROM generate_series(1, 40) i', t);
  END LOOP;
END $$;
CREATE TABLE public.jobs (id bigserial PRIMARY KEY, queue text NOT NULL, payload text NOT NULL);
INSERT INTO public.jobs (queue, payload) SELECT 'default', 'job ' || i FROM generate_series(1, 300) i;
CREATE TABLE public.device_phonebook (device_uuid uuid, phonebook_name text);
INSERT INTO public.device_phonebook SELECT md5(i::text)::uuid, 'c' || i FROM generate_series(1, 50) i;
CREATE SCHEMA "Billing Data";
CREATE TABLE "Billing Data"."Mixed ""Case"" Table" ("Id" integer PRIMARY KEY, "it's" text);
INSERT INTO "Billing Data"."Mixed ""Case"" Table" SELECT i, 'v' || i FROM generate_series(1, 100) i;
CREATE TABLE public.v_xml_cdr (xml_cdr_uuid uuid PRIMARY KEY, caller_id_number text,
  start_stamp timestamptz, billsec integer);
INSERT INTO public.v_xml_cdr SELECT md5('cdr' || i)::uuid, '+1' || (2000000000 + i),
  timestamptz '2025-01-01' + i * interval '7 seconds', i % 600 FROM generate_series(1, 20000) i;
RESET ROLE;
ANALYZE;
"""


def leftovers(node: dict) -> str:
    return psql(node, "SELECT (SELECT count(*) FROM pg_subscription) || '|' || "
                      "(SELECT count(*) FROM pg_publication) || '|' || "
                      "(SELECT count(*) FROM pg_replication_slots)")


@pytest.fixture(scope="module", params=["17", "18"])
def repl_lab(request, tmp_path_factory):
    """A lab of its own (the shared one stays untouched) with a [replication] section, on
    PostgreSQL 17 and on 18."""
    lab = Lab(tmp_path_factory.mktemp(f"labrepl{request.param}") / "lab", ["--pg", request.param]).up()
    try:
        a, b = lab.topology["nodes"]
        psql(a, SCHEMA)
        # The lab's cluster.toml has a [replication] section referring to a password file;
        # give it a password with a quote and a space to prove the quoting.
        text = lab.config_path.read_text()
        assert "[replication]" in text
        (lab.dir / "replication.password").write_text(REPL_PASSWORD + "\n")
        lab.repl_config = lab.config_path
        yield lab
    finally:
        lab.down()


def test_plan_apply_status_verify_teardown(repl_lab):
    a, b = repl_lab.topology["nodes"]
    cfg = fspbx_ha.ClusterConfig.load(repl_lab.repl_config)
    pair = fspbx_ha.ReplicationPair.connect(cfg)

    plan = pair.plan()
    assert plan.kind == "setup"
    ids = plan.step_ids
    assert ids[:2] == ["hba.a", "hba.b"]
    for step in ("schema.b", "identity.a.public.device_phonebook", "subscription.b", "copy.b",
                 "sequences.b", "subscription.a"):
        assert step in ids
    assert ids.index("copy.b") < ids.index("subscription.a")
    dumped = plan.render() + plan.to_json() + repr(plan.steps)
    assert "password=<redacted>" in dumped
    assert REPL_PASSWORD not in dumped
    assert leftovers(a) == "0|0|0", "plan changes nothing"

    events = []
    report = pair.apply(plan, progress=events.append)
    assert report.executed >= len(plan) - 1
    copies = [e for e in events if e["event"] == "copy"]
    assert copies and copies[-1]["tables_done"] == copies[-1]["tables_total"] >= 13
    assert copies[-1]["rows_total"] >= 20000
    assert [e["id"] for e in events if e["event"] == "step_finished"] == ids
    assert psql(b, "SELECT count(*) FROM public.v_xml_cdr") == "20000"
    assert psql(b, "SELECT last_value FROM public.jobs_id_seq") == "300"

    status = pair.status()
    assert status.verdict == "healthy", status.render()
    major = a["pg"]["version_num"] // 10000
    if major >= 18:
        assert "confl_insert_exists" in status.directions[0]["conflicts"]
    assert status.reasons == []
    for d in status.directions:
        assert d["enabled"] and d["worker_running"]
        assert d["heartbeat_lag_s"] is not None
        assert "password=<redacted>" in d["conninfo"]
    assert REPL_PASSWORD not in status.to_json()

    psql(a, "INSERT INTO public.v_users (description) VALUES ('from python on A')")
    wait_for(b, "SELECT count(*) FROM public.v_users WHERE description = 'from python on A'", "1")
    psql(b, """INSERT INTO "Billing Data"."Mixed ""Case"" Table" VALUES (500, 'from B')""")
    wait_for(a, """SELECT "it's" FROM "Billing Data"."Mixed ""Case"" Table" WHERE "Id" = 500""", "from B")

    check = pair.verify()
    assert check.clean, check.render()
    assert check.rows_compared > 20000
    assert '"Billing Data"."Mixed ""Case"" Table"' in [t["table"] for t in check.tables]

    again = pair.plan()
    assert again.is_empty, again.render()
    assert pair.apply(again).executed == 0

    down = pair.teardown_plan()
    assert down.is_destructive and not down.is_empty
    assert leftovers(a) == "1|1|1"
    pair.apply(down)
    assert leftovers(a) == "0|0|0"
    assert leftovers(b) == "0|0|0"
    assert pair.teardown_plan().is_empty


def test_refusal_names_node_step_and_fix(repl_lab):
    # A publication with the configured name but not FOR ALL TABLES on node A.
    a, _ = repl_lab.topology["nodes"]
    psql(a, "CREATE PUBLICATION fspbx_publication_a FOR TABLE public.jobs")
    try:
        pair = fspbx_ha.ReplicationPair.connect(fspbx_ha.ClusterConfig.load(repl_lab.repl_config))
        with pytest.raises(fspbx_ha.FspbxHaError) as e:
            pair.plan()
        text = str(e.value)
        assert text.startswith("node a: step publication.a: publication \"fspbx_publication_a\" exists with other settings")
        assert "not FOR ALL TABLES" in text and "DROP PUBLICATION" in text
    finally:
        psql(a, "DROP PUBLICATION fspbx_publication_a")
