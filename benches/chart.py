#!/usr/bin/env python3
"""Turn a peers run (benches/results/peers-*.jsonl) into ratio tables and an SVG chart.

usage: python3 benches/chart.py [RESULTS.jsonl] [--svg docs/perf-chart.svg | --no-svg] [--base NAME]

Without a file it takes the newest benches/results/peers-*.jsonl. It prints markdown
tables (every server's median and min–max over rounds with p99 latency, the storm's
server CPU per connection and data errors; then greenhub's value and greenhub/peer
ratios) and writes a grouped bar chart of msgs/s (c=1, 100, 1000) and connect-storm
conns/s. `--base greenhub-2` puts the 2-hub server (a `--no-pin` run) in greenhub's
place. No dependencies.
"""
import glob
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(path):
    runs = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("mode") == "fail":
                continue  # listed by raw_table
            s = r["server"]
            d = runs.setdefault(s, {})
            if r.get("mode") == "storm":
                d.setdefault("storm", []).append(r.get("conns_per_s") or 0.0)
                if r.get("server_cpu_us_per_conn") is not None:
                    d.setdefault("storm_cpu", []).append(r["server_cpu_us_per_conn"])
            else:
                c = r["conns"]
                d.setdefault(("msgs", c), []).append(r.get("msgs_per_s") or 0.0)
                if r.get("server_cpu_us_per_msg") is not None:
                    d.setdefault(("cpu", c), []).append(r["server_cpu_us_per_msg"])
                d.setdefault(("errors", c), []).append(
                    (r.get("errors") or 0) + (r.get("mismatches") or 0) + (r.get("connect_failures") or 0))
    return {s: {k: statistics.median(v) if k[0] != "errors" else max(v) for k, v in d.items()} if True else d
            for s, d in runs.items()}


def spread(xs, digits=0):
    """median, and (min–max) when there are several rounds"""
    xs = [x for x in xs if isinstance(x, (int, float))]
    if not xs:
        return "–"
    if len(xs) == 1:
        return fmt(xs[0], digits)
    return f"{fmt(statistics.median(xs), digits)} ({fmt(min(xs), digits)}–{fmt(max(xs), digits)})"


def raw_table(path):
    """Every server of the run as measured: median (min–max) over rounds."""
    rows, failures = {}, []
    with open(path) as f:
        for line in f:
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("mode") == "fail":
                failures.append(f"{r['server']} (round {r.get('round', '?')}): {r.get('what', '')}")
                continue
            d = rows.setdefault(r["server"], {})
            key = "storm" if r.get("mode") == "storm" else r["conns"]
            d.setdefault(key, []).append(r)
    conns = sorted({k for d in rows.values() for k in d if k != "storm"})
    head = ["server"] + [h for c in conns for h in (f"c={c} msgs/s", f"c={c} p99 µs", f"c={c} CPU µs/msg")]
    head += ["storm conns/s", "storm CPU µs/conn", "data errors"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s, d in rows.items():
        cells = [s]
        for c in conns:
            rs = d.get(c, [])
            cells += [spread([r.get("msgs_per_s") for r in rs]), spread([r.get("p99_us") for r in rs]),
                      spread([r.get("server_cpu_us_per_msg") for r in rs], 2)]
        cells.append(spread([r.get("conns_per_s") for r in d.get("storm", [])]))
        cells.append(spread([r.get("server_cpu_us_per_conn") for r in d.get("storm", [])], 1))
        cells.append(str(sum((r.get("errors") or 0) + (r.get("mismatches") or 0) + (r.get("connect_failures") or 0)
                             for rs in d.values() for r in rs)))
        out.append("| " + " | ".join(cells) + " |")
    if failures:
        out += ["", "failed: " + "; ".join(failures)]
    return "\n".join(out)


def fmt(x, digits=0):
    return "–" if x is None else f"{x:,.{digits}f}"


def tables(m, base="greenhub"):
    servers = [s for s in m if s != base]
    g = m.get(base, {})
    out = []
    out.append("| server | c=1 msgs/s | c=100 msgs/s | c=1000 msgs/s | storm conns/s | c=100 CPU µs/msg "
               "| c=1000 CPU µs/msg | storm CPU µs/conn |")
    out.append("|---|---|---|---|---|---|---|---|")
    for s in [base] + servers:
        d = m[s]
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            s, fmt(d.get(("msgs", 1))), fmt(d.get(("msgs", 100))), fmt(d.get(("msgs", 1000))),
            fmt(d.get("storm")), fmt(d.get(("cpu", 100)), 2), fmt(d.get(("cpu", 1000)), 2),
            fmt(d.get("storm_cpu"), 1)))
    out.append("")
    out.append(f"{base} ÷ peer (throughput: > 1 means {base} is faster; CPU per message: < 1 means {base} is cheaper):")
    out.append("")
    out.append("| peer | c=1 msgs/s | c=100 msgs/s | c=1000 msgs/s | storm | c=100 CPU/msg | c=1000 CPU/msg "
               "| storm CPU/conn |")
    out.append("|---|---|---|---|---|---|---|---|")

    def ratio(key, s):
        a, b = g.get(key), m[s].get(key)
        return f"{a / b:.2f}" if a and b else "–"

    for s in servers:
        out.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            s, ratio(("msgs", 1), s), ratio(("msgs", 100), s), ratio(("msgs", 1000), s), ratio("storm", s),
            ratio(("cpu", 100), s), ratio(("cpu", 1000), s), ratio("storm_cpu", s)))
    errs = {s: max(v for k, v in d.items() if isinstance(k, tuple) and k[0] == "errors") for s, d in m.items()}
    out.append("")
    out.append("data errors (errors + mismatches + connect failures, worst run): " +
               ", ".join(f"{s} {e}" for s, e in errs.items()))
    return "\n".join(out)


