//! Google's BrowserChannel protocol, version 8, as served by node-browserchannel.
//!
//! A BrowserChannel client talks to the server over plain HTTP requests:
//!
//! 1. **Connection test**: `GET test?MODE=init` asks for a host prefix, then
//!    `GET test` checks whether a proxy buffers streamed responses.
//! 2. **Forward channel**: `POST bind` carries numbered *maps* from client to
//!    server. The first one, without `SID`, creates the session.
//! 3. **Back channel**: a hanging `GET bind?RID=rpc` streams numbered *arrays*
//!    from server to client. The client acknowledges them with `AID` on its
//!    next request.
//!
//! The modules follow the request kinds: [`query`] reads the parameters,
//! [`connection_test`] answers the test requests, [`forward_channel`]
//! decodes POST bodies, [`back_channel`] encodes what the server writes,
//! and [`session`] holds the per-session state that ties them together.

pub mod back_channel;
pub mod connection_test;
pub mod forward_channel;
pub mod query;
pub mod session;

pub use back_channel::BackChannelEncoder;
pub use connection_test::ConnectionTest;
pub use forward_channel::{
    decode_forward_channel, ForwardBatch, ForwardError, ForwardMessage, FORWARD_CHANNEL_HOLD,
};
pub use query::{Query, RequestId, RequestType, PROTOCOL_VERSION};
pub use session::{Session, SessionConfig};
