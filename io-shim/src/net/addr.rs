//! `ToSocketAddrs`: std's conversions, with names resolved cooperatively.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::vec;

use super::dns::resolve;

/// Like [`std::net::ToSocketAddrs`], with the same implementations, but a host name is
/// resolved on the threadpool while the greenlet parks, instead of blocking the thread.
///
/// ```
/// use greenhub::net::ToSocketAddrs;
/// let addrs: Vec<_> = ("localhost", 80).to_socket_addrs().unwrap().collect();
/// assert!(addrs.iter().any(|a| a.ip().is_loopback() && a.port() == 80));
/// let a: Vec<_> = "127.0.0.1:9".to_socket_addrs().unwrap().collect();
/// assert_eq!(a, ["127.0.0.1:9".parse().unwrap()]);
/// ```
pub trait ToSocketAddrs {
    /// The addresses.
    type Iter: Iterator<Item = SocketAddr>;
    /// Converts (resolving names cooperatively).
    fn to_socket_addrs(&self) -> io::Result<Self::Iter>;
}

macro_rules! direct {
    ($($t:ty => $conv:expr),* $(,)?) => {$(
        impl ToSocketAddrs for $t {
            type Iter = std::option::IntoIter<SocketAddr>;
            fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
                #[allow(clippy::redundant_closure_call)]
                Ok(Some(($conv)(self)).into_iter())
            }
        }
    )*};
}

direct! {
    SocketAddr => |a: &SocketAddr| *a,
    SocketAddrV4 => |a: &SocketAddrV4| SocketAddr::V4(*a),
    SocketAddrV6 => |a: &SocketAddrV6| SocketAddr::V6(*a),
    (IpAddr, u16) => |&(ip, port): &(IpAddr, u16)| SocketAddr::new(ip, port),
    (Ipv4Addr, u16) => |&(ip, port): &(Ipv4Addr, u16)| SocketAddr::new(IpAddr::V4(ip), port),
    (Ipv6Addr, u16) => |&(ip, port): &(Ipv6Addr, u16)| SocketAddr::new(IpAddr::V6(ip), port),
}

impl ToSocketAddrs for (&str, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(resolve(self.0, self.1)?.into_iter())
    }
}

impl ToSocketAddrs for (String, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (self.0.as_str(), self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for str {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(vec![addr].into_iter());
        }
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "invalid socket address"))?;
        let port: u16 = port.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid port value"))?;
        (host, port).to_socket_addrs()
    }
}

impl ToSocketAddrs for String {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        self.as_str().to_socket_addrs()
    }
}

impl<'a> ToSocketAddrs for &'a [SocketAddr] {
    type Iter = std::iter::Cloned<std::slice::Iter<'a, SocketAddr>>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(self.iter().cloned())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    type Iter = T::Iter;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (**self).to_socket_addrs()
    }
}

/// Runs `f` on each address in turn until one succeeds (std's behaviour).
pub(crate) fn each_addr<A: ToSocketAddrs + ?Sized, T>(
    addr: &A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match f(&a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any addresses")))
}
