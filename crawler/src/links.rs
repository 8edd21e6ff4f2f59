//! Link extraction: `href` attributes of a page, resolved against its URL.
//!
//! A full HTML parser (html5ever) would be a large dependency for one attribute; this
//! scanner finds `href=` in tags, quoted or not, which is what a same-host crawl needs.

use url::Url;

/// The absolute http(s) URLs that `html` links to (fragments removed, in page order,
/// without duplicates).
///
/// ```
/// let base = url::Url::parse("http://h/dir/page").unwrap();
/// let links = greenhub_crawler::links(&base, b"<a href=\"/a\">x</a> <A HREF='b#top'>y</a> <a href=c>z</a>");
/// let links: Vec<String> = links.iter().map(|u| u.to_string()).collect();
/// assert_eq!(links, ["http://h/a", "http://h/dir/b", "http://h/dir/c"]);
/// ```
pub fn links(base: &Url, html: &[u8]) -> Vec<Url> {
    let text = String::from_utf8_lossy(html);
    let lower = text.to_ascii_lowercase();
    let mut out: Vec<Url> = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find("href") {
        let mut j = from + i + 4;
        from = j;
        let bytes = lower.as_bytes();
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= bytes.len() || bytes[j] != b'=' {
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        let (start, end) = match bytes.get(j) {
            Some(&q @ (b'"' | b'\'')) => match lower[j + 1..].find(q as char) {
                Some(k) => (j + 1, j + 1 + k),
                None => continue,
            },
            Some(_) => {
                let k = lower[j..].find(|c: char| c.is_ascii_whitespace() || c == '>').unwrap_or(lower.len() - j);
                (j, j + k)
            }
            None => continue,
        };
        from = end;
        if let Ok(mut u) = base.join(text[start..end].trim()) {
            if u.scheme() == "http" || u.scheme() == "https" {
                u.set_fragment(None);
                if !out.contains(&u) {
                    out.push(u);
                }
            }
        }
    }
    out
}
