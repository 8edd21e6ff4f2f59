#!/usr/bin/env bash
# Micro benchmarks next to the peers, one run: a switch (two tasks yielding to each other,
# ns per yield) and spawn + join of no-op tasks (ns per task) for greenhub, raw corosensei
# (the floor, no scheduler), may (1 worker), tokio current-thread, std::thread, gevent and
# Go (if installed, GOMAXPROCS=1), all pinned to one CPU; prints a markdown table with
# greenhub ÷ peer ratios and writes benches/results/micro-<time>.{tsv,md}.
#
# usage: bash benches/micro.sh [--repeat R] [--with-go] [--no-pin]
# Installs what it needs as benches/peers.sh does (cargo; gevent venv from PyPI; Go with
# --with-go). The greenhub figures are the same measures as `cargo bench --bench runtime`
# (criterion), here next to the peers in one process so that they share the machine's
# state.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
hdir=$target/harness
venv=${GEVENT_VENV:-$target/gevent-venv}
results=${BENCH_RESULTS:-$root/benches/results}
repeat=3 with_go=0 pin=(taskset -c 1)
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift ;;
    --with-go) with_go=1 ;;
    --no-pin) pin=() ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "micro.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
  esac
  shift
done
[ "$(nproc)" -ge 2 ] || pin=()
CARGO_TARGET_DIR=$hdir cargo build --quiet --release --bin micro \
  --manifest-path "$root/benches/harness/Cargo.toml" || exit 1
if ! "$venv/bin/python" -c 'import gevent' 2>/dev/null; then
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q gevent greenlet; } >&2 \
    || echo "micro.sh: could not install gevent into $venv; gevent is skipped" >&2
fi
if ! command -v go >/dev/null && [ $with_go = 1 ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; } >&2 \
    || echo "micro.sh: could not install Go; go is skipped" >&2
fi
if command -v go >/dev/null; then
  (cd "$root/benches/harness/go/micro" && go build -o "$hdir/go-micro" .) || exit 1
fi

stamp=$(date +%Y%m%d-%H%M%S)
mkdir -p "$results"
tsv=$results/micro-$stamp.tsv
md=$results/micro-$stamp.md
{
  "${pin[@]}" "$hdir/release/micro" --repeat "$repeat"
  if "$venv/bin/python" -c 'import gevent' 2>/dev/null; then
    # gevent is ~50x slower per yield: a tenth of the yields keeps its run short
    "${pin[@]}" "$venv/bin/python" "$root/benches/harness/micro_gevent.py" "$repeat" 100000 100000
  fi
  # (an `if`, not `&&`: without Go the group must still succeed)
  if [ -x "$hdir/go-micro" ]; then "${pin[@]}" "$hdir/go-micro" "$repeat" 1000000 100000; fi
} > "$tsv" || exit 1
{
  echo "micro $stamp — $(nproc) cpus, kernel $(uname -r), pinned: ${pin[*]:-no}, median of $repeat runs"
  echo
  python3 - "$tsv" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    bench, imp, ns = line.split("\t")
    rows.setdefault(bench, {})[imp] = float(ns)
labels = {"switch": "switch: ns per yield", "spawn": "spawn + join: ns per task"}
for bench, d in rows.items():
    g = d.get("greenhub")
    print(f"| {labels.get(bench, bench)} | ns | greenhub ÷ it |")
    print("|---|---|---|")
    for imp, ns in d.items():
        r = g / ns if g and imp != "greenhub" else None
        ratio = "" if r is None else f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"
        print(f"| {imp} | {ns:,.1f} | {ratio} |")
    print()
print("greenhub ÷ it < 1: greenhub takes less time. std-thread spawns a tenth as many.")
PY
} | tee "$md"
echo "results: $tsv  $md" >&2