def svg(m, path):
    groups = [("c=1 msgs/s", ("msgs", 1)), ("c=100 msgs/s", ("msgs", 100)), ("c=1000 msgs/s", ("msgs", 1000)),
              ("storm conns/s", "storm")]
    servers = ["greenhub"] + [s for s in m if s != "greenhub"]
    colors = ["#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a", "#c62828", "#00838f", "#5d4037", "#9e9d24", "#455a64"]
    w, h, left, top, bottom = 900, 420, 60, 40, 70
    gw = (w - left - 20) / len(groups)
    bw = gw * 0.8 / len(servers)
    vmax = max((m[s].get(k, 0) for s in servers for _, k in groups), default=1) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="15">echo, 64 B, one core each (medians): '
             f'greenhub vs peers</text>']
    plot_h = h - top - bottom
    for i in range(5):
        y = top + plot_h * (1 - i / 4)
        parts.append(f'<line x1="{left}" x2="{w - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{vmax * i / 4 / 1000:.0f}k</text>')
    for gi, (label, key) in enumerate(groups):
        x0 = left + gi * gw + gw * 0.1
        for si, s in enumerate(servers):
            v = m[s].get(key, 0)
            bh = plot_h * v / vmax
            x = x0 + si * bw
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" '
                         f'fill="{colors[si % len(colors)]}"><title>{s} {label}: {v:,.0f}</title></rect>')
        parts.append(f'<text x="{left + gi * gw + gw / 2:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{label}</text>')
    for si, s in enumerate(servers):
        x = left + si * 100
        parts.append(f'<rect x="{x}" y="{h - 28}" width="12" height="12" fill="{colors[si % len(colors)]}"/>')
        parts.append(f'<text x="{x + 16}" y="{h - 18}">{s}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    args = sys.argv[1:]
    out_svg = os.path.join(ROOT, "docs", "perf-chart.svg")
    if "--no-svg" in args:
        args.remove("--no-svg")
        out_svg = None
    base = "greenhub"
    if "--base" in args:
        i = args.index("--base")
        base = args[i + 1]
        del args[i:i + 2]
    if "--svg" in args:
        i = args.index("--svg")
        out_svg = args[i + 1]
        del args[i:i + 2]
    path = args[0] if args else max(glob.glob(os.path.join(ROOT, "benches", "results", "peers-*.jsonl")),
                                     key=os.path.getmtime, default=None)
    if not path:
        sys.exit("chart.py: no benches/results/peers-*.jsonl; run benches/peers.sh first")
    print(f"from {os.path.relpath(path, ROOT)}\n")
    print(raw_table(path))
    m = load(path)
    if base not in m:
        sys.exit(f"chart.py: {path} has no {base} rows")
    print()
    print(tables(m, base))
    if out_svg:
        svg(m, out_svg)
        print(f"\nchart: {os.path.relpath(out_svg, ROOT)}")


if __name__ == "__main__":
    main()
