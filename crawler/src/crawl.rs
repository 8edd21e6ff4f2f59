//! Crawling: gevent-style progress lines, a pool of fetchers, depth-limited same-host
//! link following, and the report table.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub_runtime::pool::Pool;
use greenhub_runtime::sync::Semaphore;
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
    fetch(client, url, true)
}

/// Fetches `url`, printing the seed's lines if `lines`.
fn fetch(client: &Client, url: &str, lines: bool) -> (Record, Option<Page>) {
    if lines {
        println!("GET: {url}");
    }
    let t = Instant::now();
    let (result, bytes, page) = match client.get(url) {
        Ok(page) => {
            if lines {
                println!("{} bytes received from {url}", page.body.len());
                if !(200..300).contains(&page.status) {
                    println!("error: {url}: HTTP status {}", page.status);
                }
            }
            (Ok(page.status), page.body.len(), Some(page))
        }
        Err(e) => {
            if lines {
                println!("error: {url}: {e}");
            }
            (Err(e), 0, None)
        }
    };
    (Record { url: url.to_string(), result, bytes, elapsed: t.elapsed() }, page)
}

/// How a crawl reports its progress.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The seed's lines: `GET: url`, then `N bytes received from url` or the error.
    Lines,
    /// A live progress bar (fetched, queued, errors, rate), for a terminal.
    Bar(indicatif::ProgressBar),
    /// Nothing.
    Quiet,
}

/// What a crawl does: see [`crawl_with`].
#[derive(Debug, Clone)]
pub struct CrawlOptions {
    /// Fetches at once.
    pub concurrency: usize,
    /// Fetches at once per host (politeness); `None`: no limit beyond `concurrency`.
    pub per_host: Option<usize>,
    /// Link levels followed from the seeds.
    pub depth: usize,
    /// Fetches in all; `None`: no limit.
    pub max_pages: Option<usize>,
    /// Follow links to the seed's host only (the default) or to any host.
    pub same_host: bool,
    /// How progress is shown.
    pub progress: Progress,
}

impl Default for CrawlOptions {
    fn default() -> Self {
        CrawlOptions {
            concurrency: 10,
            per_host: None,
            depth: 0,
            max_pages: None,
            same_host: true,
            progress: Progress::Lines,
        }
    }
}

/// Crawls `seeds` and, up to `depth` levels, the same-host pages they link to, with at
/// most `concurrency` fetches at once. Each URL is fetched once.
pub fn crawl(client: &Client, seeds: &[String], concurrency: usize, depth: usize) -> Vec<Record> {
    crawl_with(client, seeds, &CrawlOptions { concurrency, depth, ..CrawlOptions::default() })
}

/// Crawls `seeds` and, up to `o.depth` levels, the pages they link to (same host only,
/// unless `o.same_host` is false), each URL once, at most `o.concurrency` fetches at once
/// (and `o.per_host` per host), at most `o.max_pages` in all. Links are taken from HTML
/// responses only, parsed on the threadpool. Records come back sorted by URL.
pub fn crawl_with(client: &Client, seeds: &[String], o: &CrawlOptions) -> Vec<Record> {
    let pool = Pool::new(o.concurrency.max(1));
    let records = Rc::new(RefCell::new(Vec::new()));
    let hosts: Rc<RefCell<HashMap<String, Rc<Semaphore>>>> = Rc::default();
    let stats =
        Rc::new(Stats { started: Instant::now(), fetched: Cell::new(0), errors: Cell::new(0), queued: Cell::new(0) });
    let mut budget = o.max_pages.unwrap_or(usize::MAX);
    let mut visited: HashSet<String> = HashSet::new();
    let mut level: Vec<String> = seeds.iter().filter(|u| visited.insert((*u).clone())).cloned().collect();
    for d in 0..=o.depth {
        level.truncate(budget);
        budget -= level.len();
        let follow = d < o.depth;
        stats.queued.set(stats.queued.get() + level.len());
        let found: Rc<RefCell<Vec<Url>>> = Rc::default();
        let handles: Vec<_> = level
            .drain(..)
            .map(|url| {
                let (client, records, found) = (client.clone(), records.clone(), found.clone());
                let (hosts, stats, o) = (hosts.clone(), stats.clone(), o.clone());
                pool.spawn(move || {
                    let limit = o.per_host.and_then(|n| host_limit(&hosts, &url, n));
                    let _permit = limit.as_ref().map(|s| s.acquire());
                    let (rec, page) = fetch(&client, &url, matches!(o.progress, Progress::Lines));
                    drop(_permit);
                    stats.done(&rec, &o.progress);
                    records.borrow_mut().push(rec);
                    let html = page.as_ref().is_some_and(|p| crate::links::is_html(p.content_type.as_deref()));
                    if let (true, true, Some(page)) = (follow, html, page) {
                        let host = page.final_url.host_str().map(String::from);
                        // Parsed on the threadpool: a 30,000-link page then holds the hub
                        // for 0.1 ms instead of 4-6 ms (docs/performance.md).
                        let (base, body) = (page.final_url, page.body);
                        let urls = greenhub_runtime::threadpool::spawn_blocking(move || links(&base, &body));
                        let same = |u: &Url| !o.same_host || u.host_str().map(String::from) == host;
                        found.borrow_mut().extend(urls.into_iter().filter(same));
                    }
                })
            })
            .collect();
        greenhub_runtime::joinall(&handles);
        let found = found.borrow();
        level = found.iter().map(|u| u.to_string()).filter(|u| visited.insert(u.clone())).collect();
        if level.is_empty() || budget == 0 {
            break;
        }
    }
    if let Progress::Bar(bar) = &o.progress {
        bar.finish_and_clear();
    }
    let mut v = records.borrow().clone();
    v.sort_by(|a, b| a.url.cmp(&b.url));
    v
}

/// The per-host limit of `url`'s host (one semaphore per host, made on first use).
fn host_limit(hosts: &RefCell<HashMap<String, Rc<Semaphore>>>, url: &str, n: usize) -> Option<Rc<Semaphore>> {
    let host = Url::parse(url).ok()?.host_str()?.to_string();
    Some(hosts.borrow_mut().entry(host).or_insert_with(|| Rc::new(Semaphore::new(n.max(1)))).clone())
}

/// Counters for the progress bar.
struct Stats {
    started: Instant,
    fetched: Cell<usize>,
    errors: Cell<usize>,
    queued: Cell<usize>,
}

impl Stats {
    fn done(&self, rec: &Record, progress: &Progress) {
        self.fetched.set(self.fetched.get() + 1);
        if rec.class() != Class::Ok {
            self.errors.set(self.errors.get() + 1);
        }
        if let Progress::Bar(bar) = progress {
            let rate = self.fetched.get() as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "fetched {}, queued {}, errors {}, {rate:.0} pages/s",
                self.fetched.get(),
                self.queued.get() - self.fetched.get(),
                self.errors.get()
            ));
            bar.tick();
        }
    }
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
