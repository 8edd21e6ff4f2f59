//! The yield-based baozi (steamed bun) producer/consumer, with `raw::Generator`.
//!
//! Python:
//!   def consumer(name):
//!       while True:
//!           baozi = yield
//!           print(f"baozi {baozi} arrived, eaten by {name}")
//!   def producer():
//!       c = consumer('A'); c.__next__()
//!       for i in range(5): print(f"made baozi {i}"); c.send(i)
//!
//! `cargo run --release --example generator`

use greenhub::raw::Generator;

#[derive(clap::Parser)]
#[command(about = "Generators: a yield-based producer and consumer (gevent's generator demo).")]
struct Args {}

fn main() {
    let Args {} = <Args as clap::Parser>::parse();
    let name = "A";
    // The consumer receives each baozi as the resume argument and yields an ack.
    let mut consumer = Generator::new(move |y, first: Option<u32>| {
        assert!(first.is_none(), "primed with None, like c.__next__()");
        let mut eaten = 0;
        let mut next = y.suspend(eaten);
        while let Some(baozi) = next {
            println!("baozi {baozi} arrived, eaten by {name}");
            eaten += 1;
            next = y.suspend(eaten);
        }
    });
    consumer.resume(None); // prime it
    for i in 0..5 {
        println!("made baozi {i}");
        let eaten = consumer.resume(Some(i)).expect("the consumer is alive");
        assert_eq!(eaten, i + 1);
    }
    assert_eq!(consumer.resume(None), None); // the consumer returned
    println!("all 5 eaten");
}
