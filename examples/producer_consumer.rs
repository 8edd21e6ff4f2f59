//! gevent's Queue demo: a producer fills a `Queue(3)` with 20 items while a consumer
//! drains it, each printing as it goes.
//!
//! ```python
//! q = gevent.queue.Queue(3)
//! def producer():
//!     for i in range(20): q.put(i); print(f"produced {i}")
//!     q.put(None)
//! def consumer():
//!     while (item := q.get()) is not None: print(f"consumed {item}"); gevent.sleep(0.01)
//! gevent.joinall([gevent.spawn(producer), gevent.spawn(consumer)])
//! ```
//!
//! `cargo run --release --example producer_consumer`

use std::rc::Rc;
use std::time::Duration;

use greenhub::queue::Queue;
use greenhub::{joinall, sleep, spawn};

#[derive(clap::Parser)]
#[command(about = "A producer and a consumer greenlet around a Queue(3).")]
struct Args {}

fn main() {
    let Args {} = <Args as clap::Parser>::parse();
    let q: Rc<Queue<Option<u32>>> = Rc::new(Queue::bounded(3));
    let p = q.clone();
    let producer = spawn(move || {
        for i in 0..20 {
            p.put(Some(i)); // waits while the queue holds 3 items
            println!("produced {i}");
        }
        p.put(None);
    });
    let c = q.clone();
    let consumer = spawn(move || {
        let mut total = 0;
        for item in c.iter().map_while(|x| x) {
            println!("consumed {item}");
            total += item;
            sleep(Duration::from_millis(10));
        }
        total
    });
    joinall([&producer as &dyn greenhub::Join, &consumer]);
    println!("sum of consumed items: {}", consumer.get().unwrap());
}
