"""Syncthing from Python: the typed client and the pair, against the lab's two real Syncthing
daemons (node A on 127.0.0.2, node B on 127.0.0.3; REST APIs on 127.0.0.1, reached through SSH
by the pair). Each test runs a lab of its own (conftest's `Lab`): one stops a daemon, the other
pairs them, and neither may disturb the session's lab.
"""

import json
import pathlib
import subprocess

import pytest

from conftest import Lab, lab_bin
from fspbx_ha import _native as fx

REC = "/var/lib/freeswitch/recordings"


class Daemon:
    """One node's Syncthing as the lab's topology (lab.json) describes it."""

    def __init__(self, lab: Lab, name: str):
        node = next(n for n in lab.topology["nodes"] if n["name"] == name)
        st = node["syncthing"]
        self.lab, self.name = lab, name
        self.url = st["api_url"]
        self.device_id = st["device_id"]
        self.listen = st["listen_address"]
        self.api_key = pathlib.Path(st["api_key_file"]).read_text().strip()
        # The node's media tree (`syncthing.folder_root` in the lab's cluster.toml).
        self.files = lab.dir / name / "files"

    def client(self, key=None) -> "fx.SyncthingClient":
        return fx.SyncthingClient(self.name, self.url, key or self.api_key)

    def kill(self) -> None:
        subprocess.run(
            [lab_bin(), "kill", "--dir", str(self.lab.dir), "--node", self.name,
             "--component", "syncthing"],
            check=True, stdout=subprocess.DEVNULL, timeout=30)


@pytest.fixture
def sync_lab(tmp_path):
    lab = Lab(tmp_path / "lab")
    try:
        yield lab.up()
    finally:
        lab.down()


@pytest.fixture
def daemons(sync_lab):
    return [Daemon(sync_lab, "a"), Daemon(sync_lab, "b")]


def cluster_config(lab: Lab, folder: str) -> "fx.ClusterConfig":
    """The lab's own cluster.toml, narrowed to one folder."""
    text = lab.config_path.read_text()
    assert "[[folders]]" not in text
    text += f'\n[[folders]]\npath = "{folder}"\nrescan_interval_s = 3600\n'
    return fx.ClusterConfig.from_toml(text)


def test_client_reads_the_daemon_and_maps_errors(daemons):
    a, b = daemons
    c = a.client()
    c.ping()
    assert c.my_id() == a.device_id
    assert c.version()["version"].startswith("v")
    assert c.options()["listenAddresses"] == [a.listen]
    assert [d["deviceID"] for d in c.devices()] == [a.device_id]
    with pytest.raises(fx.SyncUnauthorizedError) as e:
        a.client("wrong-key-1618").ping()
    assert "node a" in str(e.value) and "1618" not in str(e.value)
    b.kill()
    with pytest.raises(fx.SyncUnreachableError, match="node b: cannot reach Syncthing"):
        b.client().ping()
    with pytest.raises(fx.SyncError, match="not a Syncthing device ID"):
        c.put_device({"deviceID": "NOPE", "name": "x"})
    assert issubclass(fx.SyncError, fx.FspbxHaError)


def test_pair_apply_wait_files_and_second_apply(sync_lab, daemons):
    a, b = daemons
    for d in daemons:
        assert (d.files / REC.lstrip("/")).is_dir()
    cfg = cluster_config(sync_lab, REC)
    # Through SSH forwards (via_ssh = true), each node's folders under its own folder_root.
    pair = fx.SyncPair.connect(cfg)
    plan = pair.plan()
    assert len(plan) == 4, plan.summaries
    assert plan.sync_addresses == [a.listen, b.listen]
    assert plan.device_ids == [a.device_id, b.device_id]
    # Devices first (A learns B, B learns A), then the folder on each node.
    assert [(s["node"], s["action"]["kind"]) for s in plan.steps] == [
        ("a", "add_device"), ("b", "add_device"), ("a", "add_folder"), ("b", "add_folder")]
    report = pair.apply()
    assert len(report) == 4
    seen = []
    status = pair.wait(timeout_s=60, progress=seen.append)
    assert status.complete and status.connected and seen
    assert status.completion == 100.0
    directions = status.folders[0]["directions"]
    assert [(d["from"], d["to"], d["complete"]) for d in directions] == [("a", "b", True), ("b", "a", True)]

    name = "from python é.wav"
    assert not (b.files / REC.lstrip("/") / name).exists()
    (a.files / REC.lstrip("/") / name).write_bytes(b"py" * 5000)
    pair.wait(timeout_s=60)
    assert (b.files / REC.lstrip("/") / name).read_bytes() == b"py" * 5000

    assert len(pair.apply()) == 0
    assert pair.plan().is_empty()
    status_json = pair.status().to_json()
    assert a.api_key not in status_json and b.api_key not in status_json
    assert json.loads(status_json)["conflicts"][0]["count"] == 0
