//! tokio's multi-thread runtime with `--workers N` workers (default 2, this machine's
//! cores): one task per connection, `read` then `write_all`.

fn main() -> std::io::Result<()> {
    let workers = greenhub_bench::peer::flag("--workers", 2);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers.max(1)).enable_io().build()?;
    rt.block_on(greenhub_bench::peer::tokio_echo("tokio-mt"))
}
