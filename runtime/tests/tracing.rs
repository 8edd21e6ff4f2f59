//! Feature `tracing`: lifecycle events (spawn, finish, kill with id and name) and the
//! reports (a greenlet's panic, the blocking detector) reach a `tracing` subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn events_and_reports_go_to_the_subscriber() {
    let buf = Buf(Arc::new(Mutex::new(Vec::new())));
    let w = buf.clone();
    tracing_subscriber::fmt()
        .with_writer(move || w.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .init();

    let ok = greenhub::Builder::new().name("alpha").spawn(|| 1);
    let killed = greenhub::Builder::new().name("beta").spawn(|| greenhub::sleep(Duration::from_secs(60)));
    let panics = greenhub::Builder::new().name("gamma").spawn(|| -> u8 { panic!("boom") });
    greenhub::yield_now();
    killed.kill();
    assert_eq!(ok.get(), Ok(1));
    assert_eq!(killed.get(), Err(greenhub::GreenletError::Killed));
    assert!(panics.get().is_err());

    greenhub::diag::set_max_blocking(Some(Duration::from_millis(50)));
    let busy = greenhub::Builder::new().name("busy").spawn(|| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(400) {
            std::hint::spin_loop();
        }
    });
    busy.get().unwrap();
    greenhub::diag::set_max_blocking(None);

    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let line = |needles: &[&str]| text.lines().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(line(&["DEBUG", "spawn", "greenlet=\"alpha\""]), "{text}");
    assert!(line(&["finish", "greenlet=\"alpha\"", "outcome=\"ok\""]), "{text}");
    assert!(line(&["kill", "greenlet=\"beta\""]), "{text}");
    assert!(line(&["finish", "greenlet=\"beta\"", "outcome=\"killed\""]), "{text}");
    assert!(line(&["ERROR", "greenlet panicked: boom", "greenlet=\"gamma\""]), "{text}");
    assert!(line(&["finish", "greenlet=\"gamma\"", "outcome=\"panicked\""]), "{text}");
    assert!(line(&["WARN", "greenlet 'busy'", "without switching"]), "{text}");
}
