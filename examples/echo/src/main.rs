//! Echo server: every BrowserChannel message is sent back unchanged.
//!
//! Run with `cargo run --release -p echo` after `npm ci --prefix examples/echo`
//! (which fetches the browser client), then open http://127.0.0.1:3000/.
//! `PORT` picks the port (default 3000).

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use axum_channel::{ChannelConfig, ChannelLayer, Session};
use futures::StreamExt;
use std::net::SocketAddr;
use std::path::PathBuf;

const PAGE: &str = include_str!("../static/index.html");

/// Where `npm ci` puts the BrowserChannel browser client; `BCSOCKET_JS` overrides it.
fn client_library() -> PathBuf {
    std::env::var_os("BCSOCKET_JS").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("node_modules/browserchannel/dist/bcsocket.js")
        },
        PathBuf::from,
    )
}

async fn echo(mut session: Session) {
    tracing::info!(id = session.id(), transport = %session.transport(), "session opened");
    while let Some(message) = session.next().await {
        if let Some(json) = message.into_json() {
            // The client's acknowledgement is not awaited; a message refused
            // outright (closed session, full queue) ends the echo.
            let delivery = session.send(json);
            if let Some(error) = delivery.refused() {
                tracing::warn!(id = session.id(), %error, "echo failed");
                break;
            }
        }
    }
    tracing::info!(id = session.id(), reason = ?session.close_reason(), "session ended");
}

async fn shutdown_signal(channels: axum_channel::ChannelHandle) {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!(sessions = channels.session_count(), "shutting down");
    channels.close_all();
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().expect("PORT must be a port number"),
        Err(_) => 3000,
    };
    let library = client_library();
    if !library.exists() {
        tracing::warn!(
            path = %library.display(),
            "browser client missing; run `npm ci --prefix examples/echo`"
        );
    }

    let channels = ChannelLayer::new(
        ChannelConfig::new()
            .prefix("/channel")
            .client_library(library)
            .on_session(echo),
    );
    let handle = channels.handle();
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/healthz", get(|| async { "ok" }))
        .layer(channels);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    println!("listening on http://{address}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal(handle))
    .await
}
