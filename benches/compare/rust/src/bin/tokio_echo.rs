//! A WebSocket echo server with tokio-tungstenite and every default: the runtime's worker
//! threads (one per core), one task per connection, `WebSocketConfig::default()`.
//!
//! ```text
//! tokio_echo 127.0.0.1:PORT
//! ```

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9000".into());
    let listener = TcpListener::bind(&addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else { return };
            while let Some(Ok(message)) = ws.next().await {
                if (message.is_binary() || message.is_text()) && ws.send(message).await.is_err() {
                    break;
                }
            }
        });
    }
}
