#!/usr/bin/env bash
# Peer comparison: greenhub's echo_server side by side with the shared harness's peers
# (hand-written mio, tokio current-thread, may with one worker, gevent, ...) in one run,
# each server pinned to CPU 0 and the load generator to CPU 1.
#
# usage: benches/peers.sh [--repeat R] [--no-pin] [PEER ...]   (default peers: mio-raw tokio-ct may-1 gevent)
#   --no-pin   servers and loadgen share both cores; adds greenhub-2 (echo_server
#              --threads 2) to compare with multi-threaded peers (tokio-mt may-2)
# Results (JSON lines + markdown tables) go to benches/results/; then
# `python3 benches/chart.py` turns the newest run into docs/perf-chart.svg and prints the
# ratio table used in docs/performance.md. cargo test never builds the peers.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bench=${GREENHUB_BENCH:-$root/../shared/bench}
repeat=1
pin=()
peers=()
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift ;;
    --no-pin) pin=(--no-pin) ;;
    *) peers+=("$1") ;;
  esac
  shift
done
[ ${#peers[@]} -gt 0 ] || peers=(mio-raw tokio-ct may-1 gevent)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --release --example echo_server
bash "$bench/setup.sh" >/dev/null
mkdir -p "$root/benches/results"
extra=(--extra "greenhub=$target/release/examples/echo_server --port {port}")
if [ ${#pin[@]} -gt 0 ]; then
  extra+=(--extra "greenhub-2=$target/release/examples/echo_server --port {port} --threads 2")
fi
BENCH_RESULTS="$root/benches/results" bash "$bench/run-peers.sh" --repeat "$repeat" "${pin[@]}" \
  "${extra[@]}" "${peers[@]}"
