#!/usr/bin/env bash
# The whole test suite, Rust and Python, against real servers the lab starts by itself.
# Installs what is missing first (idempotent). `.ci/run` calls this unchanged.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.cache/venv"

step() { printf '\n==> %s\n' "$*"; }

step "installing what the tests need (idempotent)"
bash scripts/install.sh

step "format and lints"
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -q -- -D warnings

step "Rust tests (unit, integration against the lab, doc tests)"
cargo test --locked --workspace --no-fail-fast

step "Python module: build the wheel and install it in $VENV"
rm -rf target/wheels
"$VENV/bin/maturin" build --locked -q -m fspbx-ha-py/Cargo.toml -o target/wheels
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps target/wheels/fspbx_ha-*.whl

step "Python tests"
cargo build --locked -q -p fspbx-ha-lab -p fspbx-ha-cli
export FSPBX_HA_BIN_DIR="$ROOT/target/debug"
set +e
"$VENV/bin/python" -m pytest -q fspbx-ha-py/tests
rc=$?
set -e
# pytest's 5 means no test was collected: that is a failure here, never a pass.
if [ $rc -ne 0 ]; then
  echo "pytest failed with exit code $rc" >&2
  exit $rc
fi
step "all tests passed"
