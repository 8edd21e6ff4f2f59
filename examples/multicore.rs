//! All cores: 100,000 greenlets spread over one hub per core, exchanging messages
//! through cross-hub channels; prints what each hub did.
//!
//! Every hub `h` runs `--greenlets / threads` sender greenlets, each sending
//! `--messages` messages into the inbox of the next hub (`(h + 1) % threads`), and one
//! consumer greenlet reading its own inbox. Senders wait when an inbox is full (it holds
//! `--capacity` messages); greenlets never leave their hub.
//!
//! `cargo run --release --example multicore -- [--threads N] [--greenlets 100000] [--messages 10]`

use std::time::Instant;

use greenhub::channel::{self, Receiver, Sender};
use greenhub::{joinall, spawn, Runtime};

/// 100,000 greenlets on every core, talking through channels.
#[derive(clap::Parser)]
struct Args {
    /// Hubs (OS threads); default: one per core.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Sender greenlets in all (spread evenly over the hubs).
    #[arg(long, default_value_t = 100_000)]
    greenlets: usize,
    /// Messages each sender sends.
    #[arg(long, default_value_t = 10)]
    messages: usize,
    /// Capacity of each hub's inbox.
    #[arg(long, default_value_t = 1024)]
    capacity: usize,
}

enum Msg {
    Data {
        from_hub: usize,
    },
    /// The sending hub is done.
    Done,
}

struct Report {
    hub: usize,
    thread: String,
    senders: usize,
    sent: usize,
    received: usize,
    received_from: usize,
}

fn main() {
    let a = <Args as clap::Parser>::parse();
    let mut b = Runtime::builder().name("hub");
    if let Some(n) = a.threads {
        b = b.threads(n.into());
    }
    let rt = match b.build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("multicore: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let n = rt.threads();
    let inboxes: Vec<(Sender<Msg>, Receiver<Msg>)> = (0..n).map(|_| channel::bounded(a.capacity)).collect();
    let inboxes = std::sync::Arc::new(inboxes);
    let (greenlets, messages) = (a.greenlets, a.messages);
    let t = Instant::now();
    let reports = rt.run(move |hub| {
        let rx = inboxes[hub].1.clone();
        let tx = inboxes[(hub + 1) % n].0.clone();
        let consumer = spawn(move || {
            let (mut received, mut from) = (0, None);
            for m in rx.iter() {
                match m {
                    Msg::Data { from_hub } => {
                        received += 1;
                        from = Some(from_hub);
                    }
                    Msg::Done => break,
                }
            }
            (received, from)
        });
        let mine = greenlets / n + usize::from(hub < greenlets % n);
        let senders: Vec<_> = (0..mine)
            .map(|_| {
                let tx = tx.clone();
                spawn(move || {
                    for _ in 0..messages {
                        tx.send(Msg::Data { from_hub: hub }).expect("the inbox is open");
                    }
                })
            })
            .collect();
        joinall(&senders);
        tx.send(Msg::Done).expect("the inbox is open");
        let (received, from) = consumer.get().expect("the consumer ends");
        Report {
            hub,
            thread: std::thread::current().name().unwrap_or("?").to_string(),
            senders: mine,
            sent: mine * messages,
            received,
            received_from: from.unwrap_or((hub + n - 1) % n),
        }
    });
    let elapsed = t.elapsed();
    println!("{:>4}  {:<8} {:>9} {:>10} {:>10}  from hub", "hub", "thread", "greenlets", "sent", "received");
    for r in &reports {
        println!(
            "{:>4}  {:<8} {:>9} {:>10} {:>10}  {}",
            r.hub, r.thread, r.senders, r.sent, r.received, r.received_from
        );
    }
    let sent: usize = reports.iter().map(|r| r.sent).sum();
    let received: usize = reports.iter().map(|r| r.received).sum();
    println!(
        "{} greenlets on {n} hubs: {sent} messages sent, {received} received in {:.2?} ({:.0} messages/s)",
        reports.iter().map(|r| r.senders).sum::<usize>(),
        elapsed,
        received as f64 / elapsed.as_secs_f64()
    );
    if sent != received {
        eprintln!("multicore: {} messages lost", sent - received);
        std::process::exit(1);
    }
}
