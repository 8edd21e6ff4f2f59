#!/usr/bin/env bash
# Alternating paced echo rounds for an A/B comparison of servers on this noisy machine:
# each round runs every server once, in order, under the same paced load, so a per-round
# ratio compares servers that saw the same minute of the machine. Prints one line per
# server and round (server CPU µs per message, msgs/s, p99 µs), then the medians and each
# server's per-round ratio to the first one (< 1: cheaper than the first).
#
# usage: bash benches/ab.sh ROUNDS CONNS RATE NAME=CMD [NAME=CMD ...]
#   CMD     a server command line; `{port}` is replaced by a free port, else the port is
#           appended (the harness's peers and examples/echo_server take it as argument)
#   e.g.    bash benches/ab.sh 8 5000 70000 base=target/release/examples/echo_server \
#             "s16=target/release/examples/echo_server --stack-size 16384" \
#             tokio=target/harness/release/tokio-ct
# Server on CPU 0, loadgen on CPU 1, 5 s after 1 s warm-up per run. Builds nothing but
# the load generator: build the servers first (peers.sh builds all of them).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
[ $# -ge 4 ] || { sed -n '2,15p' "$0" >&2; exit 64; }
rounds=$1 conns=$2 rate=$3
shift 3
for spec in "$@"; do
  [[ "$spec" == *=* ]] || { echo "ab.sh: '$spec' is not NAME=CMD" >&2; exit 64; }
done
CARGO_TARGET_DIR=$target/harness cargo build --quiet --release -p loadgen \
  --manifest-path "$root/benches/harness/Cargo.toml" || exit 1
lg=$target/harness/release/loadgen
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
out=$(mktemp /tmp/greenhub-ab.XXXXXX)
spid=""
# shellcheck source=benches/server.sh
. "$root/benches/server.sh"
trap 'stop_server; rm -f "$out"' EXIT
trap 'stop_server; exit 130' INT TERM

for r in $(seq "$rounds"); do
  for spec in "$@"; do
    name=${spec%%=*} cmdline=${spec#*=}
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if [[ "$cmdline" == *"{port}"* ]]; then cmdline=${cmdline//\{port\}/$port}; else cmdline="$cmdline $port"; fi
    # shellcheck disable=SC2086
    taskset -c 0 $cmdline >/dev/null 2>&1 &
    spid=$!
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    line=$(timeout 60 taskset -c 1 "$lg" --addr "127.0.0.1:$port" --conns "$conns" --duration 5 \
      --warmup 1 --rate "$rate" --server-pid "$spid" --json)
    stop_server
    [[ "$line" == "{"* ]] || { echo "ab.sh: the load generator failed against $name ($cmdline)" >&2; exit 1; }
    echo "$line" | python3 -c '
import json, sys
r = json.load(sys.stdin)
if r["errors"] or r["mismatches"] or r["connect_failures"] or r["server_cpu_us_per_msg"] is None:
    sys.exit("ab.sh: a bad run of %s: %s" % (sys.argv[2], r))
print(sys.argv[1], sys.argv[2], r["server_cpu_us_per_msg"], round(r["msgs_per_s"]), round(r["p99_us"]))' \
      "$r" "$name" | tee -a "$out" || exit 1
  done
done
python3 - "$out" <<'EOF'
import collections, statistics, sys
cpu = collections.defaultdict(dict)
for l in open(sys.argv[1]):
    r, name, c = l.split()[:3]
    cpu[name][int(r)] = float(c)
names = list(cpu)
for n in names:
    print("%-12s median %.3f µs/msg over %d rounds" % (n, statistics.median(cpu[n].values()), len(cpu[n])))
base = names[0]
for n in names[1:]:
    q = [cpu[n][k] / cpu[base][k] for k in cpu[base] if k in cpu[n]]
    print("%-12s ÷ %s per round: median %.3f, cheaper in %d of %d" % (n, base, statistics.median(q), sum(x < 1 for x in q), len(q)))
EOF
