//! A small blocking-style HTTP/1.1 client over greenhub's cooperative sockets.
//!
//! `httparse` parses status lines, headers and chunk sizes; `rustls` (with the
//! webpki roots) does https. Bodies may be `Content-Length`, chunked, or delimited by
//! the connection closing. Redirects are followed up to a limit, with loop detection.
//! Every failure is a [`FetchError`], never a panic.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use greenhub_io::net::TcpStream;
use greenhub_runtime::with_timeout;
use url::Url;

/// Largest header block accepted.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest body accepted (a crawler does not need more).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL could not be parsed or has no host.
    #[error("bad URL {0:?}: {1}")]
    BadUrl(String, String),
    /// Only http and https are supported.
    #[error("unsupported scheme {0:?}")]
    Scheme(String),
    /// The host name does not resolve.
    #[error("unknown host {0}")]
    UnknownHost(String),
    /// Nothing listens at the address.
    #[error("connection refused by {0}")]
    Refused(String),
    /// The whole request (connect, TLS, response) took longer than the timeout.
    #[error("timed out after {0:.1?}")]
    Timeout(Duration),
    /// The TLS handshake or record layer failed.
    #[error("TLS error: {0}")]
    Tls(String),
    /// The response is not valid HTTP.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The connection closed before the whole body arrived.
    #[error("truncated response: {0}")]
    Truncated(String),
    /// A redirect led back to a URL already visited in this chain.
    #[error("redirect loop at {0}")]
    RedirectLoop(String),
    /// More redirects than allowed.
    #[error("too many redirects ({0})")]
    TooManyRedirects(usize),
    /// Any other I/O error.
    #[error("I/O error: {0}")]
    Io(String),
}

/// A fetched page.
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL asked for.
    pub url: Url,
    /// The URL that answered (after redirects).
    pub final_url: Url,
    /// HTTP status code.
    pub status: u16,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Redirects followed.
    pub redirects: usize,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
}

/// An HTTP client: timeouts, redirects, TLS configuration.
///
/// ```no_run
/// let page = greenhub_crawler::Client::new().get("https://example.com/").unwrap();
/// println!("{} bytes received from {}", page.body.len(), page.url);
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
    max_redirects: usize,
    /// `http://host:port` proxies for http and https URLs (from `HTTP_PROXY`,
    /// `HTTPS_PROXY`, `NO_PROXY`, or [`Client::proxy`]).
    proxies: Proxies,
    /// Idle keep-alive connections, per (https, host, port); shared by the clones.
    idle: Rc<RefCell<HashMap<ConnKey, Vec<Conn>>>>,
}

/// Idle connections kept per host.
const IDLE_PER_HOST: usize = 64;

type ConnKey = (bool, String, u16);

/// The proxies of a client.
#[derive(Clone, Debug, Default)]
struct Proxies {
    http: Option<(String, u16)>,
    https: Option<(String, u16)>,
    /// Hosts (or `.suffix`es) reached directly; `*` for all.
    no_proxy: Vec<String>,
}

impl Proxies {
    fn from_env() -> Proxies {
        let var = |names: [&str; 2]| names.iter().find_map(|n| std::env::var(n).ok()).filter(|v| !v.is_empty());
        Proxies {
            http: var(["HTTP_PROXY", "http_proxy"]).and_then(|v| parse_proxy(&v)),
            https: var(["HTTPS_PROXY", "https_proxy"]).and_then(|v| parse_proxy(&v)),
            no_proxy: var(["NO_PROXY", "no_proxy"])
                .map(|v| v.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect())
                .unwrap_or_default(),
        }
    }

    fn for_url(&self, https: bool, host: &str) -> Option<&(String, u16)> {
        let host = host.to_ascii_lowercase();
        let direct = self
            .no_proxy
            .iter()
            .any(|n| n == "*" || *n == host || host.ends_with(&format!(".{}", n.trim_start_matches('.'))));
        if direct {
            return None;
        }
        if https {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }
    }
}

/// `http://host:port` (or `host:port`) as a proxy address.
fn parse_proxy(v: &str) -> Option<(String, u16)> {
    let with_scheme = if v.contains("://") { v.to_string() } else { format!("http://{v}") };
    let u = Url::parse(&with_scheme).ok()?;
    (u.scheme() == "http").then(|| (u.host_str().unwrap_or_default().to_string(), u.port().unwrap_or(80)))
}

