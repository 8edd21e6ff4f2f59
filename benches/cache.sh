#!/usr/bin/env bash
# Instructions and simulated cache misses per echo message, server by server, under
# cachegrind: what a paced echo at many connections costs beyond its syscalls, counted
# instead of timed (stable on a noisy machine). Each server runs twice under the same
# paced load, for D and 2D seconds; a figure is (count at 2D − count at D) divided by
# (messages at 2D − messages at D), so start-up and the connection set-up cancel out.
# The cache model is a 48 KiB 12-way L1d, 64 KiB L1i and a 2 MiB last level, 64-byte lines.
# With --tlb the same simulator counts pages instead: "lines" of 4 KiB in a 64-entry fully
# associative L1 and a 2,048-entry 16-way L2 (AMD Zen's data TLBs; its L2 is unified, as
# cachegrind's last level is), so the columns are data TLB misses per message in each.
#
# usage: bash benches/cache.sh [--conns 1000] [--rate 1500] [--duration 6] [--tlb] [SERVER ...]
#   SERVER   greenhub tokio-ct mio-raw (default: all three); server on CPU 0, loadgen on CPU 1
# (needs valgrind: apt-get install valgrind; the rate is low because the server runs
# some 50 times slower under valgrind)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/harness/release
conns=1000 rate=1500 duration=6 servers=()
model=(--D1=49152,12,64 --I1=65536,8,64 --LL=2097152,16,64) l1=L1d l2=LL
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) conns=$2; shift ;;
    --rate) rate=$2; shift ;;
    --duration) duration=$2; shift ;;
    --tlb) model=(--D1=262144,64,4096 --I1=65536,8,64 --LL=8388608,16,4096) l1="L1 dTLB" l2="L2 TLB" ;;
    -*) echo "cache.sh: unknown option $1" >&2; exit 64 ;;
    *) servers+=("$1") ;;
  esac
  shift
done
[ ${#servers[@]} -gt 0 ] || servers=(greenhub tokio-ct mio-raw)
command -v valgrind >/dev/null || { echo "cache.sh: valgrind is not installed" >&2; exit 1; }
declare -A cmd=(
  [greenhub]="$target/release/examples/echo_server --port {port}"
  [tokio-ct]="$bin/tokio-ct {port}"
  [mio-raw]="$bin/mio-raw {port}"
)
for s in "${servers[@]}"; do
  [ -n "${cmd[$s]+x}" ] || { echo "cache.sh: unknown server '$s'" >&2; exit 64; }
done
cd "$root" || exit 1
# -p greenhub: the server as users build it; across the workspace, io-shim's dev-dependency
# would turn on the monkey feature and route every socket call through the libc hooks.
cargo build --quiet --release -p greenhub --example echo_server || exit 1
CARGO_TARGET_DIR=$target/harness cargo build --quiet --release --workspace --bins \
  --manifest-path benches/harness/Cargo.toml || exit 1
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
tmp=$(mktemp -d /tmp/greenhub-cache.XXXXXX)
spid=""
# shellcheck source=benches/server.sh
. "$root/benches/server.sh"
trap 'stop_server 100; rm -rf "$tmp"' EXIT

# one run: prints "messages Ir D1-misses LL-misses" (data reads + writes for the misses)
run() {
  local name=$1 secs=$2 port line
  rm -f "$tmp/cg.out"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # shellcheck disable=SC2086
  taskset -c 0 valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file="$tmp/cg.out" \
    "${model[@]}" ${cmd[$name]//\{port\}/$port} \
    >"$tmp/server.log" 2>&1 &
  spid=$!
  for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  line=$(taskset -c 1 "$bin/loadgen" --addr "127.0.0.1:$port" --conns "$conns" --duration "$secs" \
    --warmup 0 --rate "$rate" --json)
  stop_server 100
  [ -n "$line" ] || { echo "cache.sh: the load generator failed against $name" >&2; return 1; }
  [ -s "$tmp/cg.out" ] || { echo "cache.sh: $name wrote no cachegrind output:" >&2; tail -5 "$tmp/server.log" >&2; return 1; }
  echo "$line" | python3 -c '
import json, sys
r = json.load(sys.stdin)
if r["errors"] or r["mismatches"] or r["connect_failures"]:
    sys.exit("cache.sh: errors in the run: %s" % r)
ev = summary = None
for l in open(sys.argv[1]):
    if l.startswith("events:"): ev = l.split()[1:]
    if l.startswith("summary:"): summary = [int(x) for x in l.split()[1:]]
c = dict(zip(ev, summary))
print(r["msgs"], c["Ir"], c["D1mr"] + c["D1mw"], c["DLmr"] + c["DLmw"])' "$tmp/cg.out"
}

echo "| server | instructions/msg | $l1 misses/msg | $l2 misses/msg | messages |"
echo "|---|---|---|---|---|"
for s in "${servers[@]}"; do
  a=$(run "$s" "$duration") || exit 1
  b=$(run "$s" $((2 * duration))) || exit 1
  python3 - "$s" $a $b <<'EOF'
import sys
name, (m1, i1, d1, l1, m2, i2, d2, l2) = sys.argv[1], map(int, sys.argv[2:])
n = m2 - m1
print("| %s | %.0f | %.2f | %.2f | %d |" % (name, (i2 - i1) / n, (d2 - d1) / n, (l2 - l1) / n, n))
EOF
done
