//! The closing handshake of a WebSocket (RFC 6455 section 7), and the
//! drain that follows it, shared by every engine carried by one WebSocket.
//!
//! The side that closes first sends a close frame and waits for the
//! peer's; the connection is finished once the peer answered, or after a
//! close timeout without an answer (RFC 6455 section 7.1.1 lets the server
//! drop the connection then). A finished connection may still hold bytes
//! the IO side took but has not written, such as the answer the framing
//! gives a peer's close frame: it flushes them for at most
//! [`DRAIN_TIMEOUT`], then drops the connection.
//!
//! The handshake keeps its two timers in its engine's [`TimerTable`] under
//! the engine's own names ([`ClosingTimers`]).
//!
//! ```
//! use axum_channel_protocol::engine::Transmit;
//! use axum_channel_protocol::timer::{Timer, TimerTable};
//! use axum_channel_protocol::websocket::closing::{ClosingHandshake, ClosingTimers, DRAIN_TIMEOUT};
//! use std::time::{Duration, Instant};
//!
//! #[derive(Debug, Clone, Copy, PartialEq, Eq)]
//! enum Named { Close, Drain }
//! impl Timer for Named {
//!     const ALL: &'static [Self] = &[Named::Close, Named::Drain];
//!     fn index(self) -> usize { self as usize }
//! }
//! impl ClosingTimers for Named {
//!     const CLOSE: Self = Named::Close;
//!     const DRAIN: Self = Named::Drain;
//! }
//!
//! let now = Instant::now();
//! let mut timers = TimerTable::<Named, 2>::new(now);
//! let mut closing = ClosingHandshake::new();
//! closing.start(1000, "bye".into());
//! let timeout = Duration::from_secs(5);
//! assert_eq!(closing.poll_close(now, &mut timers, timeout), Some(Transmit::Close { code: 1000, reason: "bye".into() }));
//! assert_eq!(timers.get(Named::Close), Some(now + timeout));
//! // The peer never answers: the close timeout finishes the connection.
//! assert!(closing.handle_timeout(now + timeout, &mut timers));
//! closing.finish(now + timeout, &mut timers);
//! assert_eq!(timers.next(), Some((Named::Drain, now + timeout + DRAIN_TIMEOUT)));
//! closing.handle_flushed(&mut timers);
//! assert!(closing.is_done());
//! ```

use crate::engine::Transmit;
use crate::timer::{Timer, TimerTable};
use std::time::{Duration, Instant};

/// How long a finished connection may take to write what the IO side
/// still holds before it is dropped.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The names an engine gives the closing handshake's timers in its table.
pub trait ClosingTimers: Timer {
    /// Runs from the server's close frame until the peer's answer.
    const CLOSE: Self;
    /// Runs from the end of the session until the IO side flushed.
    const DRAIN: Self;
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Open,
    /// The server's close frame waits to be written.
    Pending {
        code: u16,
        reason: String,
    },
    /// The server's close frame is written; the close timer runs.
    Sent,
    /// Nothing more is read or written; the drain timer runs.
    Finished,
    /// Finished and flushed, or the drain ran out.
    Done,
}

/// Where one WebSocket is in its closing handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosingHandshake {
    state: State,
}

impl Default for ClosingHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ClosingHandshake {
    /// An open connection.
    pub fn new() -> Self {
        Self { state: State::Open }
    }

    /// True until the server closes or the connection finishes.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// True while the server's close frame waits to be written or for its answer.
    pub fn is_closing(&self) -> bool {
        matches!(self.state, State::Pending { .. } | State::Sent)
    }

    /// True while the server's close frame waits to be written.
    pub fn is_pending(&self) -> bool {
        matches!(self.state, State::Pending { .. })
    }

    /// True once the server's close frame is written and until the connection finishes.
    pub fn is_sent(&self) -> bool {
        self.state == State::Sent
    }

