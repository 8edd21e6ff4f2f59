#!/usr/bin/env python3
"""Proves the declared MSRVs against the lock file (no second toolchain can be installed
here): for every workspace package, the largest `rust-version` among the packages its
normal (non-dev) dependencies resolve to in Cargo.lock must not exceed its own
`rust-version`. Exits 1 with the offending crates otherwise."""
import json
import subprocess
import sys


def ver(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--locked"]))
pkgs = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
bad = False
for member in meta["workspace_members"]:
    own = pkgs[member].get("rust_version")
    if not own:
        continue
    seen, stack, worst = set(), [member], []
    while stack:
        pid = stack.pop()
        for dep in nodes[pid]["deps"]:
            if not any(k["kind"] is None for k in dep["dep_kinds"]):
                continue  # dev and build-only edges do not bind users
            if dep["pkg"] in seen:
                continue
            seen.add(dep["pkg"])
            stack.append(dep["pkg"])
            rv = pkgs[dep["pkg"]].get("rust_version")
            if rv and ver(rv) > ver(own):
                worst.append(f'{pkgs[dep["pkg"]]["name"]} {pkgs[dep["pkg"]]["version"]} needs {rv}')
    name = pkgs[member]["name"]
    if worst:
        bad = True
        print(f"msrv: {name} declares {own} but: " + "; ".join(sorted(set(worst))))
    else:
        print(f"msrv: {name} {own}: every locked dependency agrees ({len(seen)} crates)")
sys.exit(1 if bad else 0)
