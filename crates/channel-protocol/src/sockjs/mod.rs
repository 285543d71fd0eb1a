//! SockJS protocol 0.3, as sockjs-node serves it.
//!
//! A SockJS session carries *frames*: `o` (open), `h` (heartbeat),
//! `a[...]` (an array of messages) and `c[code,"reason"]` (close). The
//! transports differ only in how a frame travels: as a WebSocket text
//! message, a line of an XHR response, an event of an event stream, a
//! `<script>` call in an html file, or a JSONP callback.
//!
//! [`path`] names the endpoint a request is for, [`pages`] holds the fixed pages, [`framing`] builds frames,
//! [`payload`] decodes what clients send, [`receiver`] wraps frames for each
//! transport, [`transport`] says what each transport allows and answers,
//! [`session`] holds a session's state, and [`websocket`] carries a session
//! over one WebSocket.

pub mod framing;
pub mod pages;
pub mod path;
pub mod payload;
pub mod receiver;
pub mod session;
pub mod transport;
pub mod websocket;

pub use path::{Endpoint, TransportKind};
pub use payload::PayloadError;
pub use receiver::ReceiverEncoding;
pub use session::{Attach, ReceiverKind, Session, SessionConfig};
pub use transport::{CallbackError, Cors, Role, SendBody, SendReply};
pub use websocket::WebSocketSession;
