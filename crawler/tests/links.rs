//! Link extraction against saved real-world pages (the Rust toolchain's own HTML docs:
//! rustdoc and mdbook pages, with their JavaScript, JSON and template strings), with the
//! expected lists made by Python's `html.parser` (`tests/data/expected.py`), and the
//! corner cases that fooled the old scanner.

use std::time::{Duration, Instant};

use greenhub_crawler::links::{is_html, links};
use url::Url;

const PAGES: [(&str, &str); 4] = [
    ("rustdoc-std-index", "http://docs.local/std/index.html"),
    ("mdbook-installation", "http://docs.local/book/ch01-01-installation.html"),
    ("rust-docs-index", "http://docs.local/index.html"),
    ("rustdoc-option", "http://docs.local/std/option/enum.Option.html"),
];

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn the_same_links_as_pythons_html_parser_on_real_pages() {
    for (name, url) in PAGES {
        let html = data(&format!("{name}.html"));
        let got: Vec<String> = links(&Url::parse(url).unwrap(), &html).iter().map(|u| u.to_string()).collect();
        // The same URLs, compared in one serialisation (Python's `urljoin` keeps
        // `https://crates.io`, the WHATWG form is `https://crates.io/`).
        let want: Vec<String> = String::from_utf8(data(&format!("{name}.links")))
            .unwrap()
            .lines()
            .map(|l| Url::parse(l).unwrap().to_string())
            .collect();
        assert!(!want.is_empty(), "{name}: the oracle found links");
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn script_style_comments_json_and_templates_give_no_links() {
    let base = Url::parse("http://h/dir/").unwrap();
    let html = br#"<html><head><base href="/root/">
        <style>a[href="/from-css"] { color: red }</style>
        <script>tmp.href = url; var j = {"a": "<a href=\"/in-json\">"}; var t = `${full_path_to_root}${path}`;</script>
        </head><body>
        <!-- <a href="/in-comment">old</a> -->
        <a href="page?a=1&amp;b=2#frag">one</a>
        <a href="  spaced  ">two</a>
        <a href="mailto:x@y">mail</a> <a href="javascript:void(0)">js</a>
        <a name="no-href">anchor</a> <link href="/style.css"> <img src="/x.png">
        <a href="page?a=1&b=2">dup</a>
        <a href="https://other.example/x">abs</a>
        </body></html>"#;
    let got: Vec<String> = links(&base, html).iter().map(|u| u.to_string()).collect();
    assert_eq!(got, ["http://h/root/page?a=1&b=2", "http://h/root/spaced", "https://other.example/x"]);
}

#[test]
fn only_html_responses_are_parsed() {
    assert!(is_html(Some("text/html")) && is_html(Some("TEXT/HTML; charset=UTF-8")) && is_html(None));
    assert!(!is_html(Some("application/json")) && !is_html(Some("text/plain")) && !is_html(Some("image/png")));
}

#[test]
fn thirty_thousand_links_are_extracted_without_holding_the_hub() {
    let mut page = String::from("<html><body>");
    for i in 0..30_000 {
        page.push_str(&format!("<a href=\"/p/{i}\">link {i}</a> "));
    }
    page.push_str("<a href=\"/p/7\">again</a></body></html>");
    let base = Url::parse("http://h/").unwrap();
    // A ticker greenlet measures the longest time the hub was held between its ticks.
    let longest = std::rc::Rc::new(std::cell::Cell::new(Duration::ZERO));
    let l = longest.clone();
    let ticker = greenhub_runtime::spawn(move || {
        let mut last = Instant::now();
        loop {
            greenhub_runtime::yield_now();
            let now = Instant::now();
            l.set(l.get().max(now - last));
            last = now;
        }
    });
    let page = page.into_bytes();
    let extract = greenhub_runtime::spawn(move || links(&base, &page).len());
    assert_eq!(extract.get(), Ok(30_000), "deduplicated");
    ticker.kill();
    ticker.join();
    // Generous (debug builds, a shared machine): the whole extraction takes far longer.
    assert!(longest.get() < Duration::from_millis(200), "the hub was held for {:?}", longest.get());
}
