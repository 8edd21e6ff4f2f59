//! The blocking detector (gevent's monitor thread): reports a greenlet that runs longer
//! than a limit without switching, which freezes every other greenlet of its hub.
//!
//! Each hub publishes a heartbeat: a switch counter and the id of the greenlet running,
//! updated with plain relaxed stores on every switch (no locked instruction, no
//! syscall), and a flag saying it is asleep in its poller (which is idle, not blocked).
//! A monitor thread, started by `GREENHUB_MAX_BLOCKING_MS=<ms>` or
//! [`set_max_blocking`], looks at every hub a few times per limit and, when a counter has
//! not moved for longer than the limit, prints one line per incident:
//!
//! `greenhub: greenlet 'name' (#id) has run for 312 ms without switching (limit 100 ms) on thread 'main'`

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Limit in ms; 0 = off.
static LIMIT_MS: AtomicU64 = AtomicU64::new(0);
static HEARTBEATS: Mutex<Vec<Weak<Heartbeat>>> = Mutex::new(Vec::new());

/// One hub's heartbeat.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    switches: AtomicU64,
    current: AtomicU64,
    polling: AtomicBool,
    /// Live greenlets of the hub: a hub without any blocks nobody, and is not watched.
    greenlets: AtomicUsize,
    thread: String,
    /// Names of named greenlets, kept only while the detector is on.
    names: Mutex<HashMap<u64, Arc<str>>>,
}

impl Heartbeat {
    /// A heartbeat for the calling thread's hub, registered with the monitor.
    pub(crate) fn register() -> Arc<Heartbeat> {
        start_from_env();
        let hb = Arc::new(Heartbeat {
            switches: AtomicU64::new(0),
            current: AtomicU64::new(0),
            polling: AtomicBool::new(false),
            greenlets: AtomicUsize::new(0),
            thread: crate::sched::task::thread_name(),
            names: Mutex::new(HashMap::new()),
        });
        let mut all = HEARTBEATS.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&hb));
        hb
    }

    /// Greenlet `id` (0: greenlet zero) runs from now on.
    #[inline]
    pub(crate) fn beat(&self, id: u64) {
        // Single writer (the hub thread): load + store, not a locked add.
        self.switches.store(self.switches.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        self.current.store(id, Ordering::Relaxed);
    }

    /// The hub now has `n` live greenlets.
    #[inline]
    pub(crate) fn greenlets(&self, n: usize) {
        self.greenlets.store(n, Ordering::Relaxed);
    }

    /// The hub is about to sleep in its poller (`true`) or has woken up (`false`).
    #[inline]
    pub(crate) fn polling(&self, on: bool) {
        self.polling.store(on, Ordering::Relaxed);
        if !on {
            self.beat(self.current.load(Ordering::Relaxed));
        }
    }

    /// Remembers a greenlet's name for reports (only while the detector is on).
    pub(crate) fn named(&self, id: u64, name: &str) {
        if LIMIT_MS.load(Ordering::Relaxed) != 0 {
            self.names.lock().unwrap_or_else(|e| e.into_inner()).insert(id, Arc::from(name));
        }
    }

    /// Forgets a finished greenlet's name.
    pub(crate) fn finished(&self, id: u64) {
        if LIMIT_MS.load(Ordering::Relaxed) != 0 {
            self.names.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        }
    }
}

/// Turns the blocking detector on with `limit` (or off with `None`). The environment
/// variable `GREENHUB_MAX_BLOCKING_MS` does the same at start-up.
///
/// ```
/// use std::time::Duration;
/// greenhub::set_max_blocking(Some(Duration::from_millis(100)));
/// greenhub::set_max_blocking(None);
/// ```
pub fn set_max_blocking(limit: Option<Duration>) {
    let ms = limit.map_or(0, |d| d.as_millis().clamp(1, u64::MAX as u128) as u64);
    LIMIT_MS.store(ms, Ordering::Relaxed);
    if ms != 0 {
        start_monitor();
    }
}

/// The detector's current limit.
///
/// ```
/// let _ = greenhub::max_blocking();
/// ```
pub fn max_blocking() -> Option<Duration> {
    match LIMIT_MS.load(Ordering::Relaxed) {
        0 => None,
        ms => Some(Duration::from_millis(ms)),
    }
}

fn start_from_env() {
    static ENV: Once = Once::new();
    ENV.call_once(|| {
        if let Some(ms) = std::env::var("GREENHUB_MAX_BLOCKING_MS").ok().and_then(|v| v.trim().parse::<u64>().ok()) {
            if ms > 0 {
                set_max_blocking(Some(Duration::from_millis(ms)));
            }
        }
    });
}

fn start_monitor() {
    static THREAD: OnceLock<()> = OnceLock::new();
    THREAD.get_or_init(|| {
        let _ = std::thread::Builder::new().name("greenhub-monitor".into()).spawn(watch);
    });
}

struct Seen {
    switches: u64,
    since: Instant,
    reported: bool,
}

fn watch() {
    let mut seen: HashMap<usize, Seen> = HashMap::new();
    loop {
        let limit = LIMIT_MS.load(Ordering::Relaxed);
        let period = Duration::from_millis((limit / 4).clamp(1, 250));
        std::thread::sleep(if limit == 0 { Duration::from_millis(250) } else { period });
        if limit == 0 {
            continue;
        }
        let beats: Vec<Arc<Heartbeat>> =
            HEARTBEATS.lock().unwrap_or_else(|e| e.into_inner()).iter().filter_map(Weak::upgrade).collect();
        let now = Instant::now();
        seen.retain(|k, _| beats.iter().any(|b| Arc::as_ptr(b) as usize == *k));
        for hb in &beats {
            let key = Arc::as_ptr(hb) as usize;
            let switches = hb.switches.load(Ordering::Relaxed);
            let s = seen.entry(key).or_insert(Seen { switches, since: now, reported: false });
            let idle = hb.polling.load(Ordering::Relaxed) || hb.greenlets.load(Ordering::Relaxed) == 0;
            if idle || s.switches != switches {
                *s = Seen { switches, since: now, reported: false };
                continue;
            }
            let stuck = now.duration_since(s.since);
            if !s.reported && stuck >= Duration::from_millis(limit) {
                s.reported = true;
                report(hb, stuck, limit);
            }
        }
    }
}

fn report(hb: &Heartbeat, stuck: Duration, limit: u64) {
    let id = hb.current.load(Ordering::Relaxed);
    let name = if id == 0 {
        hb.thread.clone()
    } else {
        hb.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .map(|n| n.to_string())
            .unwrap_or_else(|| format!("greenlet-{id}"))
    };
    let who = if id == 0 { format!("greenlet zero '{name}'") } else { format!("greenlet '{name}' (#{id})") };
    if crate::diag::log::to_subscriber() {
        crate::diag::log::blocking(&who, stuck.as_millis(), limit, &hb.thread);
        return;
    }
    let _ = writeln!(
        crate::diag::panic::Stderr,
        "greenhub: {who} has run for {} ms without switching (limit {limit} ms) on thread '{}'",
        stuck.as_millis(),
        hb.thread
    );
}
