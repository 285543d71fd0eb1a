//! Native WebSocket sessions (RFC 6455, and the legacy hixie-76 framing).
//!
//! Frame coding of plain sessions is tungstenite's (and
//! [`crate::hixie76`]'s); sessions with permessage-deflate read with
//! [`frame_reader`] and compress with [`permessage_deflate`] (RFC 7692:
//! negotiation, compressing, bounded inflating). This module also holds
//! what the session decides: [`handshake`] the opening
//! handshake, [`session`] the queue, pings and timers, [`framed`] what an engine on
//! one WebSocket exchanges with its IO side, [`closing`] the
//! closing handshake and the drain every engine on a WebSocket shares,
//! [`violation`] the close code for each way a peer breaks the protocol,
//! and [`utf8_guard`] the fail-fast UTF-8 check of text messages still
//! arriving.

pub mod closing;
pub mod frame_reader;
pub mod framed;
pub mod handshake;
pub mod permessage_deflate;
pub mod session;
pub mod utf8_guard;
pub mod violation;

pub use closing::{ClosingHandshake, DRAIN_TIMEOUT};
pub use framed::{Framed, Incoming};
pub use handshake::{Accepted, Handshake, Refusal};
pub use session::{Session, SessionConfig, SessionDeflate};
pub use utf8_guard::{InvalidUtf8, TextGuard};
pub use violation::Violation;
