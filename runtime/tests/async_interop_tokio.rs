//! Feature `tokio`: tokio resources inside `greenhub::tokio::block_on`, and a
//! `RemoteGreenlet` awaited from a tokio runtime. (The bridge is reached as
//! `greenhub_runtime::tokio` here: this crate's `tokio` feature cannot switch on the
//! facade's, which re-exports it as `greenhub::tokio`.)

use std::time::{Duration, Instant};

use greenhub::{joinall, spawn, Runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[test]
fn tokio_sleeps_overlap_across_greenlets() {
    let t = Instant::now();
    let gs: Vec<_> = (0..50)
        .map(|i| {
            spawn(move || {
                greenhub_runtime::tokio::block_on(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    i
                })
            })
        })
        .collect();
    joinall(&gs);
    assert!(t.elapsed() < Duration::from_millis(1000), "{:?}", t.elapsed());
    let sum: i32 = gs.into_iter().map(|g| g.get().unwrap()).sum();
    assert_eq!(sum, (0..50).sum::<i32>());
}

#[test]
fn a_tokio_tcp_echo_inside_block_on() {
    // A tokio echo server on the shared runtime, a greenhub client per greenlet.
    let addr = greenhub_runtime::tokio::block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    loop {
                        let n = s.read(&mut buf).await.unwrap();
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    });
    let gs: Vec<_> = (0..10u8)
        .map(|i| {
            spawn(move || {
                greenhub_runtime::tokio::block_on(async move {
                    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
                    c.write_all(&[i; 8]).await.unwrap();
                    let mut back = [0u8; 8];
                    c.read_exact(&mut back).await.unwrap();
                    back
                })
            })
        })
        .collect();
    for (i, g) in gs.into_iter().enumerate() {
        assert_eq!(g.get(), Ok([i as u8; 8]));
    }
}

#[test]
fn a_remote_greenlet_awaited_from_a_tokio_runtime() {
    let rt = Runtime::new(2).unwrap();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let g = rt.spawn(|| {
        greenhub::sleep(Duration::from_millis(5));
        Runtime::current_hub()
    });
    let r = tokio_rt.block_on(async move { tokio::spawn(g).await.unwrap() });
    assert_eq!(r, Ok(Some(0)));
}
