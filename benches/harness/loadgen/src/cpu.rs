//! CPU time of the server under test (any process, all its threads, from
//! `/proc/PID/stat`) and of the load generator itself (`getrusage`); the monotonic clock.

use std::io;
use std::time::Duration;

/// User + system CPU consumed so far by process `pid`, all threads (also exited ones).
pub fn process(pid: u32) -> io::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may contain spaces: split after
    // its last ')'. Then field 3 (state) is index 0, utime (14) index 11, stime (15) 12.
    let rest =
        stat.rsplit_once(')').map(|(_, rest)| rest).ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> io::Result<u64> {
        fields.get(i).and_then(|f| f.parse().ok()).ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))
    };
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf only reads a configuration value; _SC_CLK_TCK is a valid name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Ok(Duration::from_micros(total * 1_000_000 / hz))
}

/// User + system CPU consumed so far by this process.
pub fn own() -> Duration {
    // SAFETY: an all-zero rusage is a valid value of the plain C struct, and getrusage
    // only writes into the struct we pass, which lives for the whole call.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CLOCK_MONOTONIC in seconds: the clock of `time.monotonic()` in a Python controller.
pub fn monotonic() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the one we pass, which lives for
    // the whole call; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
