//! An entry of a room's history log as the nodes following the room hear
//! it on [`Topic::Log`](super::Topic::Log): its position, a space, then the
//! broadcast's frame. The log gives the position when it appends the entry,
//! so every node stamps the message alike.

use super::frame::FrameError;
use crate::history::Position;

/// The bytes of an entry at `position` carrying `frame`.
///
/// ```
/// use axum_channel_protocol::cluster::entry;
/// use axum_channel_protocol::history::Position;
///
/// let bytes = entry::encode(Position::new(0xab, 7), b"frame");
/// assert_eq!(bytes, b"7-ab frame");
/// assert_eq!(entry::decode(&bytes).unwrap(), (Position::new(0xab, 7), &b"frame"[..]));
/// assert!(entry::decode(b"7 frame").is_err());
/// ```
pub fn encode(position: Position, frame: &[u8]) -> Vec<u8> {
    let mut bytes = position.to_string().into_bytes();
    bytes.push(b' ');
    bytes.extend_from_slice(frame);
    bytes
}

/// The position and the frame of an entry's bytes.
pub fn decode(bytes: &[u8]) -> Result<(Position, &[u8]), FrameError> {
    let space = bytes
        .iter()
        .take(40)
        .position(|&b| b == b' ')
        .ok_or(FrameError("a log entry without its position"))?;
    let position = std::str::from_utf8(&bytes[..space])
        .ok()
        .and_then(|text| text.parse::<Position>().ok())
        .ok_or(FrameError("a log entry whose position is malformed"))?;
    Ok((position, &bytes[space + 1..]))
}
