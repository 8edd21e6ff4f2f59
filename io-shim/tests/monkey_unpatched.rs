//! With the `monkey` feature compiled in but `patch_all()` never called, every hooked
//! call behaves exactly like libc: std sleeps and sockets block the thread.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn without_patch_all_std_calls_block_like_libc() {
    assert!(!greenhub::monkey::is_patched());
    let t = Instant::now();
    let gs: Vec<_> = (0..3).map(|_| greenhub::spawn(|| std::thread::sleep(Duration::from_millis(50)))).collect();
    greenhub::joinall(&gs);
    assert!(t.elapsed() >= Duration::from_millis(150), "the sleeps ran one after another");
    // Sockets, fcntl and errors are plain libc.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut s, _) = l.accept().unwrap();
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    c.set_nonblocking(true).unwrap();
    assert_eq!(c.read(&mut buf).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    let refused = std::net::TcpStream::connect(("127.0.0.1", 1)).unwrap_err().kind();
    assert_eq!(refused, std::io::ErrorKind::ConnectionRefused);
}
