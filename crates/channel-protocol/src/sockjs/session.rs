//! The state of one SockJS session, without IO.
//!
//! A session has at most one *receiver* at a time: the request (or
//! WebSocket) that frames are written to. Messages sent while no receiver is
//! attached wait in a bounded buffer. The first receiver gets the open frame;
//! after the app closes the session, every receiver gets the close frame.

use super::framing;

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Created; the open frame has not been sent.
    Connecting,
    /// Open: messages flow.
    Open,
    /// Closed by the server; receivers get the close frame until the session is forgotten.
    Closing,
}

/// What a new receiving request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// Another receiver is attached: write these frames (a 2010 close) and end.
    Busy(Vec<String>),
    /// The session is closed: write these frames (pending messages, then the
    /// close frame) and end.
    Closed(Vec<String>),
    /// The receiver is attached: write these frames and keep it.
    Attached {
        /// Frames to write now: `o` for a new session, then pending messages.
        frames: Vec<String>,
        /// True when this receiver opened the session: the app learns of it now.
        opened: bool,
    },
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueError {
    /// The session is not open.
    NotOpen,
    /// The bound on buffered messages is reached.
    Full {
        /// The bound.
        limit: usize,
    },
}

/// One SockJS session's protocol state.
#[derive(Debug, Clone)]
pub struct SessionState {
    phase: Phase,
    pending: Vec<String>,
    max_pending: usize,
    close_frame: Option<String>,
    attached: bool,
}

impl SessionState {
    /// A new session that buffers at most `max_pending` messages.
    pub fn new(max_pending: usize) -> Self {
        Self {
            phase: Phase::Connecting,
            pending: Vec::new(),
            max_pending,
            close_frame: None,
            attached: false,
        }
    }

    /// Where the session is in its life.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// True while a receiver is attached.
    pub fn is_attached(&self) -> bool {
        self.attached
    }

    /// A receiving request arrived.
    pub fn attach(&mut self) -> Attach {
        if self.attached {
            return Attach::Busy(vec![framing::another_connection_still_open()]);
        }
        if self.phase == Phase::Closing {
            let mut frames: Vec<String> = self.take_messages().into_iter().collect();
            frames.extend(self.close_frame.clone());
            return Attach::Closed(frames);
        }
        self.attached = true;
        let mut frames = Vec::new();
        let opened = self.phase == Phase::Connecting;
        if opened {
            frames.push(framing::OPEN.to_owned());
            self.phase = Phase::Open;
        }
        frames.extend(self.take_messages());
        Attach::Attached { frames, opened }
    }

    /// The receiver went away (ended, or the client left).
    pub fn detach(&mut self) {
        self.attached = false;
    }

    /// Buffers a message for the peer.
    pub fn queue(&mut self, message: String) -> Result<(), QueueError> {
        if self.phase != Phase::Open {
            return Err(QueueError::NotOpen);
        }
        if self.pending.len() >= self.max_pending {
            return Err(QueueError::Full {
                limit: self.max_pending,
            });
        }
        self.pending.push(message);
        Ok(())
    }

    /// Takes every buffered message as one `a[...]` frame.
    pub fn take_messages(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let frame = framing::messages(&self.pending);
        self.pending.clear();
        Some(frame)
    }

    /// True when messages wait for a receiver.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Closes the session; returns the close frame when this call closed it.
    /// A session that never opened closes too (its first receiver gets the close frame).
    pub fn close(&mut self, code: u16, reason: &str) -> Option<String> {
        if self.phase == Phase::Closing {
            return None;
        }
        self.phase = Phase::Closing;
        let frame = framing::close(code, reason);
        self.close_frame = Some(frame.clone());
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_receiver_opens_the_session() {
        let mut state = SessionState::new(8);
        assert_eq!(state.queue("early".into()), Err(QueueError::NotOpen));
        assert_eq!(
            state.attach(),
            Attach::Attached {
                frames: vec!["o".into()],
                opened: true
            }
        );
        assert_eq!(state.phase(), Phase::Open);
    }

    #[test]
    fn a_second_receiver_is_turned_away() {
        let mut state = SessionState::new(8);
        state.attach();
        assert_eq!(
            state.attach(),
            Attach::Busy(vec![r#"c[2010,"Another connection still open"]"#.into()])
        );
        assert!(state.is_attached());
    }

    #[test]
    fn buffered_messages_go_to_the_next_receiver_in_one_frame() {
        let mut state = SessionState::new(8);
        state.attach();
        state.detach();
        state.queue("a".into()).unwrap();
        state.queue("b".into()).unwrap();
        assert_eq!(
            state.attach(),
            Attach::Attached {
                frames: vec![r#"a["a","b"]"#.into()],
                opened: false
            }
        );
        assert!(!state.has_pending());
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut state = SessionState::new(1);
        state.attach();
        state.queue("a".into()).unwrap();
        assert_eq!(state.queue("b".into()), Err(QueueError::Full { limit: 1 }));
    }

    #[test]
    fn a_closed_session_answers_every_receiver_with_its_close_frame() {
        let mut state = SessionState::new(8);
        state.attach();
        state.queue("last".into()).unwrap();
        state.detach();
        assert_eq!(
            state.close(3000, "Go away!"),
            Some(r#"c[3000,"Go away!"]"#.into())
        );
        assert_eq!(state.close(1, "again"), None);
        assert_eq!(
            state.attach(),
            Attach::Closed(vec![r#"a["last"]"#.into(), r#"c[3000,"Go away!"]"#.into()])
        );
        assert_eq!(
            state.attach(),
            Attach::Closed(vec![r#"c[3000,"Go away!"]"#.into()])
        );
        assert_eq!(state.queue("late".into()), Err(QueueError::NotOpen));
    }
}
