//! The tokio peers' accept loop, shared by the current-thread and multi-thread builds.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::BUF;

/// Accepts forever on the port from the arguments; one task per connection.
pub async fn tokio_echo(what: &str) -> std::io::Result<()> {
    let addr = super::addr_from_args();
    let listener = TcpListener::bind(addr).await?;
    super::listening(what, addr);
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            // EMFILE and friends: back off instead of spinning on the backlog.
            tokio::task::yield_now().await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = [0u8; BUF];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
}
