//! tokio's current-thread runtime: one task per connection, `read` then `write_all`.

fn main() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    rt.block_on(greenhub_bench::peer::tokio_echo("tokio-ct"))
}
