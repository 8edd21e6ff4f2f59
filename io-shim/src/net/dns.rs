//! Cooperative name resolution: `getaddrinfo` runs on the threadpool, never on a hub
//! thread (gevent's default `thread` resolver).
//!
//! `GREENHUB_RESOLVER` selects the resolver: `thread` (default) runs each lookup on
//! `threadpool::try_spawn_blocking`, so other greenlets run meanwhile and lookups proceed in
//! parallel (the pool grows to 512 threads, so 200 slow lookups take about as long as
//! one); `block` calls `getaddrinfo` on the hub thread itself, blocking every greenlet of
//! the thread (gevent's `block` resolver: for debugging, or for programs with a single
//! greenlet).

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs as _};
use std::sync::OnceLock;

use greenhub_runtime::threadpool::try_spawn_blocking;

/// Which resolver `GREENHUB_RESOLVER` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolver {
    Thread,
    Block,
}

fn resolver() -> Resolver {
    static R: OnceLock<Resolver> = OnceLock::new();
    *R.get_or_init(|| match std::env::var("GREENHUB_RESOLVER").as_deref() {
        Ok("block") => Resolver::Block,
        _ => Resolver::Thread,
    })
}

/// Resolves `host` (a name or an address literal) with `port`, cooperatively.
pub(crate) fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    // Address literals need no lookup (and no thread).
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if let Some(ip) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).and_then(|h| h.parse::<IpAddr>().ok()) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.to_string();
    let lookup = move || -> io::Result<Vec<SocketAddr>> {
        match (name.as_str(), port).to_socket_addrs() {
            Ok(addrs) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                if addrs.is_empty() {
                    Err(unknown(&name, "no addresses"))
                } else {
                    Ok(addrs)
                }
            }
            // getaddrinfo's own failures (EAI_NONAME, EAI_AGAIN, ...) come back as
            // uncategorised errors; a name that does not resolve is NotFound for us.
            Err(e) if e.raw_os_error().is_none() => Err(unknown(&name, &e.to_string())),
            Err(e) => Err(e),
        }
    };
    match resolver() {
        Resolver::Thread => try_spawn_blocking(lookup)?,
        Resolver::Block => lookup(),
    }
}

fn unknown(name: &str, why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("unknown host {name:?}: {why}"))
}

/// Every address of `host`, resolved cooperatively (other greenlets run meanwhile).
/// An unknown host is an error of kind [`io::ErrorKind::NotFound`].
///
/// ```
/// let ips = greenhub::net::lookup_host("localhost").unwrap();
/// assert!(ips.iter().any(|ip| ip.is_loopback()));
/// let err = greenhub::net::lookup_host("no-such-host.invalid").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
/// ```
pub fn lookup_host(host: &str) -> io::Result<Vec<IpAddr>> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for addr in resolve(host, 0)? {
        if !ips.contains(&addr.ip()) {
            ips.push(addr.ip());
        }
    }
    Ok(ips)
}

/// The first IPv4 address of `host` (gevent's `gethostbyname`).
///
/// ```
/// let ip = greenhub::net::gethostbyname("localhost").unwrap();
/// assert_eq!(ip, std::net::IpAddr::from([127, 0, 0, 1]));
/// ```
pub fn gethostbyname(host: &str) -> io::Result<IpAddr> {
    lookup_host(host)?.into_iter().find(IpAddr::is_ipv4).ok_or_else(|| unknown(host, "no IPv4 address"))
}
