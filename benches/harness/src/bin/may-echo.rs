//! may's stackful coroutines with `--workers N` scheduler threads (may-1, may-2): one
//! coroutine per connection, blocking-style `read` then `write_all`.

use greenhub_bench::peer;

fn main() -> std::io::Result<()> {
    let addr = peer::addr_from_args();
    let workers = peer::flag("--workers", 1).max(1);
    may::config().set_workers(workers);
    let listener = may::net::TcpListener::bind(addr)?;
    peer::listening(&format!("may-{workers}"), addr);
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        // SAFETY: may requires that a coroutine neither blocks its worker thread in a
        // non-may call nor touches thread-local state across yields; this one only does
        // may socket I/O on its own stream and a local buffer.
        unsafe {
            may::coroutine::spawn(move || {
                peer::echo_blocking(&mut stream);
            });
        }
    }
    Ok(())
}
