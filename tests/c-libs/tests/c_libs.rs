//! C libraries linked at build time — libcurl (the `curl` crate on the system
//! `libcurl.so.4`) and libpq (`pq-sys` on the system `libpq.so.5`) — cooperate under
//! `patch_all()`: GNU ld exports the executable's hook symbols that those libraries
//! reference, so their `socket`/`connect`/`poll`/... calls land in greenhub's hooks.
//! Needs the system libraries and a PostgreSQL server binary: `bash tests/c-libs/setup.sh`.

use std::ffi::{CStr, CString};
use std::process::Command;
use std::time::{Duration, Instant};

use greenhub::{joinall, spawn, with_timeout, GreenletError, TimedOut};

fn patched() {
    greenhub::monkey::patch_all();
}

/// GET `url` with libcurl's blocking easy interface; the body's length.
fn curl_get(url: &str) -> Result<usize, curl::Error> {
    let mut easy = curl::easy::Easy::new();
    easy.url(url)?;
    let mut body = Vec::new();
    {
        let mut t = easy.transfer();
        t.write_function(|d| {
            body.extend_from_slice(d);
            Ok(d.len())
        })?;
        t.perform()?;
    }
    Ok(body.len())
}

#[test]
fn libcurl_requests_run_concurrently_and_can_be_timed_out_and_killed() {
    patched();
    std::thread::spawn(|| {
        let site = greenhub_crawler_free_site(Duration::from_millis(200));
        let url = format!("http://{}/", site.local_addr());
        // Sequential baseline would be 10 x 200 ms; concurrently about 200 ms.
        let t = Instant::now();
        let gs: Vec<_> = (0..10)
            .map(|_| {
                let u = url.clone();
                spawn(move || curl_get(&u))
            })
            .collect();
        joinall(&gs);
        let took = t.elapsed();
        for g in gs {
            assert_eq!(g.get().unwrap().unwrap(), BODY.len());
        }
        assert!(took < Duration::from_millis(1500), "10 libcurl GETs of 200 ms took {took:?}");
        // A timeout around a request that takes 2 s.
        let slow = greenhub_crawler_free_site(Duration::from_secs(2));
        let slow_url = format!("http://{}/", slow.local_addr());
        let u = slow_url.clone();
        let t = Instant::now();
        let r = spawn(move || with_timeout(Duration::from_millis(100), || curl_get(&u))).get().unwrap();
        assert_eq!(r.map(|_| ()), Err(TimedOut));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        // A kill while the request waits.
        let u = slow_url.clone();
        let g = spawn(move || curl_get(&u));
        greenhub::sleep(Duration::from_millis(50));
        g.kill();
        assert_eq!(g.get().map(|_| ()), Err(GreenletError::Killed));
        slow.stop(Duration::ZERO);
        site.stop(Duration::ZERO);
    })
    .join()
    .unwrap();
}

const BODY: &[u8] = b"hello from a slow server";

/// A local HTTP server answering every request with `BODY` after `delay`.
fn greenhub_crawler_free_site(delay: Duration) -> greenhub::server::ServerHandle {
    use std::io::{Read, Write};
    greenhub::server::StreamServer::bind("127.0.0.1:0", move |mut c: greenhub::net::TcpStream, _| {
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        greenhub::sleep(delay);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", BODY.len());
        let _ = c.write_all(head.as_bytes()).and_then(|()| c.write_all(BODY));
    })
    .unwrap()
    .start()
    .unwrap()
}

/// A throwaway PostgreSQL server in a temporary directory, on a free local port.
struct Postgres {
    dir: std::path::PathBuf,
    port: u16,
}

fn pg_bin(name: &str) -> std::path::PathBuf {
    let out = Command::new("pg_config").arg("--bindir").output();
    let dir = out
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|d| std::path::Path::new(d).join(name).exists())
        .unwrap_or_else(|| "/usr/lib/postgresql/15/bin".to_string());
    let p = std::path::Path::new(&dir).join(name);
    assert!(p.exists(), "{} not found: run `bash tests/c-libs/setup.sh`", p.display());
    p
}

/// Runs a PostgreSQL tool as the `postgres` user when we are root (it refuses root).
fn as_pg_user(bin: &std::path::Path) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

