//! Built with `panic = "abort"`: greenlets that are never killed work; the first kill
//! (or timeout, by argument) that must unwind a greenlet fails with a clear message.

use std::time::Duration;

fn main() {
    let what = std::env::args().nth(1).unwrap_or_default();
    // Plain greenlets work without unwinding.
    let g = greenhub_runtime::spawn(|| 6 * 7);
    assert_eq!(g.get(), Ok(42));
    // Killing one that never started needs no unwinding either.
    let unstarted = greenhub_runtime::spawn(|| ());
    unstarted.kill();
    assert!(unstarted.ready());
    println!("ok so far");
    match what.as_str() {
        "kill" => {
            let g = greenhub_runtime::spawn(|| greenhub_runtime::sleep(Duration::from_secs(60)));
            greenhub_runtime::yield_now();
            g.kill();
            g.join();
        }
        "timeout" => {
            let _ = greenhub_runtime::with_timeout(Duration::from_millis(5), || {
                greenhub_runtime::sleep(Duration::from_secs(60))
            });
        }
        _ => {}
    }
    println!("not reached for kill or timeout");
}
