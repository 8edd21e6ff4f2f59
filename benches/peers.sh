#!/usr/bin/env bash
# Peer comparison: greenhub's echo_server side by side with the shared harness's peers
# (hand-written mio, tokio current-thread, may with one worker, gevent, ...) in one run,
# each server pinned to CPU 0 and the load generator to CPU 1.
#
# usage: benches/peers.sh [--repeat R] [PEER ...]     (default peers: mio-raw tokio-ct may-1 gevent)
# Results (JSON lines + markdown tables) go to benches/results/; then
# `python3 benches/chart.py` turns the newest run into docs/perf-chart.svg and prints the
# ratio table used in docs/performance.md. cargo test never builds the peers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bench=${GREENHUB_BENCH:-$root/../shared/bench}
repeat=1
peers=()
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift ;;
    *) peers+=("$1") ;;
  esac
  shift
done
[ ${#peers[@]} -gt 0 ] || peers=(mio-raw tokio-ct may-1 gevent)
cd "$root"
cargo build --quiet --release --example echo_server
bash "$bench/setup.sh" >/dev/null
mkdir -p "$root/benches/results"
BENCH_RESULTS="$root/benches/results" bash "$bench/run-peers.sh" --repeat "$repeat" \
  --extra "greenhub=$root/target/release/examples/echo_server --port {port}" "${peers[@]}"
