//! Realtime, browser-friendly channels for [axum] apps, as one Tower layer.
//!
//! Add [`ChannelLayer`] to a `Router`; every request under its paths is
//! answered by the layer, every other request reaches your routes untouched.
//! Each client connection becomes a [`Session`] handed to your callback,
//! whatever the transport underneath:
//!
//! - **BrowserChannel v8** (Google's protocol, as node-browserchannel serves
//!   it) under the prefix (default `/channel`);
//! - **SockJS 0.3** (as sockjs-node serves it, every transport) under
//!   [`ChannelConfig::sockjs`];
//! - **native WebSocket** (RFC 6455, hixie-76 on request) at
//!   [`ChannelConfig::websocket`];
//! - **EventSource** (server-sent events) at [`ChannelConfig::event_source`].
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
//! let app = Router::new()
//!     .route("/healthz", get(|| async { "ok" }))
//!     .layer(ChannelLayer::new(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! The protocol rules live in the sans-IO crate `channel-protocol`, whose
//! session engines take the time as an input; this crate adds HTTP,
//! WebSockets, timers and the session API, with one driver for every
//! transport.
//!
//! [axum]: https://docs.rs/axum
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod browserchannel;
pub mod cluster;
mod config;
mod event_source;
mod handle;
mod http_util;
mod layer;
mod live;
mod registry;
mod rooms;
pub mod serve;
mod session;
mod sockjs;
mod telemetry;
mod websocket;

pub use channel_protocol::Payload;
pub use config::{
    ChannelConfig, EventSourceConfig, JSessionIdFn, SessionRequest, SockJsConfig, WebSocketConfig,
};
pub use handle::{ChannelHandle, MemberCount};
pub use layer::{ChannelLayer, ChannelService, ResponseFuture};
pub use rooms::broadcast::{AckStream, Broadcast, BroadcastError, BroadcastReport, Overflow};
pub use serve::serve;
pub use session::{
    CloseReason, Closed, Delivery, JoinError, Message, SendError, Session, SessionSender, Transport,
};
