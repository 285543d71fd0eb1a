//! What a WebSocket reader reports when the peer breaks the protocol or a
//! limit, and the close code each answer carries (RFC 6455 section 7.4.1).
//!
//! Every reader (tungstenite for RFC 6455, [`crate::hixie76`] for the
//! legacy drafts, the [`TextGuard`](super::TextGuard) before either) turns
//! its own errors into a [`Violation`]; this module alone decides the code
//! and the reason the session closes with.
//!
//! ```
//! use axum_channel_protocol::websocket::{Incoming, Violation};
//!
//! let too_big = Violation::MessageTooBig { size: Some(70_000), max: 65_536 };
//! assert_eq!(too_big.code(), 1009);
//! assert_eq!(
//!     Incoming::from(too_big),
//!     Incoming::Failed { code: 1009, reason: "Message of 70000 bytes exceeds 65536".into() }
//! );
//! ```

use super::framed::Incoming;
use super::utf8_guard::InvalidUtf8;
use crate::close_code::{INVALID_PAYLOAD, MESSAGE_TOO_BIG, PROTOCOL_ERROR};
use crate::hixie76::FrameError;
use std::fmt;

/// How the peer broke the protocol or a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A message (or frame) longer than the limit: 1009. `size` is how
    /// long it is, when the reader knows.
    MessageTooBig {
        /// The message's size in bytes, if known.
        size: Option<usize>,
        /// The limit in bytes.
        max: usize,
    },
    /// Another limit of the reader was exceeded: 1009, with its words.
    LimitExceeded(String),
    /// A text message that is not UTF-8: 1007.
    InvalidUtf8,
    /// Any other break of the framing: 1002, with the reader's words.
    Protocol(String),
}

impl Violation {
    /// The close code the session fails with (RFC 6455 section 7.4.1).
    pub fn code(&self) -> u16 {
        match self {
            Violation::MessageTooBig { .. } | Violation::LimitExceeded(_) => MESSAGE_TOO_BIG,
            Violation::InvalidUtf8 => INVALID_PAYLOAD,
            Violation::Protocol(_) => PROTOCOL_ERROR,
        }
    }

    /// The reason the close frame and the app are given.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::MessageTooBig {
                size: Some(size),
                max,
            } => write!(f, "Message of {size} bytes exceeds {max}"),
            Violation::MessageTooBig { size: None, max } => {
                write!(f, "Message exceeds {max} bytes")
            }
            Violation::LimitExceeded(text) | Violation::Protocol(text) => f.write_str(text),
            Violation::InvalidUtf8 => f.write_str("Invalid UTF-8 in text message"),
        }
    }
}

impl std::error::Error for Violation {}

/// The session fails with the violation's code and reason.
impl From<Violation> for Incoming {
    fn from(violation: Violation) -> Self {
        Incoming::Failed {
            code: violation.code(),
            reason: violation.reason(),
        }
    }
}

/// A hixie-76 frame too long, not UTF-8, or of an unknown type.
impl From<FrameError> for Violation {
    fn from(error: FrameError) -> Self {
        match error {
            FrameError::TooLong { limit } => Violation::MessageTooBig {
                size: None,
                max: limit,
            },
            FrameError::InvalidUtf8 => Violation::InvalidUtf8,
            FrameError::BadFrameType(_) => Violation::Protocol(error.to_string()),
        }
    }
}

/// The fail-fast guard caught invalid UTF-8 in a text message still arriving.
impl From<InvalidUtf8> for Violation {
    fn from(_: InvalidUtf8) -> Self {
        Violation::InvalidUtf8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(violation: impl Into<Violation>) -> (u16, String) {
        match Incoming::from(violation.into()) {
            Incoming::Failed { code, reason } => (code, reason),
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn each_violation_has_its_code_and_reason() {
        assert_eq!(
            failed(Violation::MessageTooBig {
                size: Some(10),
                max: 4
            }),
            (1009, "Message of 10 bytes exceeds 4".into())
        );
        assert_eq!(
            failed(Violation::LimitExceeded("Too many headers".into())),
            (1009, "Too many headers".into())
        );
        assert_eq!(
            failed(Violation::InvalidUtf8),
            (1007, "Invalid UTF-8 in text message".into())
        );
        assert_eq!(
            failed(Violation::Protocol("Reserved bits are non-zero".into())),
            (1002, "Reserved bits are non-zero".into())
        );
    }

    #[test]
    fn hixie_frame_errors_map_to_the_same_codes() {
        assert_eq!(
            failed(FrameError::TooLong { limit: 4 }),
            (1009, "Message exceeds 4 bytes".into())
        );
        assert_eq!(failed(FrameError::InvalidUtf8).0, 1007);
        assert_eq!(
            failed(FrameError::BadFrameType(0x80)),
            (1002, "unexpected frame type 0x80".into())
        );
        assert_eq!(failed(InvalidUtf8).0, 1007);
    }
}
