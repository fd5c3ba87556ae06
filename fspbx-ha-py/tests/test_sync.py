"""Syncthing from Python: the typed client and the pair, against two real Syncthing daemons
(node A on 127.0.0.2, node B on 127.0.0.3) started here as LAB.md describes.

The fixture runs the daemons itself because `fspbx-ha-lab up` does not start Syncthing yet; it
follows the same recipe as fspbx-ha-lab's Rust `syncthing` module.
"""

import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from fspbx_ha import _native as fx

SYNCTHING = os.environ.get("FSPBX_HA_LAB_SYNCTHING", "/usr/bin/syncthing")
REC = "/var/lib/freeswitch/recordings"


def free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, root: pathlib.Path, name: str, ip: str):
        self.name, self.ip = name, ip
        self.home, self.data = root / "home", root / "data"
        self.data.mkdir(parents=True)
        env = dict(os.environ, STNODEFAULTFOLDER="1", STNOUPGRADE="1", STNORESTART="1", HOME=str(root))
        self.env = env
        subprocess.run([SYNCTHING, "generate", f"--home={self.home}", "--no-default-folder"],
                       check=True, env=env, capture_output=True)
        cfg = self.home / "config.xml"
        tree = ET.parse(cfg)
        root_el = tree.getroot()
        self.device_id = root_el.find("device").get("id")
        root_el.find("device").set("name", f"lab-{name}")
        gui = root_el.find("gui")
        self.gui = f"{ip}:{free_port(ip)}"
        gui.find("address").text = self.gui
        self.api_key = gui.find("apikey").text
        opts = root_el.find("options")
        for la in opts.findall("listenAddress"):
            opts.remove(la)
        self.listen = f"tcp://{ip}:{free_port(ip)}"
        ET.SubElement(opts, "listenAddress").text = self.listen
        for tag, value in [("globalAnnounceEnabled", "false"), ("localAnnounceEnabled", "false"),
                           ("relaysEnabled", "false"), ("natEnabled", "false"),
                           ("crashReportingEnabled", "false"), ("announceLANAddresses", "false"),
                           ("startBrowser", "false"), ("urAccepted", "-1"), ("autoUpgradeIntervalH", "0")]:
            opts.find(tag).text = value
        tree.write(cfg)
        self.key_file = root / "api_key"
        self.key_file.write_text(self.api_key)
        self.key_file.chmod(0o600)
        self.log = open(root / "syncthing.log", "ab")
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [SYNCTHING, "serve", f"--home={self.home}", "--no-browser", "--no-restart",
             "--no-upgrade", "--no-default-folder", "--skip-port-probing"],
            env=self.env, stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                req = urllib.request.Request(f"http://{self.gui}/rest/system/ping",
                                             headers={"X-API-Key": self.api_key})
                if b"pong" in urllib.request.urlopen(req, timeout=1).read():
                    return
            except OSError:
                pass
            assert self.proc.poll() is None, f"syncthing {self.name} exited"
            assert time.monotonic() < deadline, f"syncthing {self.name} not ready"
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    @property
    def url(self) -> str:
        return f"http://{self.gui}"

    def client(self, key=None) -> "fx.SyncthingClient":
        return fx.SyncthingClient(self.name, self.url, key or self.api_key)


@pytest.fixture
def daemons(tmp_path):
    started = []
    try:
        for name, ip in (("a", "127.0.0.2"), ("b", "127.0.0.3")):
            started.append(Daemon(tmp_path / name, name, ip))
        yield started
    finally:
        for d in started:
            d.stop()


def cluster_config(a: Daemon, b: Daemon, folder: str) -> "fx.ClusterConfig":
    text = fx.ClusterConfig.template()
    text = text.replace('addresses = ["192.0.2.10"]', 'addresses = ["127.0.0.2"]')
    text = text.replace('addresses = ["192.0.2.20"]', 'addresses = ["127.0.0.3"]')
    text = text.replace(
        'url = "http://127.0.0.1:8384"           # GUI/REST address on the node\n'
        'api_key = "env:FSPBX_HA_SYNCTHING_KEY_A"\nvia_ssh = true',
        f'url = "{a.url}"\napi_key = "file:{a.key_file}"\nvia_ssh = false')
    text = text.replace('api_key = "env:FSPBX_HA_SYNCTHING_KEY_B"',
                        f'url = "{b.url}"\napi_key = "file:{b.key_file}"\nvia_ssh = false')
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
    b.stop()
    with pytest.raises(fx.SyncUnreachableError, match="node b: cannot reach Syncthing"):
        b.client().ping()
    with pytest.raises(fx.SyncError, match="not a Syncthing device ID"):
        c.put_device({"deviceID": "NOPE", "name": "x"})
    assert issubclass(fx.SyncError, fx.FspbxHaError)


def test_pair_apply_wait_files_and_second_apply(daemons):
    a, b = daemons
    for d in daemons:
        (d.data / REC.lstrip("/")).mkdir(parents=True)
    cfg = cluster_config(a, b, REC)
    pair = fx.SyncPair.connect(cfg, ssh=False, path_prefix=(str(a.data), str(b.data)))
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

    (a.data / REC.lstrip("/") / "from python é.wav").write_bytes(b"py" * 5000)
    pair.wait(timeout_s=60)
    assert (b.data / REC.lstrip("/") / "from python é.wav").read_bytes() == b"py" * 5000

    assert len(pair.apply()) == 0
    assert pair.plan().is_empty()
    assert a.api_key not in pair.status().to_json()
