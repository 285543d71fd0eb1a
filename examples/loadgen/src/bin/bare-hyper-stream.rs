//! The same baseline as `bare-http-stream`, served with hyper's HTTP/1
//! builder directly instead of `axum::serve`: what hyper alone holds for an
//! idle streaming connection. Listens on 127.0.0.1:$PORT (0 picks a free
//! port) and prints `listening on http://ADDRESS`.

use axum::body::Body;
use axum::routing::any;
use axum::Router;
use futures::StreamExt;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

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
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades()
                .await;
        });
    }
}
