//! A cluster of `axum-channel` nodes over Redis pub/sub.
//!
//! Give every node the same Redis URL: rooms, broadcasts, room counts and
//! session lookups then span all of them. A node hears only the rooms it
//! has members in (one Redis channel per room), each member gets a
//! broadcast once however many of its rooms it targets, and every node
//! reconnects and subscribes again by itself when Redis comes back.
//!
//! ```no_run
//! use axum::Router;
//! use axum_channel::{ChannelConfig, ChannelLayer};
//! use axum_channel_redis::{RedisAdapter, RedisConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let adapter = RedisAdapter::connect(RedisConfig::new("redis://127.0.0.1:6379/")).await?;
//! let layer = ChannelLayer::new(
//!     ChannelConfig::new().cluster(adapter).on_session(|session| async move {
//!         session.join("lobby").await.ok();
//!         session.channels().broadcast("someone joined").to("lobby").send().await.ok();
//!     }),
//! );
//! let app: Router = Router::new().layer(layer);
//! # Ok(()) }
//! ```
//!
//! BrowserChannel and SockJS sessions live on the node that opened them, so
//! a load balancer in front of the nodes must keep each session's requests
//! on one node: see the project README for an nginx recipe.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod adapter;
mod config;
mod liveness;
mod log;
mod signals;
mod subscriptions;

pub use adapter::RedisAdapter;
pub use config::RedisConfig;
