//! The crawler against local servers: the embedded site, its fault pages, a TLS server
//! with a generated certificate, refused and unknown hosts.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use greenhub_crawler::site::{index_body, page_body, PAGES};
use greenhub_crawler::{cli, crawl, Client, FetchError, Site};
use greenhub_io::net::{TcpListener, TcpStream};

fn site() -> Site {
    Site::start(Duration::from_millis(100)).unwrap()
}

#[test]
fn the_embedded_site_is_fetched_whole_and_concurrency_pays() {
    let site = site();
    let client = Client::new();
    let (sync_records, sync) = cli::crawl_site(&site, &client, false);
    let (records, concurrent) = cli::crawl_site(&site, &client, true);
    for recs in [&sync_records, &records] {
        assert_eq!(recs.len(), PAGES + 1);
        assert!(recs.iter().all(|r| r.result == Ok(200)), "{recs:?}");
        assert_eq!(recs[0].bytes, index_body().len());
        let mut page_bytes: Vec<usize> = recs[1..].iter().map(|r| r.bytes).collect();
        let mut want: Vec<usize> = (1..=PAGES).map(|n| page_body(n).len()).collect();
        page_bytes.sort();
        want.sort();
        assert_eq!(page_bytes, want);
    }
    let speedup = sync.as_secs_f64() / concurrent.as_secs_f64();
    assert!(speedup >= 8.0, "sync {sync:?} async {concurrent:?}: only {speedup:.1}x");
    site.stop();
}

#[test]
fn page_bodies_arrive_byte_exact() {
    let site = site();
    let client = Client::new();
    for n in [1, 7, 20] {
        let page = client.get(&site.url(&format!("/page/{n}"))).unwrap();
        assert_eq!(page.status, 200);
        assert!(page.body == page_body(n), "page {n} differs");
    }
    assert_eq!(client.get(&site.url("/page/99")).unwrap().status, 404);
    site.stop();
}

#[test]
fn chunked_bodies_are_decoded() {
    let site = site();
    let page = Client::new().get(&site.url("/chunked")).unwrap();
    assert_eq!(page.body, b"hello, chunked world");
    site.stop();
}

#[test]
fn a_redirect_chain_is_followed_and_a_loop_is_an_error() {
    let site = site();
    let client = Client::new();
    let page = client.get(&site.url("/redirect/3")).unwrap();
    assert_eq!(page.redirects, 4);
    assert_eq!(page.final_url.path(), "/page/1");
    assert_eq!(page.body, page_body(1));
    assert_eq!(client.get(&site.url("/loop")).unwrap_err(), FetchError::RedirectLoop(site.url("/loop")));
    assert_eq!(
        client.clone().max_redirects(2).get(&site.url("/redirect/5")).unwrap_err(),
        FetchError::TooManyRedirects(2)
    );
    site.stop();
}

#[test]
fn garbage_truncation_and_stalls_are_errors_not_crashes() {
    let site = site();
    let client = Client::new().timeout(Duration::from_millis(300));
    assert!(matches!(client.get(&site.url("/garbage")), Err(FetchError::Malformed(_))));
    assert_eq!(client.get(&site.url("/truncated")).unwrap_err(), FetchError::Truncated("got 9 of 1000 bytes".into()));
    let t = Instant::now();
    assert_eq!(client.get(&site.url("/stall")).unwrap_err(), FetchError::Timeout(Duration::from_millis(300)));
    assert!(t.elapsed() < Duration::from_secs(2));
    // The crawl goes on after failures and counts them.
    let urls: Vec<String> = ["/page/2", "/garbage", "/truncated", "/page/3"].iter().map(|p| site.url(p)).collect();
    let records = crawl(&client, &urls, 4, 0);
    assert_eq!(records.iter().filter(|r| r.result.is_err()).count(), 2);
    assert_eq!(records.iter().filter(|r| r.result == Ok(200)).count(), 2);
    site.stop();
}

