#!/usr/bin/env python3
"""The same crawl as greenhub's crawler, in gevent, for benches/crawl.sh: breadth-first
to DEPTH, same host only, links from html.parser (<a href>, <base href>), each URL once,
at most CONCURRENCY fetches at once (a gevent Pool), urllib under monkey patching.
Prints every fetched URL, one per line, then a summary on stderr.

usage: gevent_crawler.py URL DEPTH CONCURRENCY
"""
from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from html.parser import HTMLParser  # noqa: E402
from urllib.parse import urldefrag, urljoin, urlsplit  # noqa: E402

import gevent.pool  # noqa: E402


class Links(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs, self.base = [], None

    def handle_starttag(self, tag, attrs):
        first = {}
        for k, v in attrs:
            first.setdefault(k, v)
        href = first.get("href")
        if href is None:
            return
        if tag == "a":
            self.hrefs.append(href)
        elif tag == "base" and self.base is None:
            self.base = href


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = r.read()
            return r.status, r.headers.get_content_type(), body, r.geturl()
    except Exception as e:  # noqa: BLE001 - any failure is one line
        return None, None, b"", str(e)


def main():
    seed, depth, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    host = urlsplit(seed).netloc
    pool = gevent.pool.Pool(conc)
    visited, level, fetched, errors = {seed}, [seed], 0, 0
    t = time.time()
    for d in range(depth + 1):
        found = []

        def one(url, follow=d < depth):
            nonlocal fetched, errors
            status, ctype, body, final = fetch(url)
            fetched += 1
            print(url)
            if status is None or not 200 <= status < 300:
                errors += 1
                return
            if follow and ctype == "text/html":
                p = Links()
                p.feed(body.decode("utf-8", "replace"))
                base = urljoin(final, p.base.strip()) if p.base else final
                for h in p.hrefs:
                    u = urldefrag(urljoin(base, h.strip()))[0]
                    if urlsplit(u).netloc == host and u.startswith("http"):
                        found.append(u)

        for url in level:
            pool.spawn(one, url)
        pool.join()
        level = []
        for u in found:
            if u not in visited:
                visited.add(u)
                level.append(u)
        if not level:
            break
    sys.stderr.write(f"gevent: {fetched} urls, {errors} errors in {time.time() - t:.2f}s\n")


main()
