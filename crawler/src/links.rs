//! Link extraction with a real HTML tokenizer (html5gum, WHATWG's tokenizer rules):
//! `<a href>` values, resolved against the document's `<base href>` (the first one) or
//! the page URL. Nothing comes from `<script>`/`<style>` (raw text, as the tokenizer
//! switches state for them), comments, or other attributes; character references are
//! decoded; fragments are dropped; only http(s) links are kept, each once (a hash set:
//! O(1) per link).
//!
//! A big page does not freeze the hub: inside a greenlet the extraction yields every
//! [`YIELD_EVERY`] tokens (and every quarter of that many links resolved), so other
//! greenlets run in between; the crawler goes further and parses on the threadpool,
//! which measured better (docs/performance.md: a 30,000-link page holds the hub 0.1 ms
//! that way, 4-6 ms with the yields).

use std::collections::HashSet;

use html5gum::{DefaultEmitter, Token, Tokenizer};
use url::Url;

/// Tokens between two yields to the hub (about 0.1 ms of tokenizing).
pub const YIELD_EVERY: usize = 2048;

/// The absolute http(s) URLs that `html` links to with `<a href>` (fragments removed,
/// in page order, each once).
///
/// ```
/// let base = url::Url::parse("http://h/dir/page").unwrap();
/// let html = b"<a href=\"/a\">x</a> <A HREF='b#top'>y</a> <a href=c?x=1&amp;y=2>z</a>
///              <script>tmp.href = url;</script><!-- <a href=gone> -->";
/// let links: Vec<String> = greenhub_crawler::links(&base, html).iter().map(|u| u.to_string()).collect();
/// assert_eq!(links, ["http://h/a", "http://h/dir/b", "http://h/dir/c?x=1&y=2"]);
/// ```
pub fn links(base: &Url, html: &[u8]) -> Vec<Url> {
    let mut emitter = DefaultEmitter::default();
    emitter.naively_switch_states(true); // <script>, <style>, ...: raw text, no tags
    let mut hrefs: Vec<String> = Vec::new();
    let mut doc_base: Option<Url> = None;
    let yields = greenhub_runtime::in_greenlet();
    for (n, token) in Tokenizer::new_with_emitter(html, emitter).flatten().enumerate() {
        if yields && n % YIELD_EVERY == YIELD_EVERY - 1 {
            greenhub_runtime::yield_now();
        }
        let Token::StartTag(tag) = token else { continue };
        let href = tag.attributes.get(b"href".as_slice()).map(|v| String::from_utf8_lossy(&v.value).into_owned());
        match (&**tag.name, href) {
            (b"a", Some(h)) => hrefs.push(h),
            (b"base", Some(h)) if doc_base.is_none() => doc_base = base.join(h.trim()).ok(),
            _ => {}
        }
    }
    let base = doc_base.as_ref().unwrap_or(base);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (n, h) in hrefs.into_iter().enumerate() {
        if yields && n % (YIELD_EVERY / 4) == YIELD_EVERY / 4 - 1 {
            greenhub_runtime::yield_now(); // resolving is the costlier part per link
        }
        let Ok(mut u) = base.join(h.trim_matches(|c: char| c.is_ascii_whitespace())) else { continue };
        if u.scheme() != "http" && u.scheme() != "https" {
            continue;
        }
        u.set_fragment(None);
        if seen.insert(u.clone()) {
            out.push(u);
        }
    }
    out
}

/// Whether a `Content-Type` says HTML (a missing one is taken as HTML, as browsers
/// sniff).
///
/// ```
/// use greenhub_crawler::links::is_html;
/// assert!(is_html(Some("text/html; charset=utf-8")) && is_html(None));
/// assert!(!is_html(Some("application/json")));
/// ```
pub fn is_html(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| {
        let essence = ct.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("text/html") || essence.eq_ignore_ascii_case("application/xhtml+xml")
    })
}
