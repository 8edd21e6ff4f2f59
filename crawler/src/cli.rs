//! The `crawler` command line.

use std::time::{Duration, Instant};

use crate::crawl::{crawl, fetch_and_report, table, Class, Record};
use crate::fetch::Client;
use crate::links::links;
use crate::site::Site;

const USAGE: &str = "usage: crawler [URL ...] [--urls-file FILE] [--concurrency N] [--depth D] [--timeout SECONDS]
  With no URL: start an embedded site (an index and 20 pages, each answered after
  200 ms), crawl it sequentially and concurrently, and print the speedup.
  Exit status: 0 when every URL answered 2xx (after redirects), 1 when some did not
  (a 4xx/5xx status or a failed fetch), 2 for a usage error.";

struct Opts {
    urls: Vec<String>,
    concurrency: usize,
    depth: usize,
    timeout: Duration,
    delay: Duration,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        urls: Vec::new(),
        concurrency: 10,
        depth: 0,
        timeout: Duration::from_secs(10),
        delay: Duration::from_millis(200),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().cloned().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--concurrency" => o.concurrency = val(a)?.parse().map_err(|_| "bad --concurrency".to_string())?,
            "--depth" => o.depth = val(a)?.parse().map_err(|_| "bad --depth".to_string())?,
            "--timeout" => {
                let s: f64 = val(a)?.parse().map_err(|_| "bad --timeout".to_string())?;
                o.timeout = Duration::try_from_secs_f64(s).map_err(|_| "bad --timeout".to_string())?;
            }
            "--delay-ms" => o.delay = Duration::from_millis(val(a)?.parse().map_err(|_| "bad --delay-ms".to_string())?),
            "--urls-file" => {
                let f = val(a)?;
                let text = std::fs::read_to_string(&f).map_err(|e| format!("cannot read {f}: {e}"))?;
                o.urls.extend(
                    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from),
                );
            }
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            url => o.urls.push(url.to_string()),
        }
    }
    Ok(o)
}

/// Runs the crawler with `args` (without the program name); returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("crawler: {msg}");
            }
            eprintln!("{USAGE}");
            return 2;
        }
    };
    if o.urls.is_empty() {
        demo(&o)
    } else {
        real(&o)
    }
}

/// `crawled N urls: A ok, B errors in T` (ok: 2xx); errors broken down as HTTP
/// statuses and failed fetches when there are any.
fn summary(records: &[Record], took: Duration) -> String {
    let count = |c: Class| records.iter().filter(|r| r.class() == c).count();
    let (ok, http, failed) = (count(Class::Ok), count(Class::Http), count(Class::Failed));
    let detail = if http + failed > 0 { format!(" ({http} http 4xx/5xx, {failed} failed)") } else { String::new() };
    format!("crawled {} urls: {ok} ok, {} errors{detail} in {:.2}s", records.len(), http + failed, took.as_secs_f64())
}

/// The exit status: 0 only when every URL answered 2xx.
fn exit_code(records: &[Record]) -> i32 {
    i32::from(records.iter().any(|r| r.class() != Class::Ok))
}

fn real(o: &Opts) -> i32 {
    let client = Client::new().timeout(o.timeout);
    let t = Instant::now();
    let records = crawl(&client, &o.urls, o.concurrency, o.depth);
    print!("\n{}", table(&records));
    println!("{}", summary(&records, t.elapsed()));
    exit_code(&records)
}

/// Fetches the index, then its pages one after another (`concurrent == false`) or all
/// at once; returns the records and the time taken.
pub fn crawl_site(site: &Site, client: &Client, concurrent: bool) -> (Vec<Record>, Duration) {
    let t = Instant::now();
    let (index, page) = fetch_and_report(client, &site.url("/"));
    let mut records = vec![index];
    let urls: Vec<String> = match page {
        Some(p) => links(&p.final_url, &p.body).into_iter().map(|u| u.to_string()).collect(),
        None => Vec::new(),
    };
    if concurrent {
        let jobs: Vec<_> = urls
            .into_iter()
            .map(|u| {
                let c = client.clone();
                greenhub_runtime::spawn(move || fetch_and_report(&c, &u).0)
            })
            .collect();
        greenhub_runtime::joinall(&jobs);
        records.extend(jobs.into_iter().filter_map(|g| g.get().ok()));
    } else {
        records.extend(urls.iter().map(|u| fetch_and_report(client, u).0));
    }
    (records, t.elapsed())
}

fn demo(o: &Opts) -> i32 {
    let site = match Site::start(o.delay) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("crawler: cannot start the embedded site: {e}");
            return 1;
        }
    };
    let client = Client::new().timeout(o.timeout);
    println!("Synchronous:");
    let (_, sync) = crawl_site(&site, &client, false);
    println!("Asynchronous:");
    let (records, asynchronous) = crawl_site(&site, &client, true);
    site.stop();
    print!("\n{}", table(&records));
    println!("{}", summary(&records, asynchronous));
    let speedup = sync.as_secs_f64() / asynchronous.as_secs_f64().max(1e-9);
    println!("sync: {:.2}s  async: {:.2}s  speedup: {:.1}x", sync.as_secs_f64(), asynchronous.as_secs_f64(), speedup);
    exit_code(&records)
}
