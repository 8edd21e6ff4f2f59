#!/usr/bin/env bash
# Echo servers side by side, self-contained: greenhub's examples/echo_server next to the
# peers in benches/harness (hand-written mio loop, tokio current-thread and multi-thread,
# may with 1 and 2 workers, a thread per connection, gevent, Go), all driven by the
# harness's own load generator in one run.
#
# usage: bash benches/peers.sh [options] [PEER ...]
#   PEER        mio-raw tokio-ct tokio-mt may-1 may-2 std-threads gevent go, or
#               greenhub-16k (the same server with 16 KiB handler stacks, see
#               docs/performance.md) (default: mio-raw tokio-ct may-1 gevent);
#               greenhub always runs
#   --repeat R  R rounds over all servers, interleaved in time; tables show the median
#               and the min–max range
#   --no-pin    servers and loadgen share both cores (default: server on CPU 0,
#               loadgen on CPU 1); adds greenhub-2 (echo_server --threads 2) to compare
#               with the multi-threaded peers (tokio-mt may-2 go)
#   --conns "1 100 1000"  --size 64  --duration 5  --warmup 1
#   --rate R    paced echo: at most R messages per second in all (loadgen --rate), so
#               neither side runs at its limit and CPU per message is the server's own
#               (closed loop by default: at c=1000 both sides saturate, docs/performance.md)
#   --storm 5000  --storm-concurrency 100      (--storm 0 skips the connect storm)
#   --with-go   install Go with apt-get if it is missing (needs root), for the go peer
#   --list      print the known servers
# Installs what it needs: the Rust pieces build with cargo (into $CARGO_TARGET_DIR, or
# target/, under harness/ for the peers); gevent goes into a venv from PyPI
# ($GEVENT_VENV, default <target>/gevent-venv); Go only with --with-go.
# Results: benches/results/peers-<time>.{jsonl,md} (BENCH_RESULTS=DIR elsewhere); then
# `python3 benches/chart.py` turns the newest run into docs/perf-chart.svg and the ratio
# tables of docs/performance.md. cargo test never builds any of this.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
hdir=$target/harness
bin=$hdir/release
venv=${GEVENT_VENV:-$target/gevent-venv}
results=${BENCH_RESULTS:-$root/benches/results}

repeat=1 pin=1 with_go=0 conns="1 100 1000" size=64 duration=5 warmup=1 storm=5000 storm_conc=100 rate=""
peers=()
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift ;;
    --no-pin) pin=0 ;;
    --with-go) with_go=1 ;;
    --conns) conns=$2; shift ;;
    --size) size=$2; shift ;;
    --duration) duration=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --rate) rate=$2; shift ;;
    --storm) storm=$2; shift ;;
    --storm-concurrency) storm_conc=$2; shift ;;
    --list) echo "greenhub greenhub-2 greenhub-16k mio-raw tokio-ct tokio-mt may-1 may-2 std-threads gevent go"; exit 0 ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    -*) echo "peers.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
    *) peers+=("$1") ;;
  esac
  shift
