//! The baseline without any runtime: one OS thread per connection, blocking std I/O.

use std::net::TcpListener;

use greenhub_bench::peer;

fn main() -> std::io::Result<()> {
    let addr = peer::addr_from_args();
    let listener = TcpListener::bind(addr)?;
    peer::listening("std-threads", addr);
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let spawned = std::thread::Builder::new().stack_size(64 * 1024).spawn(move || {
            peer::echo_blocking(&mut stream);
        });
        if let Err(e) = spawned {
            eprintln!("std-threads: cannot spawn a thread: {e}");
        }
    }
    Ok(())
}
