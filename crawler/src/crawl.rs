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

/// Fetches `url`, printing `GET: url` first and then `N bytes received from url` (or
/// the error). Returns the record and the page, if any.
pub fn fetch_and_report(client: &Client, url: &str) -> (Record, Option<Page>) {
    println!("GET: {url}");
    let t = Instant::now();
    match client.get(url) {
        Ok(page) => {
            println!("{} bytes received from {url}", page.body.len());
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
                    if let (true, Some(page)) = (follow, page) {
                        let host = page.final_url.host_str().map(String::from);
                        found.borrow_mut().extend(
                            links(&page.final_url, &page.body)
                                .into_iter()
                                .filter(|u| u.host_str().map(String::from) == host),
                        );
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
            Err(_) => "ERR".to_string(),
        };
        let _ = write!(out, "{:w$}  {:>6}  {:>9}  {:>7.3}s", r.url, status, r.bytes, r.elapsed.as_secs_f64());
        if let Err(e) = &r.result {
            let _ = write!(out, "  {e}");
        }
        out.push('\n');
    }
    out
}
