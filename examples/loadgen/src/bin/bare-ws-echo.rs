//! A bare tokio-tungstenite echo server, the baseline for the WebSocket
//! benchmarks: no layer, no sessions, just accept, handshake and echo in one
//! task per connection. Listens on 127.0.0.1:$PORT (0 picks a free port) and
//! prints `listening on http://ADDRESS`. `BARE_READ_BUFFER` sets
//! tungstenite's read buffer in bytes (default: tungstenite's 128 KiB).

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let mut config = WebSocketConfig::default();
    if let Some(size) = std::env::var("BARE_READ_BUFFER")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config = config.read_buffer_size(size);
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut socket) =
                tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            while let Some(Ok(message)) = socket.next().await {
                if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err()
                {
                    return;
                }
            }
        });
    }
}
