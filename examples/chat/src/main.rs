//! Chat rooms on every transport: a person picks a name and a room on the
//! page at `/` and talks over BrowserChannel, SockJS or WebSocket, or
//! listens over EventSource. The routes and messages are the ones
//! `../shared/README.md` fixes; `/metrics` serves the layer's metrics as
//! Prometheus text.
//!
//! Run with `cargo run --release -p chat` after `npm ci --prefix
//! examples/chat`, then open http://127.0.0.1:3001/. `PORT` picks the port;
//! with `REDIS_URL` set the node joins the cluster of every node given the
//! same URL (`NODE_NAME` labels it in logs and metrics).
//!
//! WebSocket and SockJS clients that offer permessage-deflate get it: chat
//! messages are short JSON, so messages from 32 bytes up are compressed,
//! each on its own (one compressed frame serves every member of a room).

mod protocol;

use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use axum_channel::DeflateConfig;
use axum_channel::{
    BrowserChannelConfig, ChannelConfig, ChannelHandle, ChannelLayer, EventSourceConfig,
    HistoryConfig, Payload, Session, SockJsConfig, Transport, WebSocketConfig,
};
use axum_channel_redis::{RedisAdapter, RedisConfig};
use futures::StreamExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use protocol::{check_room, Reply, Request};
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

/// A file `npm ci --prefix examples/chat` installs; `variable` overrides its path.
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
    match session.transport() {
        Transport::EventSource => listen(session).await,
        _ => converse(session).await,
    }
}

/// A talking member: every message is a request, answered in the same form.
async fn converse(mut session: Session) {
    while let Some(message) = session.next().await {
        let reply = match message.json::<Request>() {
            Ok(request) => handle(&session, request).await,
            Err(error) => Some(json(&Reply::Error {
                error: format!("not a chat request: {error}"),
            })),
        };
        if let Some(reply) = reply {
            // Not awaited: a reply confirmed late must not hold up the next request.
            if let Some(error) = session.send(reply).refused() {
                tracing::debug!(%error, "reply refused");
            }
        }
    }
}

fn json(reply: &Reply<'_>) -> serde_json::Value {
    serde_json::to_value(reply).expect("a reply is JSON")
}

/// Carries out one request; the reply to send back, if any.
async fn handle(session: &Session, request: Request) -> Option<serde_json::Value> {
    let channels = session.channels();
    let room = match &request {
        Request::Join { room, .. }
        | Request::Leave { room }
        | Request::Say { room, .. }
        | Request::Count { room } => room.as_str(),
    };
    if let Err(error) = check_room(room) {
        return Some(json(&Reply::Error { error }));
    }
    let reply = match &request {
        Request::Join {
            since: Some(since), ..
        } => {
            // Anything but a string is no position this server gave.
            let since = since.as_str().unwrap_or_default();
            return match join_since(session, room, since, None).await {
                Ok(()) => None,
                Err(error) => Some(json(&Reply::Error {
                    error: error.to_string(),
                })),
            };
        }
        Request::Join { .. } => match session.join(room).await {
            Ok(()) => Reply::Joined {
                room,
                members: channels.room_members(room).await.members,
                recovered: None,
            },
            Err(error) => Reply::Error {
                error: error.to_string(),
            },
        },
        Request::Leave { .. } => {
            session.leave(room).await;
            Reply::Left { room }
        }
        Request::Count { .. } => Reply::Count {
            room,
            members: channels.room_members(room).await.members,
        },
        Request::Say { text, .. } => {
            let said = json(&Reply::Said {
                room,
                text,
                from: session.id(),
            });
            let payload = Payload::json(said.clone()).with_event_type("said");
            let sent = channels.broadcast_payload(payload).to(room).send().await;
            if !session.in_room(room) {
                // The sender hears its own words even when not a member.
                drop(session.send(said));
            }
            return match sent {
                Ok(_) => None,
                Err(error) => Some(json(&Reply::Error {
                    error: error.to_string(),
                })),
            };
        }
    };
    Some(json(&reply))
}

/// Joins `room` with the last position the client saw: `joined` (with
/// `recovered`) first, then what it missed, then live messages. The reply
/// goes as an event of type `event_type` to an EventSource client.
async fn join_since(
    session: &Session,
    room: &str,
    since: &str,
    event_type: Option<&'static str>,
) -> Result<(), axum_channel::JoinError> {
    // Counted before the join, so the session itself is added.
    let others = session.channels().room_members(room).await.members;
    let members = others + usize::from(!session.in_room(room));
    let room_name = room.to_owned();
    session
        .join_since(room, since)
        .announce(move |recovered| {
            let joined = json(&Reply::Joined {
                room: &room_name,
                members,
                recovered: Some(recovered),
            });
            match event_type {
                Some(event) => Payload::json(joined).with_event_type(event),
                None => Payload::json(joined),
            }
        })
        .await
        .map(|_| ())
}

