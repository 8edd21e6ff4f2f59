//! Cooperative `std::net`: TCP, UDP, address conversion and name resolution.
//!
//! Swap `use std::net::...` for `use greenhub::net::...` and blocking calls park the
//! greenlet instead of the thread.

mod addr;
mod dns;
pub(crate) mod tcp;
mod udp;

pub use addr::ToSocketAddrs;
pub use dns::{gethostbyname, lookup_host};
pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
