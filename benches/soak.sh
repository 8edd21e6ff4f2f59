#!/usr/bin/env bash
# Soak: drive examples/echo_server with the harness's loadgen at many connections
# for a bounded time, then check
#   - zero data errors (every echoed byte verified, no connect failures, no errors),
#   - the server's fd count back to its baseline once the clients have left,
#   - RSS flat between the two halves of the run (second half <= first + 10 % + 2 MiB).
#
# usage: benches/soak.sh [SECONDS=30] [CONNS=1000]
# .ci/run runs a short form: benches/soak.sh 4 1000.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-30}
conns=${2:-1000}
half=$(( (secs + 1) / 2 ))

target=${CARGO_TARGET_DIR:-$root/target}
cd "$root"
# -p greenhub: the server as users build it; across the workspace, io-shim's dev-dependency
# would turn on the monkey feature and route every socket call through the libc hooks.
cargo build --quiet --release -p greenhub --example echo_server
# The load generator is a package of its own in benches/harness: only mio, libc, clap.
CARGO_TARGET_DIR="$target/harness" cargo build --quiet --release \
  --manifest-path "$root/benches/harness/Cargo.toml" -p loadgen
loadgen="$target/harness/release/loadgen"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$target/release/examples/echo_server" --port "$port" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2).close()" 2>/dev/null && break
  sleep 0.05
done
sleep 0.2
fds() { ls "/proc/$pid/fd" | wc -l; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
base_fds=$(fds)

run_half() {
  "$loadgen" --addr "127.0.0.1:$port" --conns "$conns" --size 64 --duration "$half" --warmup 1 \
    --server-pid "$pid" --json
}
check() {
  python3 - "$1" "$conns" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); conns = int(sys.argv[2])
bad = {k: r[k] for k in ("connect_failures", "errors", "mismatches") if r[k]}
if bad or r["connected"] != conns or r["msgs"] == 0:
    sys.exit(f"soak: data errors: {bad} connected={r['connected']}/{conns} msgs={r['msgs']} first_error={r.get('first_error')}")
print(f"  {r['msgs_per_s']:.0f} msgs/s, {r['bytes_verified']} bytes verified, server {r['server_cpu_us_per_msg']} us/msg")
PY
}

echo "soak: echo_server pid $pid on port $port, $conns connections, 2 x ${half}s"
first=$(run_half); check "$first"
rss1=$(rss_kib)
second=$(run_half); check "$second"
rss2=$(rss_kib)
sleep 1 # the clients are gone; the server sees EOF on every connection
end_fds=$(fds)
echo "  fds: baseline $base_fds, after the clients left $end_fds; RSS after each half: ${rss1} KiB, ${rss2} KiB"
if [ "$end_fds" -ne "$base_fds" ]; then
  echo "soak: fd leak: $base_fds -> $end_fds" >&2
  exit 1
fi
limit=$(( rss1 + rss1 / 10 + 2048 ))
if [ "$rss2" -gt "$limit" ]; then
  echo "soak: RSS grew between the halves: $rss1 -> $rss2 KiB" >&2
  exit 1
fi
echo "soak: ok"
