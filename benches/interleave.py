#!/usr/bin/env python3
"""Echo servers measured at the same time, in interleaved slices: a noise-cancelling A/B.

On a shared VM the cost of the same binary drifts by ±15 % from one 5-second run to the
next (docs/performance.md, eighth pass), so servers measured one after another compare
different minutes of the host. Here every server runs at once (all pinned to CPU 0) with
its own load generator (all pinned to CPU 1), and only one load generator runs at a time:
the others are stopped (SIGSTOP) and their servers sit idle in `epoll_wait`. The running
one changes every `--slice` seconds, round-robin, so over a round each server gets the
same share of every second of the host's noise. Each load generator measures its own
server's CPU per message over its window, which spans the whole round.

A round is one such interleaved run; `--rounds` repeats it with fresh processes. Prints
each server's CPU µs per message and active msgs/s per round, then per-round ratios to
the first server and their median. Latencies are not reported: a message in flight when
its load generator stops takes the stop into its round trip.

usage: python3 benches/interleave.py [--rounds 3] [--conns 1000] [--duration 30]
           [--slice 0.25] [--rate R] NAME=CMD [NAME=CMD ...]
  CMD      a server command line; `{port}` is replaced by a free port, else the port is
           appended (the harness's peers and examples/echo_server take it as argument)
  --rate R paced: R msgs/s in all while a server's load generator runs (after a stop it
           resumes its schedule from the resume, see loadgen's `--rate`); default closed loop
  e.g.     python3 benches/interleave.py greenhub=target/release/examples/echo_server \\
               tokio-ct=target/harness/release/tokio-ct mio-raw=target/harness/release/mio-raw
Builds nothing: build the servers and the load generator first (peers.sh builds all).
Results: benches/results/interleave-<time>.jsonl (BENCH_RESULTS=DIR elsewhere).
"""

import argparse
import json
import os
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
LOADGEN = os.path.join(TARGET, "harness", "release", "loadgen")
SETUP_S = 2.0  # each load generator runs alone this long first: it connects everything


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, limit=15.0):
    end = time.monotonic() + limit
    while time.monotonic() < end and proc.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def cpu_ticks(pid):
    """(user, system) clock ticks process `pid` has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def pinned(cpu, argv):
    return ["taskset", "-c", str(cpu)] + argv if os.cpu_count() >= 2 else argv


def one_round(specs, args):
    """Runs every server at once, their load generators in turn; one JSON dict each."""
    servers, gens = [], []
    try:
        for name, cmd in specs:
            port = free_port()
            line = cmd.replace("{port}", str(port)) if "{port}" in cmd else "%s %d" % (cmd, port)
            srv = subprocess.Popen(pinned(0, shlex.split(line)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            servers.append(srv)
            if not wait_listening(port, srv):
                sys.exit("interleave.py: %s did not start (%s)" % (name, line))
            gens.append((name, port, srv))
        # The windows: every load generator warms up until all are set up and a full
        # rotation has passed, then measures for `duration` seconds of wall time.
        n = len(gens)
        warmup = SETUP_S * n + args.slice * n + 1.0
        procs = []
        for i, (name, port, srv) in enumerate(gens):
            argv = [LOADGEN, "--addr", "127.0.0.1:%d" % port, "--conns", str(args.conns), "--size", str(args.size),
                    "--duration", str(args.duration), "--warmup", str(warmup - SETUP_S * i),
                    "--server-pid", str(srv.pid), "--json"]
            if args.rate:
                argv += ["--rate", str(args.rate)]
            p = subprocess.Popen(pinned(1, argv), stdout=subprocess.PIPE, text=True)
            procs.append(p)
            time.sleep(SETUP_S)
            os.kill(p.pid, signal.SIGSTOP)
        # Round-robin until every load generator has finished its window; the servers'
        # user and system time over the same span, for the split between the two.
        ticks0 = [cpu_ticks(srv.pid) for _, _, srv in gens]
        i = 0
        live = set(range(n))
        while live:
            if i in live:
                p = procs[i]
                os.kill(p.pid, signal.SIGCONT)
                time.sleep(args.slice)
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGSTOP)
                else:
                    live.discard(i)
            i = (i + 1) % n
        ticks1 = [cpu_ticks(srv.pid) for _, _, srv in gens]
        out = []
        for (name, _, _), p, t0, t1 in zip(gens, procs, ticks0, ticks1):
            text = p.communicate()[0]
            r = json.loads(text)
            if r["errors"] or r["mismatches"] or r["connect_failures"] or r["server_cpu_us_per_msg"] is None:
                sys.exit("interleave.py: a bad run of %s: %s" % (name, r))
            r["server"] = name
            user, system = t1[0] - t0[0], t1[1] - t0[1]
            r["server_user_share"] = user / (user + system) if user + system else None
            out.append(r)
        return out
    finally:
        for srv in servers:
            srv.terminate()
        for srv in servers:
            try:
                srv.wait(5)
            except subprocess.TimeoutExpired:
                srv.kill()
                srv.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--slice", type=float, default=0.25)
    ap.add_argument("--rate", type=float)
    ap.add_argument("specs", nargs="+", metavar="NAME=CMD")
    args = ap.parse_args()
    specs = []
    for s in args.specs:
        if "=" not in s:
            ap.error("'%s' is not NAME=CMD" % s)
        specs.append(tuple(s.split("=", 1)))
    if not os.access(LOADGEN, os.X_OK):
        sys.exit("interleave.py: build the load generator first (%s)" % LOADGEN)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    results = os.environ.get("BENCH_RESULTS", os.path.join(ROOT, "benches", "results"))
    os.makedirs(results, exist_ok=True)
    path = os.path.join(results, "interleave-%s.jsonl" % time.strftime("%Y%m%d-%H%M%S"))
    names = [n for n, _ in specs]
    cpu = {n: [] for n in names}
    print("# interleave: %d servers, c=%d, %g s windows in %g s slices%s, %d rounds"
          % (len(specs), args.conns, args.duration, args.slice,
             ", paced at %g msgs/s" % args.rate if args.rate else ", closed loop", args.rounds))
    with open(path, "w") as f:
        for rnd in range(1, args.rounds + 1):
            for r in one_round(specs, args):
                r["round"] = rnd
                r["slice_s"] = args.slice
                f.write(json.dumps(r) + "\n")
                cpu[r["server"]].append(r["server_cpu_us_per_msg"])
                # active msgs/s: the window's messages over the share of it this one ran
                active = r["msgs_per_s"] * len(specs)
                print("round %d %-12s %6.2f µs/msg  %8.0f msgs/s active  server cpu %5.1f %%, %4.1f %% of it user"
                      % (rnd, r["server"], r["server_cpu_us_per_msg"], active, r["server_cpu_pct"] * len(specs),
                         100 * (r["server_user_share"] or 0)))
            f.flush()
    base = names[0]
    for n in names:
        print("%-12s median %.2f µs/msg (%s)" % (n, statistics.median(cpu[n]), " ".join("%.2f" % c for c in cpu[n])))
    for n in names[1:]:
        q = [b / a for a, b in zip(cpu[base], cpu[n])]
        print("%-12s ÷ %s per round: median %.3f (%s)" % (base, n, statistics.median([1 / x for x in q]),
                                                          " ".join("%.3f" % (1 / x) for x in q)))
    print("results:", path)


if __name__ == "__main__":
    main()
