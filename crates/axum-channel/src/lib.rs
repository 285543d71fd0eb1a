//! Realtime, browser-friendly channels for [axum] apps, as one Tower layer.
//!
//! Add [`ChannelLayer`] to a `Router`; every request under its paths is
//! answered by the layer, every other request reaches your routes untouched.
//! Each client connection becomes a [`Session`] handed to your callback,
//! whatever the transport underneath.
//!
//! # Quick start
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use axum_channel::{ChannelConfig, ChannelLayer, SockJsConfig, WebSocketConfig};
//! use futures::StreamExt;
//!
//! # async fn run() {
//! let config = ChannelConfig::new() // BrowserChannel under /channel
//!     .sockjs("/sockjs", SockJsConfig::new())
//!     .websocket("/ws", WebSocketConfig::new())
//!     .on_session(|mut session| async move {
//!         // Echo every message back to the client that sent it.
//!         while let Some(message) = session.next().await {
//!             if let Some(json) = message.into_json() {
//!                 let _ = session.send(json);
//!             }
//!         }
//!     });
//! let layer = ChannelLayer::new(config);
//! let channels = layer.handle();
//! let app = Router::new()
//!     .route("/healthz", get(|| async { "ok" }))
//!     .layer(layer);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//! axum_channel::serve(listener, app)
//!     .with_graceful_shutdown(async move {
//!         let _ = tokio::signal::ctrl_c().await;
//!         channels.shutdown(std::time::Duration::from_secs(5)).await;
//!     })
//!     .await
//!     .unwrap();
//! # }
//! ```
//!
//! Add the layer after your routes (and fallback). Inside a router given to
//! `Router::nest`, give that router a `.fallback(...)` before `.layer(...)`:
//! axum sends unmatched nested paths to the nested router's own fallback
//! only when it has one.
//!
//! # Transports
//!
//! | Transport | Configured with | Clients |
//! | --- | --- | --- |
//! | Native WebSocket (RFC 6455; hixie-75/76 on request) | [`ChannelConfig::websocket`], [`WebSocketConfig`] | browsers' `WebSocket`, npm `ws`, any RFC 6455 client |
//! | SockJS 0.3, every transport sockjs-node serves | [`ChannelConfig::sockjs`], [`SockJsConfig`] | npm `sockjs-client` |
//! | BrowserChannel v8 | [`ChannelConfig::browserchannel`] (on by default under `/channel`), [`BrowserChannelConfig`] | node-browserchannel's `BCSocket`, Closure's `goog.net.BrowserChannel` |
//! | EventSource (server-sent events; the client cannot send) | [`ChannelConfig::event_source`], [`EventSourceConfig`] | browsers' `EventSource`, npm `eventsource` |
//!
//! [`Session::transport`](SessionSender::transport) says which one carries a
//! session; for SockJS, [`Session::protocol`] names the SockJS transport.
//!
//! # Sessions: receiving, sending, delivery
//!
//! A [`Session`] is a [`Stream`](futures::Stream) of the client's
//! [`Message`]s in the order it sent them; [`Message::json`] decodes one
//! into your type with one meaning on every transport. Sending
//! ([`send`](SessionSender::send), [`send_json`](SessionSender::send_json),
//! [`send_text`](SessionSender::send_text), ...) queues at once and returns
//! a [`Delivery`], which resolves once the message arrived (BrowserChannel:
//! the client acknowledged it; WebSocket: written and flushed; SockJS over
//! HTTP and EventSource: handed to the response) or fails with why; it never
//! stays pending past `delivery_timeout`. [`Session::sender`] is a
//! cloneable sending half for other tasks.
//!
//! While the app does not read, received messages wait in a bounded inbox;
//! once it is full the layer stops reading from the client, but writes,
//! pings and acknowledgements go on, so an app that awaits every delivery
//! before reading on never stalls its own connection.
//!
//! # Rooms and broadcasts
//!
//! [`SessionSender::join`] puts a session in a room (a session may be in
//! many; it leaves them all when it closes). [`ChannelHandle::broadcast`]
//! (from [`ChannelLayer::handle`] or [`SessionSender::channels`]) sends one
//! message to rooms or to everyone, minus some sessions: it is encoded once
//! per wire format however many members it has, queued for each member and
//! never awaited, so a slow member holds nobody up. The
//! [`BroadcastReport`] says how many it reached, dropped and closed.
//!
//! ```no_run
//! # async fn run(session: axum_channel::Session) {
//! use serde_json::json;
//! session.join("lobby").await.ok();
//! let report = session
//!     .channels()
//!     .broadcast(json!({"type": "joined", "id": session.id()}))
//!     .to("lobby")
//!     .except(session.id())
//!     .send()
//!     .await;
//! # }
//! ```
//!
//! # Authorisation and the origin policy
//!
//! By default only the server's own pages may open sessions, on every
//! transport: a request whose `Origin` is another site's, or a script load a
//! browser marks `Sec-Fetch-Site: cross-site`, is refused with 403, so a page
//! elsewhere cannot open a session with its visitor's cookies.
//! [`ChannelConfig::allowed_origins`] lets more pages in (and read replies
//! with credentials), [`ChannelConfig::any_origin`] any page (public APIs
//! that authenticate without cookies). Clients that send no `Origin`
//! (non-browser clients) may connect unless
//! [`ChannelConfig::require_origin`].
//!
//! [`ChannelConfig::authorize`] is the hook every session passes: it sees
//! the request's parts with their extensions, so it works after any
//! middleware, and grants the session ([`Admit`]: typed data it carries,
//! the user its span names) or refuses it ([`Rejection`]: a status and a
//! reason the client sees).
//!
//! ```no_run
//! use axum_channel::{Admit, ChannelConfig, ChannelLayer, Rejection, SessionRequest};
//!
//! #[derive(Clone)]
//! struct User { id: u64 }
//!
//! let layer = ChannelLayer::new(ChannelConfig::new().authorize(|request: SessionRequest| async move {
//!     // What the app's auth middleware (in front of the layer) established.
//!     let user = request
//!         .extensions()
//!         .get::<User>()
//!         .cloned()
//!         .ok_or_else(|| Rejection::unauthorized("log in first"))?;
//!     Ok(Admit::new().user_id(user.id.to_string()).with(user))
//! }));
//! # let _ = layer;
//! ```
//!
//! Behind a proxy, [`ChannelConfig::trusted_proxies`] makes the layer
//! believe that proxy's `Forwarded`/`X-Forwarded-For`, and only its: sessions,
//! spans and logs show the client's address.
//!
//! # Limits
//!
//! Every buffer a client can fill is bounded in items and in bytes, with
//! realtime defaults: 1 MiB messages and request bodies, 1 MiB of received
//! messages waiting for the app, 1 MiB queued for each client, 1 MiB of
//! BrowserChannel maps held out of order. A message that does not fit the
//! queue to its client is refused ([`SendError::QueueFull`],
//! [`SendError::QueueTooLarge`]); [`ChannelConfig::overflow`] decides whether
//! the session is also closed ([`Overflow::Close`]). `max_sessions`
//! (10,000) is checked before any WebSocket upgrade;
//! [`ChannelConfig::max_sessions_per_address`] and
//! [`ChannelConfig::session_rate_per_address`] (off by default) keep one
//! client from taking them all.
//!
//! # Serving
//!
//! [`serve()`] serves a router on hyper's HTTP/1 connection builder: an idle
//! streaming session costs about a third less memory than behind
//! `axum::serve`, connections that never send their request head are closed
//! after 10 s and idle keep-alive ones after 30 s, and every request carries
//! the peer's address. It gives up HTTP/2 on the same port; the layer works
//! behind `axum::serve` too (with `into_make_service_with_connect_info` for
//! client addresses).
//!
//! Keep these layers off the channel paths (apply them to your own routes
//! only): response compression, which buffers the streaming responses of
//! back channels, SockJS receivers and EventSource streams; request or
//! response timeouts, since those responses are long-lived by design; and
//! anything else that buffers whole response bodies.
//!
//! # A cluster
//!
//! [`ChannelConfig::cluster`] makes the layer one node of a cluster through
//! an [`Adapter`](cluster::Adapter) (Redis: the `axum-channel-redis` crate):
//! broadcasts, room counts ([`ChannelHandle::room_members`]) and session
//! lookups ([`ChannelHandle::find_session`]) span every node. BrowserChannel
//! and SockJS sessions live on the node that opened them, so put a sticky
//! load balancer in front. See [`cluster`].
//!
//! # Shutdown
//!
//! Call [`ChannelHandle::shutdown`] before the server stops: it closes every
//! session and waits, at most its grace, for WebSocket closing handshakes,
//! which a server's graceful shutdown does not track. From then on the layer
//! answers 503, so reconnecting clients cannot hold the shutdown up.
//!
//! # Observability
//!
//! Every session runs in a tracing span `session` with `id`, `transport`,
//! `remote` and `user`; the app's callback runs in it. The layer counts
//! through the [`metrics`](https://docs.rs/metrics) facade, with whatever
//! recorder the app installed before building the layer:
//!
//! | Name | Kind | Labels |
//! | --- | --- | --- |
//! | `channel_sessions_open` | gauge | `transport` |
//! | `channel_sessions_opened_total` | counter | `transport` |
//! | `channel_sessions_closed_total` | counter | `transport`, `reason` |
//! | `channel_sessions_refused_total` | counter | `transport`, `reason` |
//! | `channel_messages_received_total` | counter | `transport` |
//! | `channel_messages_sent_total` | counter | `transport` |
//! | `channel_bytes_sent_total` | counter | `transport` |
//! | `channel_deliveries_failed_total` | counter | `transport` |
//! | `channel_broadcasts_total` | counter | |
//! | `channel_broadcast_recipients_total` | counter | |
//! | `channel_broadcast_dropped_total` | counter | |
//! | `channel_broadcast_encoded_bytes_total` | counter | |
//! | `channel_cluster_published_total` | counter | |
//! | `channel_cluster_publish_failures_total` | counter | |
//! | `channel_cluster_received_total` | counter | |
//! | `channel_cluster_refused_frames_total` | counter | |
//! | `channel_cluster_queries_total` | counter | |
//! | `channel_cluster_queries_partial_total` | counter | |
//!
//! # Crates
//!
//! The protocol rules live in the sans-IO crate `axum-channel-protocol`
//! (engines that take the time as an input, handshakes, codecs); this crate
//! adds HTTP, WebSockets, timers and the session API, with one driver for
//! every transport. The protocol types the API uses are re-exported here
//! ([`Message`], [`CloseReason`], [`SendError`], [`Payload`]), so an app
//! never names the protocol crate.
//!
//! [axum]: https://docs.rs/axum
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// From the top down: the serving path, the layer, the transports' endpoints (and the
// WebSocket connection machinery and admission they share), the session API
// and handle, the live-session driver, the services every session shares,
// and the base types below them all.
pub mod serve;

mod layer;

mod browserchannel;
mod event_source;
mod sockjs;
mod websocket;

mod admission;
mod reply;
mod upgrade;

pub mod cluster;
mod config;
mod handle;
mod session;

mod live;

mod services;

mod base;

pub use axum_channel_protocol::history::Position;
pub use axum_channel_protocol::websocket::permessage_deflate::DeflateConfig;
pub use axum_channel_protocol::{CloseReason, Message, Payload, SendError};
pub use base::transport::Transport;
pub use config::{
    Admit, BrowserChannelConfig, ChannelConfig, EventSourceConfig, HistoryConfig, JSessionIdFn,
    Rejection, SessionRequest, SockJsConfig, WebSocketConfig,
};
pub use handle::broadcast::{AckStream, Broadcast, BroadcastError};
pub use handle::{ChannelHandle, MemberCount};
pub use ipnet::IpNet;
pub use layer::{ChannelLayer, ChannelService, ResponseFuture};
pub use serve::serve;
pub use services::fanout::{BroadcastReport, Overflow};
pub use session::{Closed, Delivery, JoinError, JoinSince, Recovery, Session, SessionSender};
