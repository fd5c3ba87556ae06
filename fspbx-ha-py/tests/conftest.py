"""Fixtures: a real two-node lab started with the project's own `fspbx-ha-lab` binary.

The binaries come from FSPBX_HA_BIN_DIR (scripts/test.sh sets it to target/debug).
"""

import json
import os
import pathlib
import subprocess

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
