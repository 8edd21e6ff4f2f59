//! Crawling: gevent-style progress lines, a pool of fetchers, depth-limited same-host
//! link following, and the report table.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub_runtime::pool::Pool;
use url::Url;

use crate::fetch::{Client, FetchError, Page};
use crate::links::links;

/// The outcome of one URL.
#[derive(Debug, Clone)]
pub struct Record {
    /// The URL fetched.
    pub url: String,
    /// Its status, or the error.
    pub result: Result<u16, FetchError>,
    /// Body bytes received.
    pub bytes: usize,
    /// How long the fetch took.
    pub elapsed: Duration,
}

/// How a fetch ended, for the summary and the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A 2xx answer (after following redirects).
    Ok,
    /// An answer with another status (4xx, 5xx, or a redirect not followed).
    Http,
    /// No answer: refused, unknown host, timeout, malformed response, ...
    Failed,
}

impl Record {
    /// The record's class: `ok` means a 2xx status.
    ///
    /// ```
    /// use greenhub_crawler::{crawl::Class, Record};
    /// let r = Record { url: "u".into(), result: Ok(404), bytes: 0, elapsed: Default::default() };
    /// assert_eq!(r.class(), Class::Http);
    /// ```
    pub fn class(&self) -> Class {
        match self.result {
            Ok(s) if (200..300).contains(&s) => Class::Ok,
            Ok(_) => Class::Http,
            Err(_) => Class::Failed,
        }
    }
}

/// Fetches `url`, printing `GET: url` first and then `N bytes received from url` (or
/// the error). Returns the record and the page, if any.
pub fn fetch_and_report(client: &Client, url: &str) -> (Record, Option<Page>) {
    println!("GET: {url}");
    let t = Instant::now();
    match client.get(url) {
        Ok(page) => {
            println!("{} bytes received from {url}", page.body.len());
            if !(200..300).contains(&page.status) {
                println!("error: {url}: HTTP status {}", page.status);
            }
            let rec =
                Record { url: url.to_string(), result: Ok(page.status), bytes: page.body.len(), elapsed: t.elapsed() };
            (rec, Some(page))
        }
        Err(e) => {
            println!("error: {url}: {e}");
            (Record { url: url.to_string(), result: Err(e), bytes: 0, elapsed: t.elapsed() }, None)
        }
    }
}

/// Crawls `seeds` and, up to `depth` levels, the same-host pages they link to, with at
/// most `concurrency` fetches at once. Each URL is fetched once.
pub fn crawl(client: &Client, seeds: &[String], concurrency: usize, depth: usize) -> Vec<Record> {
    let pool = Pool::new(concurrency.max(1));
    let records = Rc::new(RefCell::new(Vec::new()));
    let mut visited: HashSet<String> = HashSet::new();
    let mut level: Vec<String> = seeds.iter().filter(|u| visited.insert((*u).clone())).cloned().collect();
    for d in 0..=depth {
        let follow = d < depth;
        let found: Rc<RefCell<Vec<Url>>> = Rc::default();
        let handles: Vec<_> = level
            .drain(..)
            .map(|url| {
                let (client, records, found) = (client.clone(), records.clone(), found.clone());
                pool.spawn(move || {
                    let (rec, page) = fetch_and_report(&client, &url);
                    records.borrow_mut().push(rec);
                    let html = page.as_ref().is_some_and(|p| crate::links::is_html(p.content_type.as_deref()));
                    if let (true, true, Some(page)) = (follow, html, page) {
                        let host = page.final_url.host_str().map(String::from);
                        // Parsed on the threadpool: a 30,000-link page then holds the hub
                        // for 0.1 ms instead of 4-6 ms (docs/performance.md).
                        let (base, body) = (page.final_url, page.body);
                        let urls = greenhub_runtime::threadpool::spawn_blocking(move || links(&base, &body));
                        found.borrow_mut().extend(urls.into_iter().filter(|u| u.host_str().map(String::from) == host));
                    }
                })
            })
            .collect();
        greenhub_runtime::joinall(&handles);
        let found = found.borrow();
        level = found.iter().map(|u| u.to_string()).filter(|u| visited.insert(u.clone())).collect();
        if level.is_empty() {
            break;
        }
    }
    let mut v = records.borrow().clone();
    v.sort_by(|a, b| a.url.cmp(&b.url));
    v
}

/// The report table: url, status, bytes, time.
pub fn table(records: &[Record]) -> String {
    let w = records.iter().map(|r| r.url.len()).max().unwrap_or(3).max(3);
    let mut out = format!("{:w$}  {:>6}  {:>9}  {:>8}\n", "url", "status", "bytes", "time");
    for r in records {
        let status = match &r.result {
            Ok(s) => s.to_string(),
            Err(_) => "failed".to_string(),
        };
        let _ = write!(out, "{:w$}  {:>6}  {:>9}  {:>7.3}s", r.url, status, r.bytes, r.elapsed.as_secs_f64());
        if let Err(e) = &r.result {
            let _ = write!(out, "  {e}");
        }
        out.push('\n');
    }
    out
}
