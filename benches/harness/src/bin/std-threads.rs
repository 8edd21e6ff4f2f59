//! The baseline without any runtime: one OS thread per connection, blocking std I/O.

use std::io::{Read, Write};
use std::net::TcpListener;

use greenhub_bench::peer::{self, BUF};

fn main() -> std::io::Result<()> {
    let addr = peer::addr_from_args();
    let listener = TcpListener::bind(addr)?;
    peer::listening("std-threads", addr);
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let spawned = std::thread::Builder::new().stack_size(64 * 1024).spawn(move || {
            let mut buf = [0u8; BUF];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        if let Err(e) = spawned {
            eprintln!("std-threads: cannot spawn a thread: {e}");
        }
    }
    Ok(())
}