#[test]
fn refused_and_unknown_hosts() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = Client::new();
    assert_eq!(
        client.get(&format!("http://127.0.0.1:{port}/")).unwrap_err(),
        FetchError::Refused(format!("127.0.0.1:{port}"))
    );
    assert_eq!(
        client.get("http://no-such-host.invalid/").unwrap_err(),
        FetchError::UnknownHost("no-such-host.invalid".into())
    );
    assert!(matches!(client.get("ftp://example.com/"), Err(FetchError::Scheme(_))));
    assert!(matches!(client.get("not a url"), Err(FetchError::BadUrl(..))));
}

#[test]
fn depth_follows_same_host_links_once() {
    let site = site();
    let records = crawl(&Client::new(), &[site.url("/")], 5, 1);
    assert_eq!(records.len(), PAGES + 1);
    assert!(records.iter().all(|r| r.result == Ok(200)));
    site.stop();
}

/// A one-shot-per-connection https server with a certificate for `localhost`.
/// Reads a request head (up to the blank line); `None` if the peer closed first.
fn read_head(s: &mut impl Read) -> Option<Vec<u8>> {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    Some(req)
}

fn tls_server() -> (u16, rustls::RootCertStore, greenhub_runtime::Greenlet<()>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = greenhub_runtime::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { return };
            let config = config.clone();
            greenhub_runtime::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                if read_head(&mut tls).is_none() {
                    return;
                }
                let body = b"secret greenlets";
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = tls.write_all(head.as_bytes()).and_then(|()| tls.write_all(body));
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (port, roots, server)
}

#[test]
fn https_against_a_local_tls_server() {
    let (port, roots, server) = tls_server();
    let page = Client::with_roots(roots).get(&format!("https://localhost:{port}/")).unwrap();
    assert_eq!(page.status, 200);
    assert_eq!(page.body, b"secret greenlets");
    // A client that does not trust the certificate gets a TLS error, not a crash.
    let err = Client::new().get(&format!("https://localhost:{port}/")).unwrap_err();
    assert!(matches!(err, FetchError::Tls(_)), "{err:?}");
    server.kill();
}

#[test]
fn a_plain_http_server_nobody_here_wrote_to_test_eof_bodies() {
    // A response without Content-Length or chunking ends at EOF.
    let (url, server) = one_shot(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
    let page = Client::new().get(&url).unwrap();
    assert_eq!(page.body, b"until the end");
    server.join();
}

/// Serves `response` once to the first client, after reading its request.
fn one_shot(response: &'static [u8]) -> (String, greenhub_runtime::Greenlet<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = greenhub_runtime::spawn(move || {
        let (mut s, _): (TcpStream, _) = listener.accept().unwrap();
        let _ = read_head(&mut s);
        let _ = s.write_all(response);
    });
    (format!("http://{addr}/"), server)
}

#[test]
fn a_chunk_size_near_the_maximum_is_a_clear_error() {
    for size in ["ffffffffffffffff", "fffffffffffffff0", "4000001"] {
        let resp: &'static [u8] = Box::leak(
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nabc\r\n0\r\n\r\n")
                .into_bytes()
                .into(),
        );
        let (url, server) = one_shot(resp);
        match Client::new().get(&url) {
            Err(FetchError::Malformed(m)) => assert!(m.contains("too large"), "{size}: {m}"),
            other => panic!("{size}: {other:?}"),
        }
        server.join();
    }
}

#[test]
fn an_interim_100_continue_is_skipped_for_the_final_response() {
    let (url, server) = one_shot(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    );
    let page = Client::new().get(&url).unwrap();
    assert_eq!((page.status, page.body.as_slice()), (200, &b"hello"[..]));
    server.join();
}

