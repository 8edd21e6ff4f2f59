#!/usr/bin/env bash
# Instructions per operation of greenhub's hot paths under valgrind (stable on a noisy
# machine, unlike time): a yield (two greenlets ping-ponging), a spawn + join of a
# no-op greenlet (batches of 1,000, warm pools) and an event wake-up between greenlet
# zero and a greenlet (the event bench of `cargo bench`) and a queue hand-off (the
# queue ping-pong bench). Each figure is
# (instructions at 2N − instructions at N) / N, so start-up cancels out.
#
# usage: bash benches/instr.sh [N=20000]      (needs valgrind: apt-get install valgrind)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
hdir=${CARGO_TARGET_DIR:-$root/target}/harness
n=${1:-20000}
command -v valgrind >/dev/null || { echo "instr.sh: valgrind is not installed" >&2; exit 1; }
CARGO_TARGET_DIR=$hdir cargo build --quiet --release --bin instr \
  --manifest-path "$root/benches/harness/Cargo.toml"
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$hdir/release/instr" "$1" "$2" 2>&1 \
    | awk '/Collected :/ { print $4 }'
}
for what in switch spawn event queue; do
  a=$(count "$what" "$n")
  b=$(count "$what" $((2 * n)))
  ops=$n
  [ "$what" = spawn ] || ops=$((2 * n)) # switch: 2N yields per N; event, queue: 2N wake-ups
  echo "$what: $(( (b - a) / ops )) instructions per operation"
done
