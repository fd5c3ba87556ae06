#!/usr/bin/env bash
# The main job on the bundled lab: install what is missing, build, start the two-node lab
# (node A 127.0.0.2, node B 127.0.0.3: PostgreSQL 17 and OpenSSH each) and run
# `fspbx-ha check` against it. The lab keeps running afterwards; the last line says how to stop
# it. Safe to run again: a running lab is reused.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LAB_DIR="${FSPBX_HA_LAB_DIR:-$ROOT/lab}"

step() { printf '\n==> %s\n' "$*"; }

step "installing what the lab needs (idempotent)"
bash scripts/install.sh

step "building fspbx-ha and the lab"
cargo build --locked -q -p fspbx-ha-cli -p fspbx-ha-lab
BIN="$ROOT/target/debug"

step "starting the two-node lab in $LAB_DIR"
"$BIN/fspbx-ha-lab" up --dir "$LAB_DIR"

CONFIG="$LAB_DIR/cluster.toml"
ha() { "$BIN/fspbx-ha" --config "$CONFIG" "$@"; }

step "fspbx-ha dns apply (node records and the floating record on the lab's Knot, RFC 2136 + TSIG)"
ha dns apply
ha dns verify >/dev/null

step "fspbx-ha check (preflight of both nodes, and the three DNS names at both servers)"
ha check

step "fspbx-ha replication apply (bi-directional logical replication; re-runs change nothing)"
ha replication apply
step "fspbx-ha replication apply, again: nothing left to do"
ha replication apply 2>/dev/null

step "fspbx-ha replication status"
ha replication status

step "fspbx-ha sync apply (pair the Syncthing daemons through SSH; FS PBX's five media folders)"
ha sync apply
ha sync wait --timeout 120s

step "fspbx-ha dns show"
ha dns show

step "fspbx-ha status (the pair at a glance)"
ha status

step "failover: the controller watches both nodes; node A dies (SIGKILL of all its processes)"
ha failover watch --run-for 12s > "$LAB_DIR/watch.log" 2>&1 &
watch_pid=$!
sleep 3
"$BIN/fspbx-ha-lab" kill --dir "$LAB_DIR" --node a
wait "$watch_pid"
ha failover status -n 12

step "after the failover: the floating record points at node B on every authoritative server"
ha dns show
if ! ha --json dns show | grep -q '"active_node": "b"'; then
  echo "the floating record did not move to node B: see $LAB_DIR/watch.log" >&2
  exit 1
fi

echo
echo "Node A was killed on purpose; node B now serves pbx.example.test."
echo "The lab is still running. Configuration: $LAB_DIR/cluster.toml"
echo "Try: $BIN/fspbx-ha --config $LAB_DIR/cluster.toml status"
echo "Stop it with: $BIN/fspbx-ha-lab down --dir $LAB_DIR"