#[test]
fn status_classes_and_the_exit_code_are_honest() {
    let site = site();
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}/")
    };
    let args = |urls: &[String]| urls.to_vec();
    // All 2xx: exit 0 (a real-URL crawl and the demo agree).
    assert_eq!(cli::main(&args(&[site.url("/page/1"), site.url("/redirect/2")])), 0);
    // A 404 and a refused connection: counted apart, exit 1.
    let urls = [site.url("/page/1"), site.url("/nope"), refused.clone()];
    let records = crawl(&Client::new(), &urls, 4, 0);
    let classes: Vec<_> = records.iter().map(|r| (r.url.clone(), r.class())).collect();
    use greenhub_crawler::crawl::Class;
    assert_eq!(
        classes,
        [(site.url("/nope"), Class::Http), (site.url("/page/1"), Class::Ok), (refused.clone(), Class::Failed)]
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(cli::main(&args(&urls)), 1);
    let t = greenhub_crawler::table(&records);
    assert!(t.contains("404") && t.contains("failed"), "{t}");
    site.stop();
}

#[test]
fn the_cli_parses_with_clap_and_exits_with_documented_codes() {
    assert_eq!(cli::main(&["--help".to_string()]), 0);
    assert_eq!(cli::main(&["--bogus".to_string()]), 2);
    assert_eq!(cli::main(&["--concurrency".to_string(), "0".to_string()]), 2);
    let site = site();
    let args: Vec<String> =
        [site.url("/"), "--quiet".into(), "--output".into(), "json".into(), "--depth".into(), "1".into()]
            .into_iter()
            .collect();
    assert_eq!(cli::main(&args), 0);
    site.stop();
}

#[test]
fn max_pages_per_host_and_host_scope_bound_the_crawl() {
    use greenhub_crawler::crawl::{crawl_with, CrawlOptions, Progress};
    let site = site();
    let base = CrawlOptions { depth: 1, progress: Progress::Quiet, ..CrawlOptions::default() };
    let all = crawl_with(&Client::new(), &[site.url("/")], &base);
    assert_eq!(all.len(), 1 + PAGES);
    let capped = crawl_with(&Client::new(), &[site.url("/")], &CrawlOptions { max_pages: Some(5), ..base.clone() });
    assert_eq!(capped.len(), 5);
    // One fetch at a time for the host: 6 pages of 100 ms take at least 0.5 s.
    let t = Instant::now();
    let polite = crawl_with(
        &Client::new(),
        &[site.url("/")],
        &CrawlOptions { per_host: Some(1), max_pages: Some(6), ..base.clone() },
    );
    assert_eq!(polite.len(), 6);
    assert!(t.elapsed() >= Duration::from_millis(500), "{:?}", t.elapsed());
    // JSON lines: url, status, bytes, error.
    let json = greenhub_crawler::cli::render("json", &capped, Duration::ZERO);
    assert_eq!(json.lines().count(), 5);
    assert!(json.lines().all(|l| l.contains("\"status\":200") && l.contains("\"error\":null")), "{json}");
    let csv = greenhub_crawler::cli::render("csv", &capped, Duration::ZERO);
    assert!(csv.starts_with("url,status,bytes,time_ms,error\n"), "{csv}");
    assert_eq!(csv.lines().count(), 6);
    site.stop();
}