impl Postgres {
    fn start() -> Postgres {
        let dir = std::env::temp_dir().join(format!("greenhub-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let ok = Command::new("chown").arg("postgres:").arg(&dir).status().unwrap();
            assert!(ok.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data = dir.join("data");
        let init =
            as_pg_user(&pg_bin("initdb")).args(["-A", "trust", "-U", "postgres", "-D"]).arg(&data).output().unwrap();
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", dir.display());
        let start = as_pg_user(&pg_bin("pg_ctl"))
            .args(["-w", "-t", "30", "-l"])
            .arg(dir.join("log"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(start.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&start.stderr));
        Postgres { dir, port }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_pg_user(&pg_bin("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A libpq connection (blocking API).
struct Pg(*mut pq_sys::PGconn);

impl Pg {
    fn connect(port: u16) -> Result<Pg, String> {
        let info = CString::new(format!("host=127.0.0.1 port={port} user=postgres dbname=postgres")).unwrap();
        // SAFETY: a NUL-terminated conninfo string; libpq returns a connection to check.
        let conn = unsafe { pq_sys::PQconnectdb(info.as_ptr()) };
        let pg = Pg(conn);
        // SAFETY: a connection returned by PQconnectdb.
        if unsafe { pq_sys::PQstatus(conn) } != pq_sys::ConnStatusType::CONNECTION_OK {
            return Err(pg.error());
        }
        Ok(pg)
    }

    fn error(&self) -> String {
        // SAFETY: a live connection; the message is owned by it and copied at once.
        unsafe { CStr::from_ptr(pq_sys::PQerrorMessage(self.0)) }.to_string_lossy().into_owned()
    }

    /// Runs `sql` and returns the first column of the first row.
    fn query_one(&self, sql: &str) -> Result<String, String> {
        let sql = CString::new(sql).unwrap();
        // SAFETY: a live connection and a NUL-terminated query.
        let res = unsafe { pq_sys::PQexec(self.0, sql.as_ptr()) };
        if res.is_null() {
            return Err(self.error());
        }
        // SAFETY: a result of PQexec, cleared below; the value is copied before that.
        let out = unsafe {
            let r = if pq_sys::PQresultStatus(res) == pq_sys::ExecStatusType::PGRES_TUPLES_OK {
                Ok(CStr::from_ptr(pq_sys::PQgetvalue(res, 0, 0)).to_string_lossy().into_owned())
            } else {
                Err(self.error())
            };
            pq_sys::PQclear(res);
            r
        };
        out
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // SAFETY: the connection PQconnectdb returned; finished once.
        unsafe { pq_sys::PQfinish(self.0) };
    }
}

#[test]
fn libpq_queries_run_concurrently_with_correct_results_and_can_be_timed_out_and_killed() {
    patched();
    let pg = Postgres::start();
    let port = pg.port;
    std::thread::spawn(move || {
        // Ten connections each sleeping 200 ms in the server: about 200 ms in all.
        let t = Instant::now();
        let gs: Vec<_> = (0..10)
            .map(|i| {
                spawn(move || {
                    let c = Pg::connect(port)?;
                    c.query_one(&format!("SELECT {i} * 10 FROM pg_sleep(0.2)"))
                })
            })
            .collect();
        joinall(&gs);
        let took = t.elapsed();
        let got: Vec<String> = gs.into_iter().map(|g| g.get().unwrap().unwrap()).collect();
        assert_eq!(got, (0..10).map(|i| (i * 10).to_string()).collect::<Vec<_>>());
        assert!(took < Duration::from_millis(1500), "10 queries of 200 ms took {took:?}");
        // with_timeout around a 2 s query.
        let t = Instant::now();
        let r = spawn(move || {
            let c = Pg::connect(port).unwrap();
            with_timeout(Duration::from_millis(100), || c.query_one("SELECT 1 FROM pg_sleep(2)"))
        })
        .get()
        .unwrap();
        assert_eq!(r.map(|_| ()), Err(TimedOut));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        // A kill while a query waits.
        let g = spawn(move || {
            let c = Pg::connect(port).unwrap();
            c.query_one("SELECT 1 FROM pg_sleep(2)")
        });
        greenhub::sleep(Duration::from_millis(100));
        let t = Instant::now();
        g.kill();
        assert_eq!(g.get().map(|_| ()), Err(GreenletError::Killed));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        // The server still answers.
        let ok = spawn(move || Pg::connect(port).and_then(|c| c.query_one("SELECT 6 * 7"))).get().unwrap();
        assert_eq!(ok, Ok("42".to_string()));
    })
    .join()
    .unwrap();
    drop(pg);
}
