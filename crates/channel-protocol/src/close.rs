//! Why a session ended, in the same words for every transport.

use crate::close_code::{GOING_AWAY, NORMAL_CLOSURE, POLICY_VIOLATION, SOCKJS_GO_AWAY};
use std::fmt;

/// Why a session ended.
///
/// ```
/// use axum_channel_protocol::CloseReason;
///
/// let reason = CloseReason::Peer { code: Some(1000), reason: "bye".into() };
/// assert_eq!(reason.to_string(), "closed by peer: 1000 bye");
/// assert_eq!(CloseReason::Closed("done".into()).websocket_close(), (1000, "done".to_owned()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The app called `close` with this reason.
    Closed(String),
    /// The app called `close_with_code` (WebSocket and SockJS close codes).
    ClosedWithCode {
        /// The close code sent to the peer.
        code: u16,
        /// The reason sent to the peer.
        reason: String,
    },
    /// The peer closed the session; WebSocket peers may give a code and reason.
    Peer {
        /// The peer's close code, if it sent one.
        code: Option<u16>,
        /// The peer's reason, empty if none.
        reason: String,
    },
    /// The peer broke the protocol or a limit; the server closed with `code`.
    Failed {
        /// The close code sent to the peer (1002, 1007, 1009, 3000...).
        code: u16,
        /// What went wrong.
        reason: String,
    },
    /// The peer stopped answering pings.
    PingTimeout,
    /// The connection dropped without a closing handshake.
    ConnectionLost,
    /// The client had no back channel (or receiver) for longer than the session allows.
    TimedOut,
    /// The client asked to end the session (BrowserChannel `TYPE=terminate`).
    Disconnected,
    /// The client opened a new session naming this one as its old one (`OSID`).
    Reconnected,
    /// The client did not take a broadcast while its session's queue was
    /// full, and the broadcast's overflow policy closes such sessions
    /// (`Overflow::Close`). Nothing else closes with it: a slow app only
    /// pauses reading from the client.
    Lagging,
    /// The server is shutting down.
    Shutdown,
}

impl CloseReason {
    /// The WebSocket close code and reason the server sends for this reason
    /// (RFC 6455 section 7.4: 1000 normal, 1001 going away).
    pub fn websocket_close(&self) -> (u16, String) {
        match self {
            CloseReason::Closed(text) => (NORMAL_CLOSURE, text.clone()),
            CloseReason::ClosedWithCode { code, reason } | CloseReason::Failed { code, reason } => {
                (*code, reason.clone())
            }
            CloseReason::Shutdown => (GOING_AWAY, "Server shutting down".into()),
            CloseReason::PingTimeout => (GOING_AWAY, "Ping timeout".into()),
            CloseReason::Lagging => (POLICY_VIOLATION, "Too slow".into()),
            other => (NORMAL_CLOSURE, other.to_string()),
        }
    }

    /// The SockJS close frame's code and reason for a server-side close:
    /// 3000 and the reason unless the app chose a code. A close without a
    /// reason is sockjs-node's argument-less `conn.close()`,
    /// `c[1000,"Normal closure"]`. (`c[3000,"Go away!"]` is only what
    /// sockjs-node's test server sends from its `/close` app.)
    ///
    /// ```
    /// use axum_channel_protocol::CloseReason;
    ///
    /// assert_eq!(CloseReason::Closed(String::new()).sockjs_close(), (1000, "Normal closure".to_owned()));
    /// assert_eq!(CloseReason::Closed("bye".into()).sockjs_close(), (3000, "bye".to_owned()));
    /// ```
    pub fn sockjs_close(&self) -> (u16, String) {
        match self {
            CloseReason::Closed(text) if text.is_empty() => {
                (NORMAL_CLOSURE, "Normal closure".into())
            }
            CloseReason::Closed(text) => (SOCKJS_GO_AWAY, text.clone()),
            CloseReason::ClosedWithCode { code, reason } | CloseReason::Failed { code, reason } => {
                (*code, reason.clone())
            }
            other => (SOCKJS_GO_AWAY, other.to_string()),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Closed(reason) => f.write_str(reason),
            CloseReason::ClosedWithCode { code, reason } => write!(f, "{code} {reason}"),
            CloseReason::Peer {
                code: Some(code),
                reason,
            } => write!(f, "closed by peer: {code} {reason}"),
            CloseReason::Peer { code: None, .. } => f.write_str("closed by peer"),
            CloseReason::Failed { code, reason } => write!(f, "{code} {reason}"),
            CloseReason::PingTimeout => f.write_str("Ping timeout"),
            CloseReason::ConnectionLost => f.write_str("Connection lost"),
            CloseReason::TimedOut => f.write_str("Timed out"),
            CloseReason::Disconnected => f.write_str("Disconnected"),
            CloseReason::Reconnected => f.write_str("Reconnected"),
            CloseReason::Lagging => f.write_str("Too slow for a broadcast"),
            CloseReason::Shutdown => f.write_str("Server shutting down"),
        }
    }
}

/// Why a message was not delivered.
///
/// ```
/// use axum_channel_protocol::SendError;
///
/// let full = SendError::QueueTooLarge { limit_bytes: 1 << 20 };
/// assert_eq!(full.to_string(), "more than 1048576 bytes would be waiting; the queue is full");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The session closed before the message was confirmed.
    Closed(CloseReason),
    /// Too many messages are waiting; this one was not queued.
    QueueFull {
        /// The bound that was reached.
        limit: usize,
    },
    /// The messages waiting hold too many bytes; this one was not queued.
    /// A queue takes one message of any size while nothing waits, so a
    /// message larger than the bound goes out once the queue has drained.
    QueueTooLarge {
        /// The bound in bytes that this message would have passed.
        limit_bytes: usize,
    },
    /// The session's transport cannot carry this kind of message.
    Unsupported(&'static str),
    /// The confirmation did not come in time. The message stays queued: it
    /// may still reach the peer.
    TimedOut,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(reason) => write!(f, "session closed: {reason}"),
            SendError::QueueFull { limit } => {
                write!(f, "{limit} messages are waiting; the queue is full")
            }
            SendError::QueueTooLarge { limit_bytes } => {
                write!(
                    f,
                    "more than {limit_bytes} bytes would be waiting; the queue is full"
                )
            }
            SendError::Unsupported(what) => write!(f, "this transport cannot send {what}"),
            SendError::TimedOut => f.write_str("the delivery was not confirmed in time"),
        }
    }
}

impl std::error::Error for SendError {}
