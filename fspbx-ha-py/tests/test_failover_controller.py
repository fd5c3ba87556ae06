"""The failover Controller from Python against a lab of its own (PostgreSQL, sshd and Kamailio
per node; the floating record on Knot primary + secondary)."""

import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

import fspbx_ha
from conftest import Lab, cli_bin


@pytest.fixture(scope="module")
def sip_lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("failover") / "lab").up()
    subprocess.run(
        [cli_bin(), "-c", str(lab.config_path), "dns", "apply"],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=60,
    )
    yield lab
    lab.down()


def test_controller_watches_fails_over_and_reports(sip_lab, tmp_path):
    cfg = fspbx_ha.ClusterConfig.load(str(sip_lab.config_path))
    audit = tmp_path / "audit.jsonl"
    c = fspbx_ha.Controller(cfg, audit_log=audit, metrics_listen="127.0.0.1:0")

    # A healthy pair: rounds run, both nodes come up, nothing flips.
    st = c.run_for(2.0)
    assert st["rounds"] >= 3
    assert [n["health"] for n in st["nodes"]] == ["up", "up"]
    assert st["active"] == "a"
    assert st["flips_ok"] == 0
    kinds = {o["kind"] for o in st["nodes"][0]["observations"]}
    assert {"sip_udp", "postgres_writable"} <= kinds

    # In the background, with /health; A's SIP stack dies -> the record moves to B.
    c.start()
    assert c.running
    time.sleep(1.2)
    with urllib.request.urlopen(f"http://{c.metrics_addr}/health", timeout=2) as r:
        assert r.status == 200 and r.read() == b"ok\n"
    sip_a = next(
        p for p in sip_lab.topology["processes"] if p["node"] == "a" and p["component"] == "kamailio"
    )
    os.killpg(sip_a["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and c.status["active"] != "b":
        time.sleep(0.1)
    st = c.stop()
    assert st["active"] == "b", st
    assert st["flips_ok"] == 1
    assert not c.running

    records = [json.loads(l) for l in audit.read_text().splitlines()]
    flips = [r for r in records if r["event"] == "flip"]
    assert len(flips) == 1 and flips[0]["node"] == "b"

    report = fspbx_ha.failover_status(cfg, last=500)
    assert report["active_node"] == "b"
    # Samples of the counts taken on B after the flip (the lab has no fs_cli: uncounted ones
    # carry the error).
    for key in ("registrations", "calls"):
        assert isinstance(report[key], list)
        for s in report[key]:
            assert s["node"] == "b" and (s["count"] is not None or s["error"])

    # Switchover: already on B; back to A is refused while A's SIP stack is dead.
    assert c.switchover("b")["outcome"] == "already_active"
    with pytest.raises(fspbx_ha.FspbxHaError, match="switchover to node a refused"):
        c.switchover("a", dry_run=True)
    with pytest.raises(ValueError, match="node"):
        c.switchover("c")
