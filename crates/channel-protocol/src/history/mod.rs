//! Room history: a room's recent broadcasts, each at a [`Position`], so a
//! client that reconnects can get exactly what it missed.
//!
//! A position is an offset within the room's history and the epoch of that
//! history. Offsets are contiguous and only the oldest messages are ever
//! trimmed, so "everything after this position" is either all there or
//! provably not ([`Lookup::Unrecoverable`]): a history never answers with a
//! gap.

mod position;
mod store;

pub use position::{BadPosition, Position};
pub use store::{Accepted, Histories, HistoryLimits, Lookup, Unrecoverable};

#[cfg(test)]
mod tests;
