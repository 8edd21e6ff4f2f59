#!/usr/bin/env bash
# Crawl benchmark: the Rust toolchain's own HTML docs (a real tree nobody here wrote)
# served by nginx on 127.0.0.1, crawled at depth 2 and 3 by greenhub's crawler, a gevent
# crawler (benches/gevent_crawler.py) and `wget --recursive --spider`, all in one run.
# Prints time, pages/s, peak RSS and how far each URL set agrees with greenhub's.
#
# usage: bash benches/crawl.sh [DEPTHS] [CONCURRENCY]     (default "2 3", 50)
# BEFORE=/path/to/an/older/crawler adds its row (to measure a change of the crawler).
# Installs what it needs (nginx from Debian, gevent from PyPI into a venv) when run as
# root; honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
depths=${1:-"2 3"}
conc=${2:-50}
docs=$(rustc --print sysroot)/share/doc/rust/html
if [ ! -f "$docs/std/index.html" ]; then
  # No toolchain docs: generate a tree of the same shape (index pages linking pages).
  docs=$(mktemp -d)
  python3 - "$docs" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(40):
    os.makedirs(f"{root}/std/m{d}", exist_ok=True)
    with open(f"{root}/std/m{d}/index.html", "w") as f:
        f.write("".join(f'<a href="p{i}.html">p{i}</a>' for i in range(60)))
    for i in range(60):
        with open(f"{root}/std/m{d}/p{i}.html", "w") as f:
            f.write(f'<a href="../m{(d + 1) % 40}/index.html">next</a><script>x.href="/js"</script>')
with open(f"{root}/std/index.html", "w") as f:
    f.write("".join(f'<a href="m{d}/index.html">m{d}</a>' for d in range(40)))
PY
fi
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  apt-get install -y -q nginx-light >/dev/null 2>&1 || { apt-get update -q >/dev/null; apt-get install -y -q nginx-light >/dev/null; }
fi
venv=${GEVENT_VENV:-/tmp/greenhub-gevent-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" && "$venv/bin/pip" install -q gevent
fi
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q --example crawler
crawler="$target/release/examples/crawler"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root;" # the docs may live under /root
cat > "$work/nginx.conf" <<CONF
$user_line
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  include /etc/nginx/mime.types;
  server { listen 127.0.0.1:$port; root $docs; }
}
CONF
/usr/sbin/nginx -c "$work/nginx.conf"
trap '/usr/sbin/nginx -c "$work/nginx.conf" -s stop 2>/dev/null; rm -rf "$work"' EXIT
seed="http://127.0.0.1:$port/std/index.html"

measure() { # name outfile command...: time (s) and peak RSS (KiB) into $work/NAME.m
  local name=$1 out=$2; shift 2
  /usr/bin/time -f "%e %M" -o "$work/$name.m" "$@" > "$out" 2>"$work/$name.err" || true
}
printf '| depth | crawler | urls | time | pages/s | peak RSS | same URLs as greenhub |\n|---|---|---|---|---|---|---|\n'
for d in $depths; do
  measure greenhub "$work/g.json" "$crawler" "$seed" --depth "$d" --concurrency "$conc" --quiet --output json
  python3 -c 'import json,sys; [print(json.loads(l)["url"]) for l in open(sys.argv[1])]' "$work/g.json" | sort -u > "$work/g.urls"
  measure gevent "$work/e.urls.raw" "$venv/bin/python" benches/gevent_crawler.py "$seed" "$d" "$conc"
  sort -u "$work/e.urls.raw" > "$work/e.urls"
  names="greenhub gevent wget"
  if [ -n "${BEFORE:-}" ]; then
    measure before "$work/b.json" "$BEFORE" "$seed" --depth "$d" --concurrency "$conc" --quiet --output json
    python3 -c 'import json,sys; [print(json.loads(l)["url"]) for l in open(sys.argv[1])]' "$work/b.json" | sort -u > "$work/b.urls"
    names="greenhub before gevent wget"
  fi
  measure wget /dev/null wget --recursive --level="$d" --spider -nv --no-directories -e robots=off -o "$work/w.log" "$seed"
  grep -oE 'URL: ?http[^ ]+' "$work/w.log" | sed -E 's/^URL: ?//' | sort -u > "$work/w.urls" || true
  for n in $names; do
    f=$work/${n:0:1}.urls
    read -r secs rss < <(tail -n 1 "$work/$n.m")
    urls=$(wc -l < "$f")
    common=$(comm -12 "$work/g.urls" "$f" | wc -l)
    agree=$(python3 -c "a=$common; b=max($urls,1); c=max($(wc -l < "$work/g.urls"),1); print(f'{100*a/max(b,c):.1f} %')")
    rate=$(python3 -c "print(f'{$urls/max($secs,0.01):.0f}')")
    printf '| %s | %s | %s | %ss | %s | %s MiB | %s |\n' "$d" "$n" "$urls" "$secs" "$rate" "$((rss / 1024))" "$agree"
  done
done
