//! The close codes this crate's engines send, named after their sources:
//! RFC 6455 section 7.4.1 for WebSocket, and sockjs-node for SockJS's own.
//!
//! ```
//! use axum_channel_protocol::close_code;
//!
//! assert_eq!(close_code::NORMAL_CLOSURE, 1000);
//! assert_eq!(close_code::SOCKJS_GO_AWAY, 3000);
//! ```

/// 1000, "normal closure": the purpose of the connection was fulfilled
/// (RFC 6455 section 7.4.1). SockJS's argument-less close says it too.
pub const NORMAL_CLOSURE: u16 = 1000;

/// 1001, "going away": the server is shutting down, or the peer stopped
/// answering pings (RFC 6455 section 7.4.1).
pub const GOING_AWAY: u16 = 1001;

/// 1002, "protocol error": the peer broke the framing (RFC 6455 section 7.4.1).
pub const PROTOCOL_ERROR: u16 = 1002;

/// 1007, "invalid frame payload data": a text message that is not UTF-8
/// (RFC 6455 section 7.4.1).
pub const INVALID_PAYLOAD: u16 = 1007;

/// 1008, "policy violation": the peer broke a rule of this server, such as
/// keeping up with broadcasts (RFC 6455 section 7.4.1).
pub const POLICY_VIOLATION: u16 = 1008;

/// 1009, "message too big": a message over the server's limit (RFC 6455
/// section 7.4.1).
pub const MESSAGE_TOO_BIG: u16 = 1009;

/// 2010: SockJS's answer to a receiving request while another one is
/// attached, `c[2010,"Another connection still open"]` (sockjs-node).
pub const ANOTHER_CONNECTION_STILL_OPEN: u16 = 2010;

/// 3000: SockJS's code for a close the server chose: the app's close with
/// a reason, sockjs-node's `c[3000,"Go away!"]`, and `Broken framing.` of
/// a WebSocket message that is not a JSON array (sockjs-node).
pub const SOCKJS_GO_AWAY: u16 = 3000;
