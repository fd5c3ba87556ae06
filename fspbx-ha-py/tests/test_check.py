"""check() against the real lab: all green on a good pair, named failures on a bad one."""

import json
import os

import fspbx_ha


def apply_dns(cfg):
    """Creates the three names (`dns apply`) and waits until both servers answer them."""
    floating = fspbx_ha.Floating(cfg)
    floating.apply()
    assert floating.verify(timeout=20.0)["ok"]


def test_check_passes_on_the_lab(lab):
    cfg = fspbx_ha.ClusterConfig.load(lab.config_path)
    apply_dns(cfg)
    report = fspbx_ha.check(cfg)
    failing = [i for i in report.items if i.status in ("fail", "skip")]
    assert report.ok, report.table()
    assert failing == []
    for node in ("a", "b"):
        assert report.find(node, "ssh").status == "pass"
        assert report.find(node, "ssh.to_peer").status == "pass"
        assert report.find(node, "postgres.version").observed.startswith("PostgreSQL 17")
        assert report.find(node, "postgres.wal_level").observed == "wal_level = logical"
        assert report.find(node, "dns.node_record").status == "pass"
    assert report.find("dns", "dns.floating").status == "pass"
    data = json.loads(report.to_json())
    assert {i["check"] for i in data["items"]} >= {"ssh", "postgres.connect", "postgres.replica_identity"}


def test_check_fails_on_pg15_and_wal_level_replica(lab_pg15_replica):
    cfg = fspbx_ha.ClusterConfig.load(lab_pg15_replica.config_path)
    report = fspbx_ha.check(cfg)
    assert not report.ok
    version_b = report.find("b", "postgres.version")
    assert version_b.status == "fail"
    assert "PostgreSQL 15" in version_b.observed
    assert "origin = none needs PostgreSQL 16 or newer" in version_b.fix
    wal_a = report.find("a", "postgres.wal_level")
    assert wal_a.status == "fail"
    assert wal_a.observed == "wal_level = replica"
    assert report.find("a", "postgres.version").status == "pass"


def test_unresolvable_password_is_reported_without_the_secret(lab, tmp_path, monkeypatch):
    # Point node A's password at an unset variable and node B's at a wrong value.
    text = lab.config_path.read_text()
    secret_file = tmp_path / "wrong"
    secret_file.write_text("Wr0ng-Pa55word\n")
    topo = lab.topology
    pw_a = topo["nodes"][0]["pg"]["password_file"]
    pw_b = topo["nodes"][1]["pg"]["password_file"]
    text = text.replace(f'"file:{pw_a}"', '"env:FSPBX_HA_TEST_UNSET_PW"')
    text = text.replace(f'"file:{pw_b}"', f'"file:{secret_file}"')
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    monkeypatch.delenv("FSPBX_HA_TEST_UNSET_PW", raising=False)
    report = fspbx_ha.check(fspbx_ha.ClusterConfig.load(path), peer_ssh=False)
    a = report.find("a", "postgres.connect")
    b = report.find("b", "postgres.connect")
    assert a.status == "fail" and "FSPBX_HA_TEST_UNSET_PW" in a.observed
    assert b.status == "fail" and "password" in b.observed.lower()
    dumped = report.to_json() + report.table()
    assert "Wr0ng-Pa55word" not in dumped
    assert open(pw_b).read().strip() not in dumped


def test_pair_status_reads_every_part(lab):
    cfg = fspbx_ha.ClusterConfig.load(lab.config_path)
    st = fspbx_ha.pair_status(cfg)
    assert st["verdict"] in ("healthy", "degraded", "broken")
    # Every part was read from the real servers: Knot, both PostgreSQL, both Syncthing (via SSH).
    assert st["floating"]["state"] == "ok", st["floating"]
    assert st["floating"]["value"]["zone"] == "example.test"
    assert st["replication"]["state"] == "ok", st["replication"]
    assert len(st["replication"]["value"]["directions"]) == 2
    assert st["files"]["state"] == "ok", st["files"]
    assert [n["node"] for n in st["files"]["value"]["sync"]["nodes"]] == ["a", "b"]
    if st["verdict"] != "healthy":
        assert st["reasons"]