/// A keep-alive server: answers every request on a connection with `body`, encoded as
/// `encoding` says, and counts the connections it accepted.
fn keep_alive_server(
    encoding: Option<&'static str>,
) -> (std::net::SocketAddr, std::rc::Rc<std::cell::Cell<usize>>, greenhub_runtime::Greenlet<()>) {
    use std::io::Write as _;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = std::rc::Rc::new(std::cell::Cell::new(0));
    let c = conns.clone();
    let server = greenhub_runtime::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            c.set(c.get() + 1);
            // (Compressing in a debug build takes more than a default 256 KiB stack.)
            greenhub_runtime::Builder::new().stack_size(8 << 20).spawn(move || loop {
                if read_head(&mut s).is_none() {
                    return;
                }
                let plain = b"<a href=\"/x\">compressed greenlets</a>".repeat(20);
                let (body, header) = match encoding {
                    Some("gzip") => {
                        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                        e.write_all(&plain).unwrap();
                        (e.finish().unwrap(), "Content-Encoding: gzip\r\n")
                    }
                    Some("deflate") => {
                        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                        e.write_all(&plain).unwrap();
                        (e.finish().unwrap(), "Content-Encoding: deflate\r\n")
                    }
                    _ => (plain, ""),
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n{header}Content-Length: {}\r\n\r\n",
                    body.len()
                );
                if s.write_all(head.as_bytes()).and_then(|()| s.write_all(&body)).is_err() {
                    return;
                }
            });
        }
    });
    (addr, conns, server)
}

#[test]
fn connections_are_reused_per_host_and_bodies_are_decompressed() {
    let (addr, conns, server) = keep_alive_server(None);
    let client = Client::new();
    for i in 0..5 {
        let page = client.get(&format!("http://{addr}/page/{i}")).unwrap();
        assert_eq!(page.body.len(), 37 * 20);
    }
    assert_eq!(conns.get(), 1, "five requests on one kept-alive connection");
    server.kill();
    for enc in ["gzip", "deflate"] {
        let (addr, _, server) = keep_alive_server(Some(enc));
        // Decoded inside a greenlet with the default stack, as the crawler does.
        let url = format!("http://{addr}/");
        let page = greenhub_runtime::spawn(move || Client::new().get(&url)).get().unwrap().unwrap();
        assert_eq!(page.body, b"<a href=\"/x\">compressed greenlets</a>".repeat(20), "{enc}");
        server.kill();
    }
}

#[test]
fn http_goes_through_the_proxy_and_https_through_a_connect_tunnel() {
    use std::io::Write as _;
    // A proxy that records what it is asked and answers http requests itself, and pipes
    // CONNECT tunnels to their target.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = listener.local_addr().unwrap();
    let seen: std::rc::Rc<std::cell::RefCell<Vec<String>>> = Default::default();
    let s2 = seen.clone();
    let proxy_server = greenhub_runtime::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { return };
            let seen = s2.clone();
            greenhub_runtime::spawn(move || {
                let Some(req) = read_head(&mut c) else { return };
                let line = String::from_utf8_lossy(&req).lines().next().unwrap_or("").to_string();
                seen.borrow_mut().push(line.clone());
                if let Some(target) = line.strip_prefix("CONNECT ").and_then(|r| r.split(' ').next()) {
                    let up = TcpStream::connect(target).unwrap();
                    c.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
                    let (mut a, mut b) = (c.try_clone().unwrap(), up.try_clone().unwrap());
                    let (mut c2, mut up2) = (c, up);
                    let there = greenhub_runtime::spawn(move || std::io::copy(&mut a, &mut up2));
                    let _ = std::io::copy(&mut b, &mut c2);
                    there.kill();
                } else {
                    let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nproxied");
                }
            });
        }
    });
    let proxy_url = format!("http://{proxy}");
    let client = Client::new().proxy(Some(&proxy_url), None);
    let page = client.get("http://example.invalid:8080/some/path?q=1").unwrap();
    assert_eq!(page.body, b"proxied");
    assert_eq!(seen.borrow()[0], "GET http://example.invalid:8080/some/path?q=1 HTTP/1.1");
    // https: a CONNECT tunnel to the local TLS server, then TLS end to end.
    let (port, roots, tls) = tls_server();
    let client = Client::with_roots(roots).proxy(None, Some(&proxy_url));
    let page = client.get(&format!("https://localhost:{port}/")).unwrap();
    assert_eq!(page.body, b"secret greenlets");
    assert_eq!(seen.borrow()[1], format!("CONNECT localhost:{port} HTTP/1.1"));
    tls.kill();
    proxy_server.kill();
}
