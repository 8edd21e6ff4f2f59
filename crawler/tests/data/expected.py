#!/usr/bin/env python3
"""Makes the expected link lists of the saved pages with Python's own html.parser (an
independent parser): `<a href>` values, resolved against the first `<base href>` or the
page URL, fragments dropped, http(s) only, each once, in page order.

Run: python3 crawler/tests/data/expected.py  (writes NAME.links beside each NAME.html)
"""
import pathlib
from html.parser import HTMLParser
from urllib.parse import urljoin, urldefrag

# The URL each saved page is taken to have been fetched from.
PAGES = {
    "rustdoc-std-index.html": "http://docs.local/std/index.html",
    "mdbook-installation.html": "http://docs.local/book/ch01-01-installation.html",
    "rust-docs-index.html": "http://docs.local/index.html",
    "rustdoc-option.html": "http://docs.local/std/option/enum.Option.html",
}


class Links(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs, self.base = [], None

    def handle_starttag(self, tag, attrs):
        first = {}
        for k, v in attrs:  # the first of duplicate attributes counts (WHATWG)
            first.setdefault(k, v)
        href = first.get("href")
        if href is None:
            return
        if tag == "a":
            self.hrefs.append(href)
        elif tag == "base" and self.base is None:
            self.base = href

    handle_startendtag = handle_starttag


def links(page_url, html):
    p = Links()
    p.feed(html)
    p.close()
    base = urljoin(page_url, p.base.strip()) if p.base is not None else page_url
    out, seen = [], set()
    for h in p.hrefs:
        u = urldefrag(urljoin(base, h.strip(" \t\n\r\f")))[0]
        if u.split(":", 1)[0] in ("http", "https") and u not in seen:
            seen.add(u)
            out.append(u)
    return out


here = pathlib.Path(__file__).parent
for name, url in PAGES.items():
    html = (here / name).read_text(encoding="utf-8", errors="replace")
    (here / (name[:-5] + ".links")).write_text("".join(u + "\n" for u in links(url, html)))
