"""Fixtures: a real two-node lab started with the project's own `fspbx-ha-lab` binary.

The binaries come from FSPBX_HA_BIN_DIR (scripts/test.sh sets it to target/debug).
"""

import contextlib
import json
import os
import pathlib
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN_DIR = pathlib.Path(os.environ.get("FSPBX_HA_BIN_DIR", ROOT / "target" / "debug"))


def lab_bin() -> str:
    path = BIN_DIR / "fspbx-ha-lab"
    if not path.exists():
        raise RuntimeError(
            f"{path} is missing: build it with `cargo build -p fspbx-ha-lab` "
            "or run scripts/test.sh"
        )
    return str(path)


def cli_bin() -> str:
    return str(BIN_DIR / "fspbx-ha")


class Lab:
    """A running lab: its directory, cluster.toml and topology (lab.json)."""

    def __init__(self, directory: pathlib.Path, extra_args=()):
        self.dir = directory
        self.extra_args = list(extra_args)

    def up(self) -> "Lab":
        subprocess.run(
            [lab_bin(), "up", "--dir", str(self.dir), *self.extra_args],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )
        self.topology = json.loads((self.dir / "lab.json").read_text())
        self.config_path = self.dir / "cluster.toml"
        return self

    def down(self) -> None:
        subprocess.run(
            [lab_bin(), "down", "--dir", str(self.dir)],
            check=False,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )


def psql(node: dict, sql: str) -> str:
    """Runs `sql` as postgres on `node`'s fusionpbx database (a node of lab.json) with the
    node's own psql; stops at the first error. Returns the unaligned output."""
    pg = node["pg"]
    out = subprocess.run(
        [f"{pg['bin_dir']}/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
         "-h", pg["socket_dir"], "-p", str(pg["port"]), "-U", "postgres", "-d", "fusionpbx"],
        input=sql, capture_output=True, text=True, check=True, timeout=120,
    )
    return out.stdout.strip()


def wait_for(node: dict, sql: str, want: str, timeout: float = 10.0) -> None:
    """Polls `sql` on `node` until it prints `want`; AssertionError with the last output after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = psql(node, sql)
        if got == want:
            return
        time.sleep(0.05)
    raise AssertionError(f"{sql!r} printed {got!r}, expected {want!r}")


@contextlib.contextmanager
def replicating_lab(tmp_path_factory, name: str, args=(), *, schema_a: str = "", schema_b: str = ""):
    """A lab of its own (the shared one stays untouched): `schema_a` runs on node A and
    `schema_b` on node B, then replication is set up both ways. Yields the lab with `pair`, its
    connected ReplicationPair; the lab is stopped afterwards, also when setting up fails."""
    import fspbx_ha

    lab = Lab(tmp_path_factory.mktemp(name) / "lab", args).up()
    try:
        a, b = lab.topology["nodes"]
        if schema_a:
            psql(a, schema_a)
        if schema_b:
            psql(b, schema_b)
        lab.pair = fspbx_ha.ReplicationPair.connect(fspbx_ha.ClusterConfig.load(lab.config_path))
        lab.pair.apply(lab.pair.plan())
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    """Node A and node B with PostgreSQL 17 and OpenSSH each."""
    lab = Lab(tmp_path_factory.mktemp("lab") / "lab").up()
    yield lab
    lab.down()


@pytest.fixture(scope="session")
def lab_pg15_replica(tmp_path_factory):
    """Node B runs Debian's PostgreSQL 15 and node A has wal_level=replica: check must fail."""
    lab = Lab(
        tmp_path_factory.mktemp("lab15") / "lab",
        ["--pg-b", "15", "--wal-level-a", "replica"],
    ).up()
    yield lab
    lab.down()
