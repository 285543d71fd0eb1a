//! The `text/event-stream` format of server-sent events (the HTML standard's
//! EventSource): fields `event`, `id`, `data` and `retry`, comment lines that
//! start with `:`, and a blank line that ends each event. [`format`](mod@format) writes
//! them; [`session`] holds the state of one EventSource session.
//!
//! Every EventSource parser ends a line at `\r\n`, `\n` or a lone `\r`, so
//! all three are treated alike here: app text can never start a field of
//! its own.

pub mod format;
pub mod session;

pub use format::{encode_comment, encode_event, encode_retry, padding};
pub use session::{Session, SessionConfig};