    /// True once nothing more is read or written.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished | State::Done)
    }

    /// True once the connection may be dropped: finished, and flushed or drained.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The server closes with `code` and `reason`; the frame goes out with
    /// [`poll_close`](Self::poll_close). False (and nothing changes) unless open.
    pub fn start(&mut self, code: u16, reason: String) -> bool {
        if !self.is_open() {
            return false;
        }
        self.state = State::Pending { code, reason };
        true
    }

    /// The close frame, once, when it waits; the close timer starts.
    pub fn poll_close<T: ClosingTimers, const N: usize>(
        &mut self,
        now: Instant,
        timers: &mut TimerTable<T, N>,
        close_timeout: Duration,
    ) -> Option<Transmit> {
        if !self.is_pending() {
            return None;
        }
        let State::Pending { code, reason } = std::mem::replace(&mut self.state, State::Sent)
        else {
            return None;
        };
        timers.set(T::CLOSE, now + close_timeout);
        Some(Transmit::Close { code, reason })
    }

    /// The engine wrote a close frame of its own (a SockJS session's):
    /// the close timer starts. Nothing changes once finished.
    pub fn sent<T: ClosingTimers, const N: usize>(
        &mut self,
        now: Instant,
        timers: &mut TimerTable<T, N>,
        close_timeout: Duration,
    ) {
        if !self.is_finished() {
            self.state = State::Sent;
            timers.set(T::CLOSE, now + close_timeout);
        }
    }

    /// The connection finishes: the peer answered, the connection was
    /// lost, or the close timeout ran out. Every timer of the table stops
    /// (a finished connection runs none of its engine's) and the drain
    /// starts. True if it was not finished before.
    pub fn finish<T: ClosingTimers, const N: usize>(
        &mut self,
        now: Instant,
        timers: &mut TimerTable<T, N>,
    ) -> bool {
        if self.is_finished() {
            return false;
        }
        self.state = State::Finished;
        timers.stop_all();
        timers.set(T::DRAIN, now + DRAIN_TIMEOUT);
        true
    }

    /// The IO side flushed everything it took: a finished connection is
    /// done. A flush before the end changes nothing.
    pub fn handle_flushed<T: ClosingTimers, const N: usize>(
        &mut self,
        timers: &mut TimerTable<T, N>,
    ) {
        if self.state == State::Finished {
            self.state = State::Done;
            timers.stop(T::DRAIN);
        }
    }

    /// Runs the handshake's timers due at `now`. True when the close
    /// timeout ran out: the engine must finish the connection.
    pub fn handle_timeout<T: ClosingTimers, const N: usize>(
        &mut self,
        now: Instant,
        timers: &mut TimerTable<T, N>,
    ) -> bool {
        if timers.expire(T::DRAIN, now) && self.state == State::Finished {
            self.state = State::Done;
        }
        timers.expire(T::CLOSE, now) && self.is_sent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Named {
        Other,
        Close,
        Drain,
    }

    impl Timer for Named {
        const ALL: &'static [Self] = &[Named::Other, Named::Close, Named::Drain];
        fn index(self) -> usize {
            self as usize
        }
    }

    impl ClosingTimers for Named {
        const CLOSE: Self = Named::Close;
        const DRAIN: Self = Named::Drain;
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[test]
    fn the_close_frame_goes_out_once_and_starts_the_close_timer() {
        let now = Instant::now();
        let mut timers = TimerTable::<Named, 3>::new(now);
        let mut closing = ClosingHandshake::new();
        assert_eq!(closing.poll_close(now, &mut timers, TIMEOUT), None);
        assert!(closing.start(1002, "bad".into()));
        assert!(!closing.start(1000, "again".into()));
        assert!(closing.is_pending() && closing.is_closing());
        assert_eq!(
            closing.poll_close(now, &mut timers, TIMEOUT),
            Some(Transmit::Close {
                code: 1002,
                reason: "bad".into()
            })
        );
        assert_eq!(closing.poll_close(now, &mut timers, TIMEOUT), None);
        assert!(closing.is_sent());
        assert!(!closing.handle_timeout(now + TIMEOUT - Duration::from_nanos(1), &mut timers));
        assert!(closing.handle_timeout(now + TIMEOUT, &mut timers));
    }

    #[test]
    fn the_peers_answer_finishes_and_a_flush_makes_it_done() {
        let now = Instant::now();
        let mut timers = TimerTable::<Named, 3>::new(now);
        timers.set(Named::Other, now + Duration::from_secs(1));
        let mut closing = ClosingHandshake::new();
        closing.sent(now, &mut timers, TIMEOUT);
        // A flush before the end is not the end's flush.
        closing.handle_flushed(&mut timers);
        assert!(!closing.is_done());
        let later = now + Duration::from_secs(1);
        assert!(closing.finish(later, &mut timers));
        assert!(!closing.finish(later, &mut timers));
        assert!(closing.is_finished() && !closing.is_done());
        assert_eq!(timers.next(), Some((Named::Drain, later + DRAIN_TIMEOUT)));
        closing.handle_flushed(&mut timers);
        assert!(closing.is_done());
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn a_drain_that_never_flushes_runs_out() {
        let now = Instant::now();
        let mut timers = TimerTable::<Named, 3>::new(now);
        let mut closing = ClosingHandshake::new();
        closing.finish(now, &mut timers);
        assert!(!closing.handle_timeout(now + DRAIN_TIMEOUT, &mut timers));
        assert!(closing.is_done());
        assert_eq!(timers.next(), None);
    }
}