done
[ ${#peers[@]} -gt 0 ] || peers=(mio-raw tokio-ct may-1 gevent)

declare -A cmd=(
  [greenhub]="$target/release/examples/echo_server --port {port}"
  [greenhub-2]="$target/release/examples/echo_server --port {port} --threads 2"
  [greenhub-16k]="$target/release/examples/echo_server --port {port} --stack-size 16384"
  [mio-raw]="$bin/mio-raw {port}"
  [tokio-ct]="$bin/tokio-ct {port}"
  [tokio-mt]="$bin/tokio-mt {port} --workers 2"
  [may-1]="$bin/may-echo {port} --workers 1"
  [may-2]="$bin/may-echo {port} --workers 2"
  [std-threads]="$bin/std-threads {port}"
  [gevent]="$venv/bin/python $root/benches/harness/gevent_echo.py {port}"
  [go]="env GOMAXPROCS=2 $hdir/go-echo {port}"
)
servers=(greenhub)
[ $pin = 0 ] && servers+=(greenhub-2)
for p in "${peers[@]}"; do
  [ -n "${cmd[$p]+x}" ] || { echo "peers.sh: unknown server '$p' (--list)" >&2; exit 64; }
  [ "$p" = greenhub ] || [ "$p" = greenhub-2 ] || servers+=("$p")
done
wants() { local s; for s in "${servers[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

# ---- install and build -----------------------------------------------------------------
cd "$root" || exit 1
# -p greenhub: the server as users build it; across the workspace, io-shim's dev-dependency
# would turn on the monkey feature and route every socket call through the libc hooks.
cargo build --quiet --release -p greenhub --example echo_server || exit 1
CARGO_TARGET_DIR=$hdir cargo build --quiet --release --workspace --bins \
  --manifest-path "$root/benches/harness/Cargo.toml" || exit 1
if wants gevent && ! "$venv/bin/python" -c 'import gevent' 2>/dev/null; then
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q gevent greenlet; } >&2 \
    || echo "peers.sh: could not install gevent into $venv; gevent is skipped" >&2
fi
if wants go; then
  if ! command -v go >/dev/null && [ $with_go = 1 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; } >&2 \
      || echo "peers.sh: could not install Go; go is skipped" >&2
  fi
  if command -v go >/dev/null; then
    (cd "$root/benches/harness/go" && GOFLAGS=-mod=mod go build -o "$hdir/go-echo" .) || exit 1
  fi
fi

# ---- run ---------------------------------------------------------------------------------
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
srv_pin=() lg_pin=()
if [ $pin = 1 ] && [ "$(nproc)" -ge 2 ]; then srv_pin=(taskset -c 0); lg_pin=(taskset -c 1); else pin=0; fi
stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$results"
out=$results/peers-$stamp.jsonl
md=$results/peers-$stamp.md
logs=$(mktemp -d /tmp/greenhub-peers.XXXXXX)
: > "$out"

spid=""
# shellcheck source=benches/server.sh
. "$root/benches/server.sh"
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
fail() {
  echo "{\"server\":\"$1\",\"round\":$2,\"mode\":\"fail\",\"what\":\"$3\"}" >> "$out"
  echo "   FAIL $1: $3" >&2
}
# one loadgen run; its JSON line gets the server, round and pin prepended
measure() {
  local name=$1 round=$2 limit=$3 line rc
  shift 3
  line=$(timeout "$limit" "${lg_pin[@]}" "$bin/loadgen" --addr "127.0.0.1:$port" --json "$@")
  rc=$?
  if [[ "$line" == "{"* ]]; then
    echo "{\"server\":\"$name\",\"round\":$round,\"pin\":$pin,\"rc\":$rc,${line#\{}" >> "$out"
    echo "$line" | python3 -c 'import json,sys; r=json.load(sys.stdin)
if r["mode"] == "echo": print("   c=%(conns)s: %(msgs_per_s).0f msg/s, p99 %(p99_us).0f us, srv cpu %(server_cpu_us_per_msg)s us/msg (lg cpu %(loadgen_cpu_pct)s%%), errors %(errors)s mismatches %(mismatches)s conn fail %(connect_failures)s" % r)
else: print("   storm: %(conns_per_s).0f conn/s (%(completed)s/%(total)s), p99 %(p99_us).0f us, errors %(errors)s mismatches %(mismatches)s conn fail %(connect_failures)s" % r)' >&2
  else
    fail "$name" "$round" "loadgen $* exited $rc"
  fi
}

echo "# peers $stamp: $(nproc) cpus, $(uname -r), pin=$pin, conns=[$conns] size=$size ${duration}s (+${warmup}s warm-up), storm $storm/$storm_conc, repeat $repeat${rate:+, paced at $rate msgs/s}" >&2
for round in $(seq "$repeat"); do
  for name in "${servers[@]}"; do
    case $name in
      gevent) "$venv/bin/python" -c 'import gevent' 2>/dev/null || { fail gevent "$round" "gevent not installed"; continue; } ;;
      go) [ -x "$hdir/go-echo" ] || { fail go "$round" "go not installed (--with-go)"; continue; } ;;
    esac
    port=$(free_port)
    line=${cmd[$name]//\{port\}/$port}
    echo "== round $round/$repeat: $name" >&2
    "${srv_pin[@]}" bash -c "exec $line" > "$logs/$name.log" 2>&1 &
    spid=$!
    up=0
    for _ in $(seq 150); do
      kill -0 "$spid" 2>/dev/null || break
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
      sleep 0.1
    done
    if [ $up = 0 ]; then
      fail "$name" "$round" "did not start: $(tail -c 200 "$logs/$name.log" | tr '\n"' ' _')"
      stop_server; continue
    fi
    sleep 0.2
    for c in $conns; do
      measure "$name" "$round" "$(awk "BEGIN { print int($warmup + $duration + 60) }")" --conns "$c" --size "$size" \
        --duration "$duration" --warmup "$warmup" --server-pid "$spid" ${rate:+--rate "$rate"}
      kill -0 "$spid" 2>/dev/null || { fail "$name" "$round" "server died at c=$c"; break; }
    done
    if [ "$storm" -gt 0 ] && kill -0 "$spid" 2>/dev/null; then
      measure "$name" "$round" 90 --connect-storm "$storm" --storm-concurrency "$storm_conc" --server-pid "$spid" \
        --size "$size" --duration 60
    fi
    stop_server
    sleep 1
  done
done
trap - EXIT

{
  echo "peers $stamp — $(nproc) cpus, kernel $(uname -r), pin=$pin, repeat=$repeat (median, min–max), ${size} B, ${duration} s after ${warmup} s warm-up, storm $storm conns ($storm_conc at once)${rate:+, echo paced at $rate msgs/s}"
  echo
  python3 "$root/benches/chart.py" "$out" --no-svg
} | tee "$md"
echo "results: $out  $md  (server logs: $logs)" >&2