/// One connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conn::Plain(_) => "Conn::Plain",
            Conn::Tls(_) => "Conn::Tls",
        })
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    /// A client trusting the webpki root certificates; 10 s timeout, 5 redirects.
    pub fn new() -> Client {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        Client::with_roots(roots)
    }

    /// A client trusting exactly `roots` (tests use a generated certificate).
    pub fn with_roots(roots: rustls::RootCertStore) -> Client {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Client {
            tls: Arc::new(config),
            timeout: Duration::from_secs(10),
            max_redirects: 5,
            proxies: Proxies::from_env(),
            idle: Rc::default(),
        }
    }

    /// Limits each fetch (all redirects included) to `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// Sends http requests through the proxy at `http_proxy` and https ones through
    /// `https_proxy` (a `CONNECT` tunnel), both `http://host:port`; `None` goes direct.
    /// `Client::new` reads them from `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY`.
    ///
    /// ```
    /// let c = greenhub_crawler::Client::new().proxy(Some("http://127.0.0.1:3128"), None);
    /// # drop(c);
    /// ```
    pub fn proxy(mut self, http_proxy: Option<&str>, https_proxy: Option<&str>) -> Client {
        self.proxies = Proxies {
            http: http_proxy.and_then(parse_proxy),
            https: https_proxy.and_then(parse_proxy),
            no_proxy: Vec::new(),
        };
        self
    }

    /// Follows at most `n` redirects.
    pub fn max_redirects(mut self, n: usize) -> Client {
        self.max_redirects = n;
        self
    }

    /// The per-fetch timeout.
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }

    /// Fetches `url` with `GET`, following redirects.
    pub fn get(&self, url: &str) -> Result<Page, FetchError> {
        let start = Url::parse(url).map_err(|e| FetchError::BadUrl(url.to_string(), e.to_string()))?;
        match with_timeout(self.timeout, || self.follow(start)) {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    fn follow(&self, start: Url) -> Result<Page, FetchError> {
        let mut url = start.clone();
        let mut seen = HashSet::new();
        for redirects in 0..=self.max_redirects {
            if !seen.insert(url.clone()) {
                return Err(FetchError::RedirectLoop(url.to_string()));
            }
            let resp = self.request(&url)?;
            if matches!(resp.status, 301 | 302 | 303 | 307 | 308) {
                if let Some(loc) = resp.location {
                    url = url.join(&loc).map_err(|e| FetchError::Malformed(format!("bad Location {loc:?}: {e}")))?;
                    continue;
                }
            }
            return Ok(Page {
                url: start,
                final_url: url,
                status: resp.status,
                body: resp.body,
                redirects,
                content_type: resp.content_type,
            });
        }
        Err(FetchError::TooManyRedirects(self.max_redirects))
    }

    fn request(&self, url: &Url) -> Result<RawResponse, FetchError> {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            s => return Err(FetchError::Scheme(s.to_string())),
        };
        let host = url.host_str().ok_or_else(|| FetchError::BadUrl(url.to_string(), "no host".into()))?;
        let port = url.port_or_known_default().unwrap_or(if https { 443 } else { 80 });
        // IPv6 literals come bracketed from the URL; the resolver wants them bare.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let proxy = self.proxies.for_url(https, bare);
        let mut path = url.path().to_string();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let host_header = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        // Through an http proxy the request line carries the whole URL.
        let target = if proxy.is_some() && !https { format!("http://{host_header}{path}") } else { path };
        let req = format!(
            "GET {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: greenhub-crawler/0.1\r\n\
             Accept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\r\n"
        );
        let key: ConnKey = (https, bare.to_string(), port);
        // An idle connection may have been closed by the server meanwhile: a failure
        // before any byte of the answer is retried once on a fresh one.
        let reused = self.idle.borrow_mut().get_mut(&key).and_then(Vec::pop);
        if let Some(mut conn) = reused {
            if let Ok(resp) = exchange(&mut conn, req.as_bytes()) {
                return Ok(self.keep(key, conn, resp));
            }
        }
        let mut conn = self.connect(https, bare, port, host, proxy)?;
        let resp = exchange(&mut conn, req.as_bytes())?;
        Ok(self.keep(key, conn, resp))
    }

    /// Puts `conn` back for reuse if its response allows it; gives the response.
    fn keep(&self, key: ConnKey, conn: Conn, resp: Exchange) -> RawResponse {
        if resp.reusable {
            let mut idle = self.idle.borrow_mut();
            let list = idle.entry(key).or_default();
            if list.len() < IDLE_PER_HOST {
                list.push(conn);
            }
        }
        resp.response
    }

    /// A new connection to `host:port` (through `proxy` if any), TLS if `https`.
    fn connect(
        &self,
        https: bool,
        bare: &str,
        port: u16,
        host: &str,
        proxy: Option<&(String, u16)>,
    ) -> Result<Conn, FetchError> {
        let (to_host, to_port) = proxy.map_or((bare, port), |(h, p)| (h.as_str(), *p));
        let tcp = TcpStream::connect((to_host, to_port)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => FetchError::UnknownHost(to_host.to_string()),
            io::ErrorKind::ConnectionRefused => FetchError::Refused(format!("{to_host}:{to_port}")),
            _ => FetchError::Io(e.to_string()),
        })?;
        let _ = tcp.set_nodelay(true);
        if !https {
            return Ok(Conn::Plain(tcp));
        }
        let mut tcp = tcp;
        if proxy.is_some() {
            tunnel(&mut tcp, host, port)?;
        }
        let name = rustls::pki_types::ServerName::try_from(bare.to_string())
            .map_err(|e| FetchError::Tls(format!("invalid server name {bare:?}: {e}")))?;
        let conn = rustls::ClientConnection::new(self.tls.clone(), name).map_err(|e| FetchError::Tls(e.to_string()))?;
        Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
    }
}

