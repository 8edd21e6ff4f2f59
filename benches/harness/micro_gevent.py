"""gevent's side of benches/micro.sh: switch (two greenlets each `gevent.sleep(0)` N
times; ns per yield) and spawn (N no-op greenlets spawned, then joinall; ns per task).
Prints BENCH<TAB>IMPL<TAB>NS lines, medians of REPEAT runs after a warm-up run.

usage: python micro_gevent.py [REPEAT] [YIELDS] [SPAWNS]
"""
import statistics
import sys
import time

import gevent


def per_op(ops, f):
    t = time.perf_counter()
    f()
    return (time.perf_counter() - t) * 1e9 / ops


def switch(n):
    def body():
        for _ in range(n):
            gevent.sleep(0)
    return per_op(2 * n, lambda: gevent.joinall([gevent.spawn(body), gevent.spawn(body)]))


def spawn(n):
    return per_op(n, lambda: gevent.joinall([gevent.spawn(lambda: None) for _ in range(n)]))


def main():
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    yields = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    spawns = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    switch(yields), spawn(spawns)  # warm-up, as the Rust side does
    sw = [switch(yields) for _ in range(repeat)]
    sp = [spawn(spawns) for _ in range(repeat)]
    print("switch\tgevent\t%.1f" % statistics.median(sw))
    print("spawn\tgevent\t%.1f" % statistics.median(sp))


if __name__ == "__main__":
    main()
