//! The `crawler` command line.

use std::time::{Duration, Instant};

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::crawl::{crawl_with, fetch_and_report, table, Class, CrawlOptions, Progress, Record};
use crate::fetch::Client;
use crate::links::links;
use crate::site::Site;

/// gevent's concurrent web crawler.
///
/// With no URL: start an embedded site (an index and 20 pages, each answered after
/// 200 ms), crawl it sequentially and concurrently, and print the speedup.
#[derive(Debug, Parser)]
#[command(
    name = "crawler",
    about = "gevent's concurrent web crawler on greenhub",
    long_about = None,
    after_help = "With no URL: an embedded site is crawled sequentially, then concurrently.\n\
                  Exit status: 0 when every URL answered 2xx (after redirects), 1 when some did \
                  not (a 4xx/5xx status or a failed fetch), 2 for a usage error."
)]
struct Args {
    /// URLs to crawl (none: the embedded demo site).
    urls: Vec<String>,
    /// Also crawl the URLs in FILE, one per line (`#` starts a comment).
    #[arg(long, value_name = "FILE")]
    urls_file: Option<PathBuf>,
    /// Fetches at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    concurrency: u64,
    /// Fetches at once per host (politeness); 0: no limit.
    #[arg(long, default_value_t = 0)]
    per_host: usize,
    /// Link levels to follow from the seeds.
    #[arg(long, default_value_t = 0)]
    depth: usize,
    /// Fetch at most N pages in all.
    #[arg(long, value_name = "N")]
    max_pages: Option<usize>,
    /// Give up on a fetch after SECONDS.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    timeout: f64,
    /// Follow links to the seeds' hosts only (the default).
    #[arg(long, overrides_with = "all_hosts")]
    same_host: bool,
    /// Follow links to any host.
    #[arg(long, overrides_with = "same_host")]
    all_hosts: bool,
    /// No per-URL lines or progress bar: only the results.
    #[arg(short, long)]
    quiet: bool,
    /// How results are printed.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// The embedded site's delay per page, in ms.
    #[arg(long, default_value_t = 200, hide = true)]
    delay_ms: u64,
}

/// The results' format (`--output`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table and a summary line.
    Table,
    /// One JSON object per URL per line: url, status (null on a failed fetch), bytes,
    /// time_ms, error.
    Json,
    /// CSV with a header: url, status, bytes, time_ms, error.
    Csv,
}

/// Runs the crawler with `args` (without the program name); returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let mut a = match Args::try_parse_from(std::iter::once("crawler".to_string()).chain(args.iter().cloned())) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 }; // --help and --version: 0
        }
    };
    if let Some(f) = &a.urls_file {
        match std::fs::read_to_string(f) {
            Ok(text) => a
                .urls
                .extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from)),
            Err(e) => {
                eprintln!("crawler: cannot read {}: {e}", f.display());
                return 2;
            }
        }
    }
    let Ok(timeout) = Duration::try_from_secs_f64(a.timeout) else {
        eprintln!("crawler: bad --timeout {}", a.timeout);
        return 2;
    };
    if a.urls.is_empty() {
        demo(&a, timeout)
    } else {
        real(&a, timeout)
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

fn real(a: &Args, timeout: Duration) -> i32 {
    let client = Client::new().timeout(timeout);
    let progress = if a.quiet {
        Progress::Quiet
    } else if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress::Bar(bar)
    } else {
        Progress::Lines
    };
    let o = CrawlOptions {
        concurrency: a.concurrency as usize,
        per_host: (a.per_host > 0).then_some(a.per_host),
        depth: a.depth,
        max_pages: a.max_pages,
        same_host: !a.all_hosts,
        progress,
    };
    let t = Instant::now();
    let records = crawl_with(&client, &a.urls, &o);
    let took = t.elapsed();
    let mut text = render_output(a.output, &records, took);
    if a.output == Output::Table && !a.quiet {
        text.insert(0, '\n');
    }
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    exit_code(&records)
}

/// The results as `--output` prints them: `table` (with the summary line), `json` (one
/// object per line) or `csv` (with a header).
///
/// ```
/// use greenhub_crawler::{cli::render, Record};
/// let r = Record { url: "http://h/".into(), result: Ok(404), bytes: 9, elapsed: Default::default() };
/// let json = render("json", &[r], Default::default());
/// assert_eq!(json, "{\"bytes\":9,\"error\":\"HTTP status 404\",\"status\":404,\"time_ms\":0.0,\"url\":\"http://h/\"}\n");
/// ```
pub fn render_output(output: Output, records: &[Record], took: Duration) -> String {
    match output {
        Output::Table => format!("{}{}\n", table(records), summary(records, took)),
        Output::Json => records.iter().map(|r| format!("{}\n", json(r))).collect(),
        Output::Csv => {
            let mut buf = Vec::new();
            let _ = write_csv(&mut buf, records);
            String::from_utf8_lossy(&buf).into_owned()
        }
    }
}

/// [`render_output`] with the format named as on the command line (`table`, `json`,
/// `csv`; anything else is `table`).
pub fn render(output: &str, records: &[Record], took: Duration) -> String {
    let o = Output::from_str(output, true).unwrap_or(Output::Table);
    render_output(o, records, took)
}

/// One record as a JSON object.
fn json(r: &Record) -> serde_json::Value {
    serde_json::json!({
        "url": r.url,
        "status": r.result.as_ref().ok(),
        "bytes": r.bytes,
        "time_ms": (r.elapsed.as_secs_f64() * 1e3).round(),
        "error": match &r.result {
            Ok(s) if !(200..300).contains(s) => Some(format!("HTTP status {s}")),
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        },
    })
}

fn write_csv(out: &mut impl std::io::Write, records: &[Record]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(["url", "status", "bytes", "time_ms", "error"])?;
    for r in records {
        let j = json(r);
        let status = j["status"].as_u64().map(|s| s.to_string()).unwrap_or_default();
        let error = j["error"].as_str().unwrap_or("").to_string();
        w.write_record([r.url.clone(), status, r.bytes.to_string(), j["time_ms"].to_string(), error])?;
    }
    w.flush()
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

fn demo(a: &Args, timeout: Duration) -> i32 {
    let site = match Site::start(Duration::from_millis(a.delay_ms)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("crawler: cannot start the embedded site: {e}");
            return 1;
        }
    };
    let client = Client::new().timeout(timeout);
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
