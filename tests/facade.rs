//! The facade's own contract: every name users import from `greenhub` resolves, from the
//! root and from its documented module, and the two routes name the same items. (The
//! behaviour behind them is tested with each crate: `runtime/tests`, `io-shim/tests`;
//! cross-crate scenarios are `fidelity.rs` and `soundness.rs` here.)

use std::time::Duration;

#[allow(unused_imports)]
use greenhub::{
    block_on, current_name, dump, greenlet_local, iwait, joinall, joinall_timeout, killall, run, run_timeout, sleep,
    spawn, spawn_later, wait, wait_readable, wait_writable, with_timeout, yield_now, Builder, Greenlet, GreenletError,
    GreenletId, GreenletLocal, Iwait, Join, LinkId, RemoteGreenlet, Runtime, RuntimeBuilder, TimedOut, Waitable,
};
#[allow(unused_imports)]
use greenhub::{
    channel::{bounded, rendezvous, unbounded, Select},
    ffi::no_unwind,
    net::{lookup_host, TcpListener, TcpStream, ToSocketAddrs, UdpSocket},
    pool::{Group, Pool},
    queue::{JoinableQueue, LifoQueue, PriorityQueue, Queue},
    raw::{Generator, Greenlet as RawGreenlet},
    select::select,
    server::{DatagramServer, StreamServer},
    sync::{shared, AsyncResult, Event, Mutex, RLock, Semaphore},
    thread::sleep as thread_sleep,
    threadpool::{spawn_blocking, ThreadPool},
};

#[test]
fn documented_modules_and_the_root_name_the_same_items() {
    // One item under two paths: the same function and the same type (this compiles
    // only if `greenhub::HubStats` and `greenhub::diag::HubStats` are one type).
    let a: fn() -> greenhub::HubStats = greenhub::stats;
    let b: fn() -> greenhub::diag::HubStats = greenhub::diag::stats;
    assert_eq!(a(), b());
    let _: greenhub::Interest = greenhub::io::Interest::READABLE;
    let _: greenhub::io::Registration;
    assert_eq!(greenhub::diag::DEFAULT_STACK_SIZE, greenhub::DEFAULT_STACK_SIZE);
    assert_eq!(greenhub::stack_guard_method(), greenhub::diag::stack_guard_method());
}

#[test]
fn the_gevent_shaped_root_works_end_to_end() {
    let gs: Vec<_> = (0..3)
        .map(|i| {
            spawn(move || {
                sleep(Duration::from_millis(1));
                i * 2
            })
        })
        .collect();
    joinall(&gs);
    assert_eq!(gs.into_iter().map(|g| g.get().unwrap()).collect::<Vec<_>>(), [0, 2, 4]);
    assert_eq!(with_timeout(Duration::from_secs(5), || 7), Ok(7));
    assert_eq!(block_on(std::future::ready(3)), 3);
    let rt = Runtime::new(1).unwrap();
    assert_eq!(rt.spawn(|| 5).get(), Ok(5));
    rt.shutdown(Duration::from_secs(1));
}
