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
//! The protocol rules live in the sans-IO crate `axum-channel-protocol`, whose
//! session engines take the time as an input; this crate adds HTTP,
//! WebSockets, timers and the session API, with one driver for every
//! transport.
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

pub use axum_channel_protocol::{CloseReason, Message, Payload, SendError};
pub use base::transport::Transport;
pub use config::{
    Admit, BrowserChannelConfig, ChannelConfig, EventSourceConfig, JSessionIdFn, Rejection,
    SessionRequest, SockJsConfig, WebSocketConfig,
};
pub use handle::broadcast::{AckStream, Broadcast, BroadcastError};
pub use handle::{ChannelHandle, MemberCount};
pub use ipnet::IpNet;
pub use layer::{ChannelLayer, ChannelService, ResponseFuture};
pub use serve::serve;
pub use services::fanout::{BroadcastReport, Overflow};
pub use session::{Closed, Delivery, JoinError, Session, SessionSender};
