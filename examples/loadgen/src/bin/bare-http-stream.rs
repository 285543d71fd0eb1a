//! A bare axum server whose one route, `/stream`, answers with a body that
//! writes one line and then stays open: the baseline for what hyper and
//! axum hold for an idle streaming HTTP connection, with no session behind
//! it. Listens on 127.0.0.1:$PORT (0 picks a free port) and prints
//! `listening on http://ADDRESS`.

use axum::body::Body;
use axum::routing::any;
use axum::serve::ListenerExt;
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
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let app = Router::new().route(
        "/stream",
        any(|| async {
            let opening = futures::stream::once(async {
                Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(b"o\n"))
            });
            Body::from_stream(opening.chain(futures::stream::pending()))
        }),
    );
    axum::serve(listener, app).await
}
