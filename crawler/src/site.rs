//! The embedded site the default demo crawls: served by greenlets on the same hub.
//!
//! `/` is an index linking to `/page/1` … `/page/20` (sizes vary); each page is
//! answered after a delay (200 ms by default) so that sequential and concurrent crawls
//! differ the way they do on the real web. A few *fault pages*, not linked from the
//! index, exercise the client's error handling: `/chunked`, `/redirect/N` (a chain of N
//! redirects ending at `/page/1`), `/loop` (a redirect loop), `/garbage` (not HTTP),
//! `/truncated` (a body shorter than its Content-Length), `/stall` (never answers).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use greenhub_io::net::TcpStream;
use greenhub_io::server::{ServerHandle, StreamServer};
use greenhub_runtime::sleep;

/// Number of pages linked from the index.
pub const PAGES: usize = 20;

/// The size in bytes of page `n` (1-based): between 1 KB and about 60 KB.
pub fn page_size(n: usize) -> usize {
    1_000 + (n * 7_919) % 60_000
}

/// The body of page `n`.
pub fn page_body(n: usize) -> Vec<u8> {
    let head = format!("<html><head><title>page {n}</title></head><body><p>Page {n}.</p><pre>");
    let tail = "</pre></body></html>\n";
    let size = page_size(n);
    let mut body = head.into_bytes();
    let filler = size.saturating_sub(body.len() + tail.len());
    body.extend((0..filler).map(|i| b'a' + ((i * 7 + n) % 26) as u8));
    body.extend_from_slice(tail.as_bytes());
    body
}

/// The index page.
pub fn index_body() -> Vec<u8> {
    let mut s = String::from("<html><head><title>greenhub demo site</title></head><body><ul>\n");
    for n in 1..=PAGES {
        s.push_str(&format!("<li><a href=\"/page/{n}\">page {n}</a></li>\n"));
    }
    s.push_str("</ul></body></html>\n");
    s.into_bytes()
}

/// A running embedded site.
#[derive(Debug)]
pub struct Site {
    server: ServerHandle,
}

impl Site {
    /// Starts the site on 127.0.0.1 (a free port) with pages delayed by `delay`.
    pub fn start(delay: Duration) -> io::Result<Site> {
        let server = StreamServer::bind("127.0.0.1:0", move |conn: TcpStream, _peer: SocketAddr| {
            let _ = serve(conn, delay);
        })?
        .start()?;
        Ok(Site { server })
    }

    /// The site's address.
    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// Stops the site (its handlers get 100 ms, then are killed).
    pub fn stop(&self) {
        self.server.stop(Duration::from_millis(100));
    }
}

/// Reads one request head; returns its path.
fn read_request(conn: &mut TcpStream) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => return Ok(req.path.map(String::from)),
            Ok(httparse::Status::Partial) if buf.len() < 64 * 1024 => {}
            _ => return Ok(None),
        }
    }
}

fn respond(conn: &mut TcpStream, status: &str, extra: &str, body: &[u8]) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)
}

fn serve(mut conn: TcpStream, delay: Duration) -> io::Result<()> {
    let Some(path) = read_request(&mut conn)? else { return Ok(()) };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => respond(&mut conn, "200 OK", "", &index_body()),
        ["page", n] => match n.parse::<usize>() {
            Ok(n) if (1..=PAGES).contains(&n) => {
                sleep(delay);
                respond(&mut conn, "200 OK", "", &page_body(n))
            }
            _ => respond(&mut conn, "404 Not Found", "", b"no such page\n"),
        },
        ["chunked"] => {
            conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")?;
            for part in [&b"hello, "[..], b"chunked ", b"world"] {
                conn.write_all(format!("{:x}\r\n", part.len()).as_bytes())?;
                conn.write_all(part)?;
                conn.write_all(b"\r\n")?;
                sleep(Duration::from_millis(1));
            }
            conn.write_all(b"0\r\n\r\n")
        }
        ["redirect", n] => match n.parse::<usize>() {
            Ok(0) => respond(&mut conn, "302 Found", "Location: /page/1\r\n", b""),
            Ok(n) => respond(&mut conn, "302 Found", &format!("Location: /redirect/{}\r\n", n - 1), b""),
            Err(_) => respond(&mut conn, "404 Not Found", "", b""),
        },
        ["loop"] => respond(&mut conn, "301 Moved Permanently", "Location: /loop-b\r\n", b""),
        ["loop-b"] => respond(&mut conn, "301 Moved Permanently", "Location: /loop\r\n", b""),
        ["garbage"] => conn.write_all(b"THIS IS NOT HTTP AT ALL\r\n\r\n"),
        ["truncated"] => {
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nonly this")
        }
        ["stall"] => {
            sleep(Duration::from_secs(3600));
            Ok(())
        }
        _ => respond(&mut conn, "404 Not Found", "", b"not found\n"),
    }
}
