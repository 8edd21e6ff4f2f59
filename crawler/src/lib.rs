//! greenhub's flagship demo: gevent's concurrent web crawler.
//!
//! ```python
//! import gevent.monkey; gevent.monkey.patch_all()
//! def get_page(url):
//!     print(f"GET: {url}")
//!     data = urllib.request.urlopen(url).read()
//!     print(f"{len(data)} bytes received from {url}")
//! gevent.joinall([gevent.spawn(get_page, url) for url in urls])
//! ```
//!
//! Here the same shape runs on greenhub's cooperative sockets and DNS (no monkey
//! patching): [`Client`] is a small HTTP/1.1 client (httparse + rustls), [`crawl()`]
//! fetches with a pool of greenlets following the links [`links()`] finds with a real HTML
//! tokenizer, and [`Site`] is the embedded site of the default demo.
//!
//! ```
//! use std::time::Duration;
//! use greenhub_crawler::{Client, Site};
//! let site = Site::start(Duration::from_millis(10)).unwrap();
//! let page = Client::new().get(&site.url("/page/3")).unwrap();
//! assert_eq!(page.status, 200);
//! assert_eq!(page.body, greenhub_crawler::site::page_body(3));
//! site.stop();
//! ```

pub mod cli;
pub mod crawl;
mod fetch;
pub mod links;
pub mod site;

pub use crawl::{crawl, fetch_and_report, table, Record};
pub use fetch::{Client, FetchError, Page};
pub use links::links;
pub use site::Site;