/// An EventSource member of `?room=R`: it joins at once, hears `joined`,
/// then every `said` of the room until it leaves. A reconnecting client
/// (its `Last-Event-ID`) first gets what it missed.
async fn listen(session: Session) {
    let room = session
        .uri()
        .query()
        .and_then(|query| {
            query
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(key, _)| *key == "room")
                .map(|(_, value)| value.to_owned())
        })
        .map(|room| decode(&room))
        .unwrap_or_default();
    let room = match check_room(&room) {
        Ok(room) => room.to_owned(),
        Err(error) => {
            let error = serde_json::to_string(&Reply::Error { error }).expect("JSON");
            let _ = session.send_event(&error, Some("error"), None).await;
            session.close("no room");
            return;
        }
    };
    if let Some(since) = session.last_event_id() {
        let since = since.to_owned();
        if let Err(error) = join_since(&session, &room, &since, Some("joined")).await {
            tracing::debug!(%error, "an EventSource member could not rejoin");
        }
    } else if session.join(&room).await.is_ok() {
        let members = session.channels().room_members(&room).await.members;
        let joined = serde_json::to_string(&Reply::Joined {
            room: &room,
            members,
            recovered: None,
        })
        .expect("JSON");
        drop(session.send_event(&joined, Some("joined"), None));
    }
    session.closed().await;
}

/// Percent-decodes a query value (`+` is a space).
fn decode(value: &str) -> String {
    let bytes = value.replace('+', " ");
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' && tail.len() >= 2 {
            if let Ok(decoded) =
                u8::from_str_radix(std::str::from_utf8(&tail[..2]).unwrap_or(""), 16)
            {
                out.push(decoded);
                rest = &tail[2..];
                continue;
            }
        }
        out.push(byte);
        rest = tail;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn metrics(State(prometheus): State<PrometheusHandle>) -> String {
    prometheus.render()
}

async fn shutdown_signal(channels: ChannelHandle, cluster: Option<RedisAdapter>) {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!(sessions = channels.session_count(), "shutting down");
    channels.shutdown(Duration::from_secs(5)).await;
    if let Some(cluster) = cluster {
        // The other nodes stop counting this one at once.
        cluster.leave().await;
    }
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

/// Every room keeps its last `HISTORY_SIZE` messages (default 1,000) for
/// `HISTORY_TTL_SECS` seconds (default 300); each `said` carries its
/// position as `pos`.
fn history_from_env() -> HistoryConfig {
    let number = |name: &str, default: u64| match std::env::var(name) {
        Ok(value) => value
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{name} must be a whole number")),
        Err(_) => default,
    };
    HistoryConfig::new()
        .size(number("HISTORY_SIZE", 1000) as usize)
        .ttl(Duration::from_secs(number("HISTORY_TTL_SECS", 300)))
        .position_field("pos")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let node_name = std::env::var("NODE_NAME").ok();
    // The recorder comes first: the layer registers its metrics with it.
    let mut prometheus = PrometheusBuilder::new();
    if let Some(name) = &node_name {
        prometheus = prometheus.add_global_label("node", name);
    }
    let prometheus = prometheus
        .install_recorder()
        .expect("installing the Prometheus recorder");
    let cluster = match std::env::var("REDIS_URL") {
        Ok(url) => {
            let mut config = RedisConfig::new(url).prefix("chat");
            // How many says may wait for Redis while it is away.
            if let Ok(held) = std::env::var("REDIS_MAX_HELD_BROADCASTS") {
                let held = held
                    .parse()
                    .expect("REDIS_MAX_HELD_BROADCASTS must be a whole number");
                config = config.max_held_broadcasts(held, 16 << 20);
            }
            if let Some(name) = &node_name {
                config = config.node_name(name);
            }
            let adapter = RedisAdapter::connect(config)
                .await
                .map_err(|error| std::io::Error::other(format!("cannot reach Redis: {error}")))?;
            Some(adapter)
        }
        Err(_) => None,
    };

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().expect("PORT must be a port number"),
        Err(_) => 3001,
    };
    let bcsocket = installed_file("BCSOCKET_JS", "browserchannel/dist/bcsocket.js");
    let sockjs_client = installed_file("SOCKJS_CLIENT_JS", "sockjs-client/dist/sockjs.min.js");
    let mut config = security_from_env(ChannelConfig::new()).history(history_from_env());
    if let Some(adapter) = &cluster {
        config = config.cluster(adapter.clone());
    }
    let deflate = DeflateConfig {
        min_size: 32,
        ..DeflateConfig::default()
    };
    let channels = ChannelLayer::new(
        config
            .browserchannel(
                "/channel",
                BrowserChannelConfig::new().client_library(bcsocket),
            )
            .sockjs(
                "/sockjs",
                SockJsConfig::new()
                    .sockjs_url("/sockjs-client.js")
                    .permessage_deflate(deflate),
            )
            .websocket("/ws", WebSocketConfig::new().permessage_deflate(deflate))
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
        .route("/metrics", get(metrics))
        .route_service("/sockjs-client.js", ServeFile::new(sockjs_client))
        .with_state(prometheus)
        .layer(channels);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    println!("listening on http://{address}");
    let (signalled, on_signal) = tokio::sync::oneshot::channel();
    // HTTP/1.1 with header-read and idle timeouts, `TCP_NODELAY` and the
    // peer's address for the layer.
    let server = axum_channel::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal(handle, cluster).await;
        let _ = signalled.send(());
    });
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
