//! Echo server: every BrowserChannel (`/channel`), SockJS (`/sockjs`) and
//! WebSocket (`/ws`) message is sent back unchanged; EventSource clients at
//! `/events` get `tick N` every second, with id N.
//!
//! `ECHO_SOCKJS_WEBSOCKET=off` turns SockJS's websocket transports off, so
//! SockJS clients fall back to streaming or polling; `ECHO_MAX_MESSAGE_SIZE`
//! raises the WebSocket message limit (1 MiB); `ECHO_OVERFLOW=close` closes
//! a session whose client does not read; `ECHO_DEFLATE=off` turns
//! permessage-deflate off on `/ws` and SockJS (it is on, with the default
//! `DeflateConfig`; `ECHO_DEFLATE_MIN_SIZE` sets its `min_size`,
//! `ECHO_DEFLATE_CONTEXT_TAKEOVER=on` keeps the server's window between
//! messages). `ALLOWED_ORIGINS` and
//! `TRUSTED_PROXIES` set the origin policy and the proxies believed.
//!
//! It serves with `axum_channel::serve` (HTTP/1.1, header-read and idle
//! timeouts); `ECHO_SERVER=axum` serves with `axum::serve` instead, for
//! comparison.
//!
//! Run with `cargo run --release -p echo` after `npm ci --prefix examples/echo`
//! (which fetches the BrowserChannel browser client), then open
//! http://127.0.0.1:3000/. `PORT` picks the port (default 3000).

use axum::response::Html;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use axum_channel::{
    BrowserChannelConfig, ChannelConfig, ChannelLayer, DeflateConfig, EventSourceConfig, Message,
    Session, SockJsConfig, Transport, WebSocketConfig,
};
use futures::{FutureExt, StreamExt};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tower_http::services::ServeFile;

/// jemalloc as the global allocator. Many idle HTTP sessions (BrowserChannel
/// back channels, SockJS streaming receivers) are mostly small allocations
/// and the first page of hyper's 8 KiB buffers; jemalloc packs them tighter
/// than glibc's malloc: an idle session costs about 1.5 KiB less (see
/// docs/benchmarks.md). The trade-off: jemalloc is built from C sources
/// (a C compiler and `make`, a slower first build), it keeps freed pages a
/// while before returning them to the system, and it is not available on
/// MSVC targets. `--no-default-features` builds with the system allocator.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const PAGE: &str = include_str!("../static/index.html");

/// A file `npm ci --prefix examples/echo` installs; `variable` overrides its path.
fn installed_file(variable: &str, package_path: &str) -> PathBuf {
    std::env::var_os(variable).map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("node_modules")
                .join(package_path)
        },
        PathBuf::from,
    )
}

async fn on_session(session: Session) {
    tracing::info!(
        id = session.id(),
        transport = %session.transport(),
        remote = ?session.remote_addr(),
        "session opened"
    );
    match session.transport() {
        Transport::EventSource => tick(&session).await,
        _ => echo(session).await,
    }
}

/// Sends every message back unchanged: JSON as JSON, text as text, binary as binary.
async fn echo(mut session: Session) {
    while let Some(message) = session.next().await {
        let delivery = match message {
            Message::Binary(data) => session.send_binary(data),
            Message::Text(text) => session.send(text),
            other => match other.into_json() {
                Some(json) => session.send(json),
                None => continue,
            },
        };
        // The client's acknowledgement is not awaited; a message refused
        // outright (closed session, full queue) ends the echo.
        if let Some(error) = delivery.refused() {
            tracing::warn!(id = session.id(), %error, "echo failed");
            break;
        }
    }
    tracing::info!(id = session.id(), reason = ?session.close_reason(), "session ended");
}

/// Sends `tick N` every second with id N, resuming after `Last-Event-ID`.
async fn tick(session: &Session) {
    let mut n: u64 = session
        .last_event_id()
        .and_then(|id| id.parse::<u64>().ok())
        .map_or(0, |last| last + 1);
    let mut every_second = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = every_second.tick() => {
                let id = n.to_string();
                if session.send_event(&format!("tick {n}"), None, Some(&id)).refused().is_some() {
                    break;
                }
                n += 1;
            }
            _ = session.closed() => break,
        }
    }
    tracing::info!(id = session.id(), reason = ?session.close_reason(), "session ended");
}

