//! Helpers shared by the integration tests of every crate: an ordered event log, a
//! function that needs a deep stack, and the one child-process harness — running one
//! test of the same binary alone in a child process, for cases that would abort or hang,
//! or that need a fresh process.
//!
//! A test that runs as a child returns at once unless [`is_child`]; its parent calls
//! [`child`] (or [`child_with`]) and asserts on the [`Child`] it gets back.

use std::cell::RefCell;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// An ordered log of events, shared between greenlets.
pub type Log = Rc<RefCell<Vec<String>>>;

/// An empty log.
pub fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// Appends an event.
pub fn push(l: &Log, s: impl Into<String>) {
    l.borrow_mut().push(s.into());
}

/// The events, space-separated.
pub fn joined(l: &Log) -> String {
    l.borrow().join(" ")
}

/// Whether this process is a child started by [`child`].
pub fn is_child() -> bool {
    std::env::var_os("GREENHUB_TEST_CHILD").is_some()
}

/// What a child run gave.
#[derive(Debug)]
pub struct Child {
    /// The exit code (`None` if killed by a signal or by the timeout).
    pub code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    /// Whether it had to be killed after the timeout (it hung).
    pub hung: bool,
    /// Everything it printed to stdout.
    pub stdout: String,
    /// Everything it printed to stderr.
    pub stderr: String,
}

impl Child {
    /// Panics with the child's output unless it exited with status 0.
    pub fn assert_ok(&self) -> &Child {
        assert!(!self.hung, "the child hung:\n{}\n{}", self.stdout, self.stderr);
        assert_eq!(self.code, Some(0), "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// Runs test `name` of this test binary alone in a child process with
/// `GREENHUB_TEST_CHILD=1`, killing it after `timeout`.
pub fn child(name: &str, timeout: Duration) -> Child {
    child_with(name, timeout, |_| {})
}

/// Like [`child`], letting the caller adjust the command (environment, stdio).
pub fn child_with(name: &str, timeout: Duration, adjust: impl FnOnce(&mut Command)) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("GREENHUB_TEST_CHILD", "1")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    adjust(&mut cmd);
    let mut proc = cmd.spawn().unwrap();
    let (mut out, mut err) = (proc.stdout.take(), proc.stderr.take());
    let read_out = std::thread::spawn(move || read_all(out.as_mut()));
    let read_err = std::thread::spawn(move || read_all(err.as_mut()));
    let start = Instant::now();
    let (status, hung) = loop {
        if let Some(st) = proc.try_wait().unwrap() {
            break (st, false);
        }
        if start.elapsed() > timeout {
            let _ = proc.kill();
            break (proc.wait().unwrap(), true);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    use std::os::unix::process::ExitStatusExt;
    Child {
        code: status.code(),
        signal: status.signal(),
        hung,
        stdout: read_out.join().unwrap(),
        stderr: read_err.join().unwrap(),
    }
}

fn read_all(r: Option<&mut impl std::io::Read>) -> String {
    let mut s = String::new();
    if let Some(r) = r {
        let mut b = Vec::new();
        let _ = r.read_to_end(&mut b);
        s = String::from_utf8_lossy(&b).into_owned();
    }
    s
}

/// Sums a 384 KiB array kept on the stack: more than a default (256 KiB) greenlet stack
/// holds, for the tests of bigger handler stacks (`seed` times 384 Ki).
#[inline(never)]
pub fn sum_on_stack(seed: u8) -> u64 {
    let big = std::hint::black_box([seed; 384 * 1024]);
    big.iter().map(|&b| u64::from(b)).sum()
}
