//! Feature `tokio`: futures that need a tokio runtime (reqwest, hyper, tonic, sqlx,
//! `tokio::net`, `tokio::time`) called from greenlets with one blocking-looking call.
//!
//! **Design: the future is polled on the calling greenlet, inside the tokio runtime's
//! context**, which is entered around each poll only (tokio's enter guards must drop in
//! the order they were made, and greenlets interleave on one thread). The runtime's worker
//! threads drive the I/O and timer drivers; readiness wakes the greenlet through
//! [`block_on`](crate::block_on)'s waker (its hub's remote queue). The alternative,
//! spawning the future onto the runtime and parking on a join handle, needs `Send +
//! 'static` futures and moves the work to tokio's threads; polling in place takes any
//! future, borrows included, keeps the result on the greenlet's stack, and costs no
//! spawn. Tasks the future spawns itself (reqwest's connection tasks) run on tokio's
//! workers as usual.
//!
//! The default runtime is a multi-thread tokio runtime with one worker thread
//! (`greenhub-tokio`), started on first use; [`block_on_with`] takes one of yours.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

/// The shared default tokio runtime's handle (started on first use: a multi-thread
/// runtime with one worker, I/O and time enabled).
///
/// ```
/// let h = greenhub::tokio::handle();
/// assert_eq!(h.runtime_flavor(), tokio::runtime::RuntimeFlavor::MultiThread);
/// ```
pub fn handle() -> tokio::runtime::Handle {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("greenhub-tokio")
            .enable_all()
            .build()
            .expect("greenhub: cannot start the default tokio runtime")
    })
    .handle()
    .clone()
}

/// Runs `fut` on the calling greenlet inside the default tokio runtime's context (see
/// [`handle`]); the greenlet parks while it is pending, as with
/// [`greenhub::block_on`](crate::block_on), whose cancellation rules apply.
///
/// ```
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// let gs: Vec<_> = (0..10)
///     .map(|_| greenhub::spawn(|| greenhub::tokio::block_on(tokio::time::sleep(Duration::from_millis(50)))))
///     .collect();
/// greenhub::joinall(&gs);
/// assert!(t.elapsed() < Duration::from_millis(450)); // the ten tokio sleeps overlapped
/// ```
pub fn block_on<F: Future>(fut: F) -> F::Output {
    block_on_with(&handle(), fut)
}

/// Like [`block_on`], in the context of the tokio runtime behind `handle`. Its I/O and
/// timers need a driver: a multi-thread runtime (its workers drive them), or a
/// current-thread one that some thread runs.
///
/// ```
/// let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
/// let v = greenhub::tokio::block_on_with(rt.handle(), async { tokio::task::yield_now().await; 5 });
/// assert_eq!(v, 5);
/// ```
pub fn block_on_with<F: Future>(handle: &tokio::runtime::Handle, fut: F) -> F::Output {
    crate::block_on(InContext { handle, fut })
}

/// Polls `fut` with `handle`'s context entered.
struct InContext<'a, F> {
    handle: &'a tokio::runtime::Handle,
    fut: F,
}

impl<F: Future> Future for InContext<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned: it is never moved out of `self` (no
        // method hands it out by value, `InContext` has no `Drop` and is not `Unpin`
        // unless `F` is), so pinning `self` pins it.
        let (handle, fut) = unsafe {
            let this = self.get_unchecked_mut();
            (this.handle, Pin::new_unchecked(&mut this.fut))
        };
        let _entered = handle.enter();
        fut.poll(cx)
    }
}