/// Opens a `CONNECT` tunnel to `host:port` through the proxy `tcp` is connected to.
fn tunnel(tcp: &mut TcpStream, host: &str, port: u16) -> Result<(), FetchError> {
    let req = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n");
    tcp.write_all(req.as_bytes()).map_err(io_error)?;
    let mut buf = Vec::new();
    loop {
        if read_more(tcp, &mut buf)? == 0 {
            return Err(FetchError::Malformed("the proxy closed the CONNECT tunnel".into()));
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(_)) if resp.code == Some(200) => return Ok(()),
            Ok(httparse::Status::Complete(_)) => {
                return Err(FetchError::Malformed(format!("the proxy refused CONNECT: {:?}", resp.code)))
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEADER_BYTES => {}
            Ok(httparse::Status::Partial) => return Err(FetchError::Malformed("proxy header too long".into())),
            Err(e) => return Err(FetchError::Malformed(format!("proxy: {e}"))),
        }
    }
}

/// A response and whether its connection may carry the next request.
struct Exchange {
    response: RawResponse,
    reusable: bool,
}

struct RawResponse {
    status: u16,
    location: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

fn io_error(e: io::Error) -> FetchError {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return FetchError::Tls(tls.to_string());
    }
    match e.kind() {
        io::ErrorKind::TimedOut => FetchError::Io("read timed out".into()),
        io::ErrorKind::UnexpectedEof => FetchError::Truncated("connection closed early".into()),
        _ => FetchError::Io(e.to_string()),
    }
}

/// Reads into `buf`; `Ok(0)` at end of stream. A TLS peer that closes without
/// close_notify counts as end of stream (many servers do it with `Connection: close`).
fn read_more<S: Read>(s: &mut S, buf: &mut Vec<u8>) -> Result<usize, FetchError> {
    let mut chunk = [0u8; 16 * 1024];
    match s.read(&mut chunk) {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(n)
        }
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && e.get_ref().is_none() => Ok(0),
        Err(e) => Err(io_error(e)),
    }
}

/// Sends `req` and reads the response; gzip and deflate bodies come back decoded.
fn exchange<S: Read + Write>(s: &mut S, req: &[u8]) -> Result<Exchange, FetchError> {
    s.write_all(req).and_then(|()| s.flush()).map_err(io_error)?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let (status, location, content_type, length, chunked, head_len, keep_alive, encoding) = loop {
        if buf.is_empty() && read_more(s, &mut buf)? == 0 {
            return Err(if buf.is_empty() {
                FetchError::Malformed("empty response".into())
            } else {
                FetchError::Malformed("connection closed inside the headers".into())
            });
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = resp.code.unwrap_or(0);
                let mut location = None;
                let mut content_type = None;
                let mut length = None;
                let mut chunked = false;
                let mut keep_alive = resp.version == Some(1); // HTTP/1.1 keeps by default
                let mut encoding = None;
                for h in resp.headers.iter() {
                    let value = String::from_utf8_lossy(h.value).trim().to_string();
                    if h.name.eq_ignore_ascii_case("location") {
                        location = Some(value);
                    } else if h.name.eq_ignore_ascii_case("content-type") {
                        content_type = Some(value);
                    } else if h.name.eq_ignore_ascii_case("content-length") {
                        length = Some(
                            value
                                .parse::<usize>()
                                .map_err(|_| FetchError::Malformed(format!("bad Content-Length {value:?}")))?,
                        );
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        chunked = value.to_ascii_lowercase().split(',').any(|t| t.trim() == "chunked");
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        keep_alive &= !value.to_ascii_lowercase().split(',').any(|t| t.trim() == "close");
                    } else if h.name.eq_ignore_ascii_case("content-encoding") {
                        encoding = Some(value.to_ascii_lowercase());
                    }
                }
                if (100..200).contains(&status) && status != 101 {
                    // An interim response (100 Continue, 103 Early Hints): the real
                    // one follows on the same connection.
                    buf.drain(..len);
                    continue;
                }
                break (status, location, content_type, length, chunked, len, keep_alive, encoding);
            }
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEADER_BYTES => {
                return Err(FetchError::Malformed("header block too long".into()));
            }
            Ok(httparse::Status::Partial) => {
                if read_more(s, &mut buf)? == 0 {
                    return Err(FetchError::Malformed("connection closed inside the headers".into()));
                }
            }
            Err(e) => return Err(FetchError::Malformed(e.to_string())),
        }
    };
    let rest = buf.split_off(head_len);
    // Reusable only when the body's end is known from its length and nothing follows it
    // (a chunked body's trailer and an end-of-stream body are not worth the risk).
    let no_body = status == 204 || status == 304 || (100..200).contains(&status);
    let reusable = keep_alive && !chunked && (no_body && rest.is_empty() || length.is_some_and(|n| rest.len() <= n));
    let body = if no_body {
        Vec::new()
    } else if chunked {
        read_chunked(s, rest)?
    } else if let Some(n) = length {
        read_exactly(s, rest, n)?
    } else {
        read_to_end(s, rest)?
    };
    let body = decode(encoding.as_deref(), body)?;
    Ok(Exchange { response: RawResponse { status, location, content_type, body }, reusable })
}

