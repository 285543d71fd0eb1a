//! Where a message stands in its room's history.

use std::fmt;
use std::str::FromStr;

/// A message's place in its room's history: its offset (1 for the room's
/// first message, then one more for each) and the epoch of the history that
/// gave it.
///
/// A history that is lost (dropped for being idle or over its bounds, or
/// kept by a store that lost its data) starts again under a new epoch, so a
/// position from a lost history never names a message of the current one.
/// Clients see it as an opaque string, `OFFSET-EPOCH` (the epoch in hex).
///
/// ```
/// use axum_channel_protocol::history::Position;
///
/// let position = Position::new(0x9f3c, 42);
/// assert_eq!(position.to_string(), "42-9f3c");
/// assert_eq!("42-9f3c".parse::<Position>(), Ok(position));
/// assert!("42".parse::<Position>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    /// The history the position belongs to.
    pub epoch: u64,
    /// The message's number in that history, from 1.
    pub offset: u64,
}

impl Position {
    /// The message at `offset` of the history `epoch`.
    pub fn new(epoch: u64, offset: u64) -> Self {
        Self { epoch, offset }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:x}", self.offset, self.epoch)
    }
}

/// A string that is not a position this crate wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPosition;

impl fmt::Display for BadPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a history position")
    }
}

impl std::error::Error for BadPosition {}

/// Only the form [`Display`](fmt::Display) writes: decimal digits, `-`,
/// lowercase hex digits; no sign, no spaces, no leading zeros, at most the
/// digits a `u64` needs.
impl FromStr for Position {
    type Err = BadPosition;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (offset, epoch) = text.split_once('-').ok_or(BadPosition)?;
        let canonical = |digits: &str, max: usize, hex: bool| {
            !digits.is_empty()
                && digits.len() <= max
                && (digits == "0" || !digits.starts_with('0'))
                && digits
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&b)))
        };
        if !canonical(offset, 20, false) || !canonical(epoch, 16, true) {
            return Err(BadPosition);
        }
        Ok(Self {
            offset: offset.parse().map_err(|_| BadPosition)?,
            epoch: u64::from_str_radix(epoch, 16).map_err(|_| BadPosition)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_written_form_parses() {
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "01-1",
            "1-01",
            "1-A",
            "+1-1",
            "1-1-1",
            " 1-1",
            "1-g",
            "99999999999999999999-1",
            "1-10000000000000000",
        ] {
            assert_eq!(bad.parse::<Position>(), Err(BadPosition), "{bad:?}");
        }
        let far = Position::new(u64::MAX, u64::MAX);
        assert_eq!(far.to_string().parse::<Position>(), Ok(far));
        assert_eq!("0-0".parse::<Position>(), Ok(Position::new(0, 0)));
    }
}
