//! gevent's classic switching demos.
//!
//! 1. foo/bar: explicit switches with `sleep(0)` interleave two greenlets.
//! 2. func1/func2 (ok1 ok2 ok4 ok3): sleeps of 80 and 20 ms decide who finishes first.
//!
//! `cargo run --release --example switch_order`
#![allow(clippy::disallowed_names)] // foo and bar are the demo's own names

use std::time::{Duration, Instant};

use greenhub::{joinall, sleep, spawn};

#[derive(clap::Parser)]
#[command(about = "gevent's foo/bar and ok1 ok2 ok4 ok3 switch-order demos.")]
struct Args {}

fn main() {
    let Args {} = <Args as clap::Parser>::parse();
    // gevent:
    //   def foo(): print('Running in foo'); gevent.sleep(0); print('Explicit context switch to foo again')
    //   def bar(): print('Explicit context to bar'); gevent.sleep(0); print('Implicit context switch back to bar')
    //   gevent.joinall([gevent.spawn(foo), gevent.spawn(bar)])
    let foo = spawn(|| {
        println!("Running in foo");
        sleep(Duration::ZERO);
        println!("Explicit context switch to foo again");
    });
    let bar = spawn(|| {
        println!("Explicit context to bar");
        sleep(Duration::ZERO);
        println!("Implicit context switch back to bar");
    });
    joinall([&foo, &bar]);

    // gevent:
    //   def func1(): print('ok1'); gevent.sleep(0.08); print('ok3')
    //   def func2(): print('ok2'); gevent.sleep(0.02); print('ok4')
    let start = Instant::now();
    let func1 = spawn(|| {
        println!("ok1");
        sleep(Duration::from_millis(80));
        println!("ok3");
    });
    let func2 = spawn(|| {
        println!("ok2");
        sleep(Duration::from_millis(20));
        println!("ok4");
    });
    joinall([&func1, &func2]);
    println!("both done in {:.2}s (the sleeps overlapped)", start.elapsed().as_secs_f64());
}
