#!/usr/bin/env python3
"""Echo servers measured at the same time, in interleaved slices: a noise-cancelling A/B.

On a shared VM the cost of the same binary drifts by ±15 % from one 5-second run to the
next (docs/performance.md, ninth pass), so servers measured one after another compare
different minutes of the host. Here every server runs at once (all pinned to CPU 0) with
its own load generator (all pinned to CPU 1), and only one load generator runs at a time:
the others are stopped (SIGSTOP) and their servers sit idle in `epoll_wait`. The running
one changes every `--slice` seconds, round-robin. Each load generator connects alone
first; then the rotation warms all up for `--warmup` seconds and tells them at once
(`loadgen --go-on-stdin`) to open their `--duration`-second windows, so every server is
measured over the same seconds and gets the same share of their noise. Each load
generator measures its own server's CPU per message over its window; the controller
counts the time each one ran inside it (for msgs/s while it ran).

With `--storm N` each load generator makes a connect storm instead (N short connections,
`--storm-concurrency` at once, one message each): the figures are server CPU µs per
connection and connections per second of the time it ran.

A round is one such interleaved run; `--rounds` repeats it with fresh processes, each
round in the order of the last moved by one (use a multiple of the number of servers).
What remains between rounds is mostly each process's own luck: the same binary against
itself spreads ±5 % per round and its median ratio over nine rounds was 1.012, so compare
medians over many rounds and read ±1 % as level. Prints each server's cost
and rate per round, then per-round ratios to the first server and their medians.
Latencies are not reported: a message in flight when its load generator stops takes the
stop into its round trip.

usage: python3 benches/interleave.py [--rounds 3] [--conns 1000] [--duration 30]
           [--warmup 2] [--slice 0.25] [--rate R | --storm N [--storm-concurrency 100]] NAME=CMD ...
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
    servers, gens, procs = [], [], []
    try:
        for name, cmd in specs:
            port = free_port()
            line = cmd.replace("{port}", str(port)) if "{port}" in cmd else "%s %d" % (cmd, port)
            srv = subprocess.Popen(pinned(0, shlex.split(line)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            servers.append(srv)
            if not wait_listening(port, srv):
                sys.exit("interleave.py: %s did not start (%s)" % (name, line))
            gens.append((name, port, srv))
        # Each load generator connects alone, then is stopped; once all are connected
        # the rotation warms them up and tells every one at once to open its window
        # (a line on stdin), so all windows cover the same seconds.
        n = len(gens)
        for name, port, srv in gens:
            argv = [LOADGEN, "--addr", "127.0.0.1:%d" % port, "--size", str(args.size), "--server-pid", str(srv.pid),
                    "--json"]
            if args.storm:
                argv += ["--connect-storm", str(args.storm), "--storm-concurrency", str(args.storm_concurrency),
                         "--duration", "600"]
            else:
                argv += ["--conns", str(args.conns), "--duration", str(args.duration), "--go-on-stdin"]
            if args.rate:
                argv += ["--rate", str(args.rate)]
            # A session of its own: a stopped process in a process group that becomes
            # orphaned (the shell that started this script exits) gets SIGHUP.
            p = subprocess.Popen(pinned(1, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 start_new_session=True)
            procs.append(p)
            if not args.storm:
                line = p.stdout.readline().split()
                if line != ["connected", str(args.conns)]:
                    sys.exit("interleave.py: the load generator of %s connected %s of %d: %s"
                             % (name, line[1:] or "none", args.conns, p.communicate()[0].strip()))
            os.kill(p.pid, signal.SIGSTOP)
        # Round-robin until every load generator has finished; the servers' user and
        # system time over the same span, for the split between the two.
        ticks0 = [cpu_ticks(srv.pid) for _, _, srv in gens]
        go_at = time.monotonic() + (0 if args.storm else args.warmup)
        gone = args.storm
        slices = [[] for _ in range(n)]
        i = 0
        live = set(range(n))
        while live:
            if not gone and time.monotonic() >= go_at:
                for (name, _, _), p in zip(gens, procs):
                    try:
                        p.stdin.write("go\n")
                        p.stdin.close()
                    except BrokenPipeError:
                        sys.exit("interleave.py: the load generator of %s ended before its window (%s): %s"
                                 % (name, p.wait(), p.stdout.read().strip()))
                gone = True
            if i in live:
                p = procs[i]
                t = time.monotonic()
                os.kill(p.pid, signal.SIGCONT)
                time.sleep(args.slice)
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGSTOP)
                else:
                    live.discard(i)
                slices[i].append((t, time.monotonic()))
            i = (i + 1) % n
        ticks1 = [cpu_ticks(srv.pid) for _, _, srv in gens]
        out = []
        for (name, _, _), p, t0, t1, ran in zip(gens, procs, ticks0, ticks1, slices):
            r = json.loads(p.stdout.read())
            p.wait()
            key = "server_cpu_us_per_conn" if args.storm else "server_cpu_us_per_msg"
            if r["errors"] or r["mismatches"] or r["connect_failures"] or r.get("unfinished") or r[key] is None:
                sys.exit("interleave.py: a bad run of %s: %s" % (name, r))
            r["server"] = name
            r["cost_us"] = r[key]
            # Per second of the time it ran: the whole storm, or the echo's window.
            if args.storm:
                active = sum(b - a for a, b in ran)
                r["active_per_s"] = r["completed"] / active
            else:
                w0, w1 = r["window_start_mono_s"], r["window_end_mono_s"]
                active = sum(max(0.0, min(b, w1) - max(a, w0)) for a, b in ran)
                r["active_per_s"] = r["msgs"] / active
            r["active_s"] = active
            user, system = t1[0] - t0[0], t1[1] - t0[1]
            r["server_user_share"] = user / (user + system) if user + system else None
            out.append(r)
        return out
    finally:
        for p in procs:  # only the ones left after a failure (stopped, maybe)
            if p.poll() is None:
                p.kill()
                p.wait()
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
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--rate", type=float)
    ap.add_argument("--storm", type=int)
    ap.add_argument("--storm-concurrency", type=int, default=100)
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
    rate = {n: [] for n in names}
    if args.storm:
        what, unit = "storms of %d connections (%d at once)" % (args.storm, args.storm_concurrency), "µs/conn"
    else:
        what = "c=%d, %g s windows%s" % (args.conns, args.duration,
                                          ", paced at %g msgs/s" % args.rate if args.rate else ", closed loop")
        unit = "µs/msg"
    print("# interleave: %d servers, %s, %g s slices, %d rounds" % (len(specs), what, args.slice, args.rounds))
    with open(path, "w") as f:
        for rnd in range(1, args.rounds + 1):
            # Each round starts and rotates them in another order (a Latin square over
            # rounds), so that no server keeps one place (in a run without it, tokio ct in
            # the first place measured 2 % dearer than itself in the second).
            k = (rnd - 1) % len(specs)
            for r in one_round(specs[k:] + specs[:k], args):
                r["round"] = rnd
                r["slice_s"] = args.slice
                f.write(json.dumps(r) + "\n")
                cpu[r["server"]].append(r["cost_us"])
                rate[r["server"]].append(r["active_per_s"])
                print("round %d %-12s %6.2f %s  %8.0f %s/s while it ran  %4.1f %% of the CPU user"
                      % (rnd, r["server"], r["cost_us"], unit, r["active_per_s"], "conns" if args.storm else "msgs",
                         100 * (r["server_user_share"] or 0)))
            f.flush()
    base = names[0]
    for n in names:
        print("%-12s median %.2f %s (%s)" % (n, statistics.median(cpu[n]), unit, " ".join("%.2f" % c for c in cpu[n])))
    for what, d in (("cost", cpu), ("rate", rate)):
        for n in names[1:]:
            q = [a / b for a, b in zip(d[base], d[n])]
            print("%s %-12s ÷ %s per round: median %.3f (%s)"
                  % (what, base, n, statistics.median(q), " ".join("%.3f" % x for x in q)))
    print("results:", path)


if __name__ == "__main__":
    main()