/// Undoes a `Content-Encoding` of gzip or deflate (zlib, or raw deflate as some servers
/// send), at most `MAX_BODY_BYTES` of output.
fn decode(encoding: Option<&str>, body: Vec<u8>) -> Result<Vec<u8>, FetchError> {
    fn inflate(r: impl Read, what: &str) -> Result<Vec<u8>, FetchError> {
        let mut out = Vec::new();
        r.take(MAX_BODY_BYTES as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| FetchError::Malformed(format!("bad {what} body: {e}")))?;
        if out.len() > MAX_BODY_BYTES {
            return Err(FetchError::Malformed("decoded body too large".into()));
        }
        Ok(out)
    }
    match encoding {
        None | Some("identity") => Ok(body),
        Some("gzip" | "x-gzip") => inflate(flate2::read::GzDecoder::new(&body[..]), "gzip"),
        Some("deflate") => inflate(flate2::read::ZlibDecoder::new(&body[..]), "deflate")
            .or_else(|_| inflate(flate2::read::DeflateDecoder::new(&body[..]), "deflate")),
        Some(other) => Err(FetchError::Malformed(format!("unsupported Content-Encoding {other:?}"))),
    }
}

fn read_exactly<S: Read>(s: &mut S, mut body: Vec<u8>, n: usize) -> Result<Vec<u8>, FetchError> {
    if n > MAX_BODY_BYTES {
        return Err(FetchError::Malformed(format!("body of {n} bytes is too large")));
    }
    while body.len() < n {
        if read_more(s, &mut body)? == 0 {
            return Err(FetchError::Truncated(format!("got {} of {n} bytes", body.len())));
        }
    }
    body.truncate(n);
    Ok(body)
}

fn read_to_end<S: Read>(s: &mut S, mut body: Vec<u8>) -> Result<Vec<u8>, FetchError> {
    while read_more(s, &mut body)? > 0 {
        if body.len() > MAX_BODY_BYTES {
            return Err(FetchError::Malformed("body too large".into()));
        }
    }
    Ok(body)
}

fn read_chunked<S: Read>(s: &mut S, mut raw: Vec<u8>) -> Result<Vec<u8>, FetchError> {
    let mut body = Vec::new();
    loop {
        let (consumed, size) = loop {
            match httparse::parse_chunk_size(&raw) {
                Ok(httparse::Status::Complete((consumed, size))) => {
                    // Checked before any arithmetic: a size near u64::MAX must not wrap.
                    let room = (MAX_BODY_BYTES - body.len()) as u64;
                    if size > room {
                        return Err(FetchError::Malformed(format!("chunk of {size} bytes is too large")));
                    }
                    break (consumed, size as usize);
                }
                Ok(httparse::Status::Partial) => {
                    if read_more(s, &mut raw)? == 0 {
                        return Err(FetchError::Truncated(format!(
                            "closed inside chunked body after {} bytes",
                            body.len()
                        )));
                    }
                }
                Err(_) => return Err(FetchError::Malformed("bad chunk size".into())),
            }
        };
        if size == 0 {
            return Ok(body); // trailers, if any, are ignored
        }
        while raw.len() < consumed + size + 2 {
            if read_more(s, &mut raw)? == 0 {
                return Err(FetchError::Truncated(format!("closed inside a chunk after {} bytes", body.len())));
            }
        }
        if &raw[consumed + size..consumed + size + 2] != b"\r\n" {
            return Err(FetchError::Malformed("chunk not followed by CRLF".into()));
        }
        body.extend_from_slice(&raw[consumed..consumed + size]);
        raw.drain(..consumed + size + 2);
    }
}