/// The origin policy and trusted proxies from the environment:
/// `ALLOWED_ORIGINS` (comma-separated `scheme://host[:port]`, or `*` for
/// any page; default: the server's own pages) and `TRUSTED_PROXIES`
/// (comma-separated addresses or networks whose `X-Forwarded-For` is
/// believed, such as `127.0.0.1`).
fn security_from_env(mut config: ChannelConfig) -> ChannelConfig {
    if let Ok(origins) = std::env::var("ALLOWED_ORIGINS") {
        config = if origins.trim() == "*" {
            config.any_origin()
        } else {
            config.allowed_origins(origins.split(',').map(str::trim).filter(|o| !o.is_empty()))
        };
    }
    if let Ok(proxies) = std::env::var("TRUSTED_PROXIES") {
        let networks = proxies
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<axum_channel::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(Into::into))
                    .expect("TRUSTED_PROXIES holds addresses or networks")
            });
        config = config.trusted_proxies(networks.collect::<Vec<_>>());
    }
    config
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
    channels.shutdown(Duration::from_secs(5)).await;
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
    let bcsocket = installed_file("BCSOCKET_JS", "browserchannel/dist/bcsocket.js");
    let sockjs_client = installed_file("SOCKJS_CLIENT_JS", "sockjs-client/dist/sockjs.min.js");
    for library in [&bcsocket, &sockjs_client] {
        if !library.exists() {
            tracing::warn!(
                path = %library.display(),
                "browser client missing; run `npm ci --prefix examples/echo`"
            );
        }
    }
    let sockjs_websocket = std::env::var("ECHO_SOCKJS_WEBSOCKET").as_deref() != Ok("off");
    // The Autobahn testsuite sends messages of 16 MiB; the layer's default is 1 MiB.
    let max_message_size = std::env::var("ECHO_MAX_MESSAGE_SIZE").map_or(1 << 20, |size| {
        size.parse()
            .expect("ECHO_MAX_MESSAGE_SIZE must be a number of bytes")
    });

    let deflate = std::env::var("ECHO_DEFLATE").as_deref() != Ok("off");
    let mut sockjs = SockJsConfig::new()
        .sockjs_url("/sockjs-client.js")
        .websocket(sockjs_websocket)
        .max_message_size(max_message_size);
    let mut websocket = WebSocketConfig::new().max_message_size(max_message_size);
    if deflate {
        let mut config = DeflateConfig::default();
        if let Ok(size) = std::env::var("ECHO_DEFLATE_MIN_SIZE") {
            config.min_size = size
                .parse()
                .expect("ECHO_DEFLATE_MIN_SIZE must be a number of bytes");
        }
        if std::env::var("ECHO_DEFLATE_CONTEXT_TAKEOVER").as_deref() == Ok("on") {
            config.server_no_context_takeover = false;
        }
        sockjs = sockjs.permessage_deflate(config);
        websocket = websocket.permessage_deflate(config);
    }

    let mut config = security_from_env(ChannelConfig::new());
    // What a session whose client does not read gets: its messages refused
    // (the default), or `close` it.
    if std::env::var("ECHO_OVERFLOW").as_deref() == Ok("close") {
        config = config.overflow(axum_channel::Overflow::Close);
    }
    if let Ok(max) = std::env::var("ECHO_MAX_SESSIONS") {
        config = config.max_sessions(max.parse().expect("ECHO_MAX_SESSIONS must be a number"));
    }
    let channels = ChannelLayer::new(
        config
            .browserchannel(
                "/channel",
                BrowserChannelConfig::new().client_library(bcsocket),
            )
            .sockjs("/sockjs", sockjs)
            .websocket("/ws", websocket)
            .event_source(
                "/events",
                EventSourceConfig::new().ping_interval(Duration::from_secs(15)),
            )
            .on_session(on_session),
    );
    let handle = channels.handle();
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/healthz", get(|| async { "ok" }))
        .route_service("/sockjs-client.js", ServeFile::new(sockjs_client))
        .layer(channels);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    println!("listening on http://{address}");
    let (signalled, on_signal) = tokio::sync::oneshot::channel();
    let signal = async move {
        shutdown_signal(handle).await;
        let _ = signalled.send(());
    };
    // `ECHO_SERVER=axum` serves with `axum::serve` instead, for comparison.
    let server: futures::future::BoxFuture<'static, std::io::Result<()>> =
        if std::env::var("ECHO_SERVER").as_deref() == Ok("axum") {
            // Small writes (a back channel's chunk, a frame) go out at once
            // rather than after the client's delayed acknowledgement.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(signal)
            .into_future()
            .boxed()
        } else {
            // HTTP/1.1 with header-read and idle timeouts, `TCP_NODELAY` and
            // the peer's address for the layer.
            axum_channel::serve(listener, app)
                .with_graceful_shutdown(signal)
                .into_future()
                .boxed()
        };
    // Connections may outlive the sessions (a keep-alive request that never
    // ends); past a grace period, exit anyway.
    let grace = async {
        if on_signal.await.is_ok() {
            tokio::time::sleep(Duration::from_secs(10)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        _ = grace => {
            tracing::warn!("connections still open 10 s after shutdown began; exiting");
            Ok(())
        }
    }
}
