//! Diagnostics: stack overflow reports (in child processes, since they abort).

use std::time::Duration;

use greenhub_testkit::{child, child_with, is_child};

/// Children that hang are killed after this long (a report that never comes).
const LIMIT: Duration = Duration::from_secs(60);

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + frame[3]
}

#[test]
fn child_overflowing_greenlet() {
    if !is_child() {
        return;
    }
    let g = greenhub::Builder::new().name("deep").stack_size(16 * 1024).spawn(|| recurse(0));
    g.join();
    eprintln!("unreachable: the overflow must abort");
}

#[test]
fn a_greenlet_stack_overflow_is_reported_by_name_then_aborts() {
    let out = child("child_overflowing_greenlet", LIMIT);
    let err = out.stderr.clone();
    assert_eq!(out.signal, Some(libc::SIGABRT), "{err}");
    assert!(
        err.contains(
            "greenhub: greenlet 'deep' (#1) overflowed its 16 KiB stack; give it a bigger one with \
             greenhub::Builder::new().stack_size(bytes) (the default is 256 KiB)"
        ),
        "{err}"
    );
    assert_eq!(err.matches("overflowed").count(), 1, "{err}");
    assert!(!err.contains("unreachable"));
}

#[test]
fn child_overflowing_thread() {
    if !is_child() {
        return;
    }
    let _ = greenhub::spawn(|| 1).get(); // the handler is installed
    let t = std::thread::Builder::new().stack_size(64 * 1024).spawn(|| recurse(0)).unwrap();
    let _ = t.join();
}

#[test]
fn a_thread_stack_overflow_still_gets_stds_report() {
    let out = child("child_overflowing_thread", LIMIT);
    let err = out.stderr.clone();
    assert!(err.contains("has overflowed its stack"), "{err}");
    assert!(!err.contains("greenhub:"), "{err}");
    assert_eq!(out.signal, Some(libc::SIGABRT), "{err}");
}

#[test]
fn child_null_write() {
    if !is_child() {
        return;
    }
    let _ = greenhub::spawn(|| 1).get();
    // SAFETY: none; this child process is meant to crash with SIGSEGV.
    unsafe { std::ptr::write_volatile(16 as *mut u64, 1) };
}

#[test]
fn other_faults_are_left_to_the_previous_handler() {
    let out = child("child_null_write", LIMIT);
    assert_eq!(out.signal, Some(libc::SIGSEGV));
    assert!(!out.stderr.clone().contains("greenhub:"));
}

fn child_with_env(test: &str, key: &str, value: &str) -> greenhub_testkit::Child {
    child_with(test, LIMIT, |cmd| {
        cmd.env(key, value);
    })
}

#[test]
fn child_blocking_greenlet() {
    if !is_child() {
        return;
    }
    let ticker = greenhub::spawn(|| {
        for _ in 0..5 {
            greenhub::sleep(std::time::Duration::from_millis(10));
        }
    });
    let blocker = greenhub::Builder::new().name("blocker").spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(400)); // truly blocking
    });
    greenhub::joinall([&ticker, &blocker]);
    eprintln!("done");
}

#[test]
fn the_blocking_detector_reports_a_greenlet_that_does_not_switch() {
    let out = child_with_env("child_blocking_greenlet", "GREENHUB_MAX_BLOCKING_MS", "100");
    let err = out.stderr.clone();
    assert!(out.code == Some(0), "{err}");
    let reports: Vec<&str> = err.lines().filter(|l| l.contains("without switching")).collect();
    assert_eq!(reports.len(), 1, "one report per incident:\n{err}");
    let r = reports[0];
    assert!(r.starts_with("greenhub: greenlet 'blocker' (#2) has run for "), "{r}");
    assert!(r.contains(" ms without switching (limit 100 ms) on thread '"), "{r}");
    let ms: u64 = r.split("has run for ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!((100..=400).contains(&ms), "{r}");
}

#[test]
fn child_cooperative_program() {
    if !is_child() {
        return;
    }
    let gs: Vec<_> =
        (0..20).map(|_| greenhub::spawn(|| greenhub::sleep(std::time::Duration::from_millis(150)))).collect();
    greenhub::joinall(&gs);
    greenhub::sleep(std::time::Duration::from_millis(200)); // idle in the poller
}

#[test]
fn the_blocking_detector_is_quiet_for_cooperative_code() {
    let out = child_with_env("child_cooperative_program", "GREENHUB_MAX_BLOCKING_MS", "50");
    let err = out.stderr.clone();
    assert!(out.code == Some(0));
    assert!(!err.contains("without switching"), "{err}");
}
