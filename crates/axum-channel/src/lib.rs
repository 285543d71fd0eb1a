//! Realtime, browser-friendly channels for [axum] apps, as one Tower layer.
//!
//! Add [`ChannelLayer`] to a `Router`; every request under its prefix (default
//! `/channel`) is answered by the layer, every other request reaches your
//! routes untouched. Each client connection becomes a [`Session`] handed to
//! your callback:
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use axum_channel::{ChannelConfig, ChannelLayer};
//! use futures::StreamExt;
//!
//! # async fn run() {
//! let config = ChannelConfig::new().on_session(|mut session| async move {
//!     // Echo every message back to the client that sent it.
//!     while let Some(message) = session.next().await {
//!         if let Some(json) = message.into_json() {
//!             let _ = session.send(json);
//!         }
//!     }
//! });
//! let app = Router::new()
//!     .route("/healthz", get(|| async { "ok" }))
//!     .layer(ChannelLayer::new(config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! The transport today is Google's BrowserChannel, version 8, wire-compatible
//! with node-browserchannel and its `BCSocket` client. The protocol rules
//! themselves live in the sans-IO crate `channel-protocol`; this crate adds
//! HTTP, timers and the session API.
//!
//! [axum]: https://docs.rs/axum
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod browserchannel;
mod config;
mod event_source;
mod http_util;
mod layer;
mod registry;
mod session;
mod sockjs;
mod timer;
mod websocket;

pub use config::{ChannelConfig, SessionRequest};
pub use event_source::EventSourceConfig;
pub use layer::{ChannelHandle, ChannelLayer, ChannelService, ResponseFuture};
pub use session::{
    CloseReason, Closed, Delivery, Message, SendError, Session, SessionSender, Transport,
};
pub use sockjs::{JSessionIdFn, SockJsConfig};
pub use websocket::WebSocketConfig;
