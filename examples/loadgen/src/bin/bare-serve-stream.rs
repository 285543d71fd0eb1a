//! The same baseline as `bare-http-stream`, served with
//! `axum_channel::serve` instead of `axum::serve`: what the crate's serving
//! path holds for an idle streaming connection with no session behind it.
//! Listens on 127.0.0.1:$PORT (0 picks a free port) and prints
//! `listening on http://ADDRESS`.
//!
//! For measuring hyper's buffer settings: `SERVE_WRITEV=0|1` sets
//! `Serve::writev`, `SERVE_MAX_BUF=BYTES` sets `Serve::max_buf_size`.

use axum::body::Body;
use axum::routing::any;
use axum::Router;
use futures::StreamExt;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = Router::new().route(
        "/stream",
        any(|| async {
            let opening = futures::stream::once(async {
                Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(b"o\n"))
            });
            Body::from_stream(opening.chain(futures::stream::pending()))
        }),
    );
    let mut server = axum_channel::serve(listener, app);
    if let Ok(writev) = std::env::var("SERVE_WRITEV") {
        server = server.writev(writev == "1");
    }
    if let Ok(max) = std::env::var("SERVE_MAX_BUF") {
        server = server.max_buf_size(max.parse().expect("SERVE_MAX_BUF must be a number"));
    }
    server.await
}
