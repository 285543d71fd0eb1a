//! The connection test a BrowserChannel client runs before it binds.
//!
//! Phase one (`GET test?MODE=init`) asks for a host prefix: the reply is
//! `[hostPrefix, null]` with an `X-Accept` header naming the forward
//! channel's content types. Phase two (`GET test`) tells whether a proxy
//! buffers streamed responses: the server writes `11111` at once, then `2`
//! after a delay; a client that sees both only together turns streaming
//! off (`CI=1`). Phase two is a small stream without IO ([`ConnectionTest`]);
//! the IO side runs it with one sleep.
//!
//! ```
//! use axum_channel_protocol::browserchannel::connection_test::{ConnectionTest, TEST_PHASE_DELAY};
//! use axum_channel_protocol::browserchannel::Query;
//! use axum_channel_protocol::engine::Transmit;
//! use std::time::Instant;
//!
//! let now = Instant::now();
//! let query = Query::parse("VER=8&TYPE=xmlhttp");
//! let mut test = ConnectionTest::new(now, &query, TEST_PHASE_DELAY);
//! assert!(matches!(test.poll_transmit(now), Some(Transmit::Data { bytes, .. }) if &bytes[..] == b"11111"));
//! assert_eq!(test.poll_transmit(now), None);
//! let due = test.poll_timeout().unwrap();
//! test.handle_timeout(due);
//! assert_eq!(test.poll_transmit(due), Some(Transmit::End("2".into())));
//! ```

use super::back_channel::{
    test_init_body, BackChannelEncoder, TEST_FIRST_CHUNK, TEST_SECOND_CHUNK,
};
use super::query::{Query, RequestType};
use crate::engine::Transmit;
use crate::timer::{self, TimerTable};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use std::time::{Duration, Instant};

/// How long phase two waits between its two writes: node-browserchannel's 2 s.
pub const TEST_PHASE_DELAY: Duration = Duration::from_secs(2);

/// The header of the phase one reply that names what the forward channel accepts.
pub const X_ACCEPT: HeaderName = HeaderName::from_static("x-accept");

/// Its value: the content types a forward channel POST may have.
pub const X_ACCEPT_VALUE: HeaderValue =
    HeaderValue::from_static("application/json; application/x-www-form-urlencoded");

/// Which phase a `test` request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `MODE=init`: answered with [`init_body`] and [`X_ACCEPT`] at once.
    Init,
    /// The buffering check: answered with a [`ConnectionTest`] stream.
    Buffering,
}

impl Phase {
    /// The phase `query` asks for. (`VER=8` is checked before, as for every
    /// request: [`Query::is_version_8`].)
    pub fn of(query: &Query) -> Self {
        if query.is_test_init() {
            Phase::Init
        } else {
            Phase::Buffering
        }
    }
}

/// The body of phase one's reply, `[hostPrefix, null]`, served as
/// `text/plain` with [`X_ACCEPT`]: [`X_ACCEPT_VALUE`].
pub fn init_body(host_prefix: Option<&str>) -> String {
    test_init_body(host_prefix)
}

/// Picks one of the server's host prefixes (none when it has none), by a
/// random number the IO side draws: the client spreads its requests over
/// subdomains to get past the browser's limit of connections per host.
///
/// ```
/// use axum_channel_protocol::browserchannel::connection_test::host_prefix;
///
/// let prefixes = ["a", "b", "c"];
/// assert_eq!(host_prefix(&prefixes, 4), Some("b"));
/// assert_eq!(host_prefix::<&str>(&[], 4), None);
/// ```
pub fn host_prefix<S: AsRef<str>>(prefixes: &[S], random: u128) -> Option<&str> {
    if prefixes.is_empty() {
        return None;
    }
    let pick = random % prefixes.len() as u128;
    Some(prefixes[pick as usize].as_ref())
}

/// The timer of a connection test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// The delay between phase two's writes.
    PhaseDelay,
}

impl timer::Timer for Timer {
    const ALL: &'static [Self] = &[Timer::PhaseDelay];

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The prelude and `11111` are still to be written.
    First,
    /// The same, and the delay passed already: the last piece follows at once.
    FirstThenLast,
    /// Waiting for the phase delay.
    Waiting,
    /// `2` and the end are due.
    Last,
    /// Everything is written.
    Done,
}

/// Phase two of the connection test: the prelude and `11111` at once, then
/// `2` and the encoding's end after the phase delay. The IO side writes
/// what [`poll_transmit`](Self::poll_transmit) gives, sleeps until
/// [`poll_timeout`](Self::poll_timeout), calls
/// [`handle_timeout`](Self::handle_timeout), and ends the response with
/// the [`Transmit::End`].
#[derive(Debug)]
pub struct ConnectionTest {
    encoder: BackChannelEncoder,
    /// `DOMAIN`, for the html prelude.
    domain: Option<String>,
    step: Step,
    timers: TimerTable<Timer, 1>,
}

impl ConnectionTest {
    /// The stream for a `test` request: html when `TYPE=html`, else
    /// xmlhttp; `delay` apart (node-browserchannel's is [`TEST_PHASE_DELAY`]).
    pub fn new(now: Instant, query: &Query, delay: Duration) -> Self {
        let encoder = match query.request_type {
            Some(RequestType::Html) => BackChannelEncoder::html(),
            _ => BackChannelEncoder::xmlhttp(),
        };
        let mut timers = TimerTable::new(now);
        timers.set(Timer::PhaseDelay, now + delay);
        Self {
            encoder,
            domain: query.domain().map(str::to_owned),
            step: Step::First,
            timers,
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        self.encoder.content_type()
    }

    /// What to write next: the first piece at once, then nothing until the
    /// delay passed, then the last piece as [`Transmit::End`].
    pub fn poll_transmit(&mut self, _now: Instant) -> Option<Transmit> {
        match self.step {
            Step::First | Step::FirstThenLast => {
                self.step = if self.step == Step::First {
                    Step::Waiting
                } else {
                    Step::Last
                };
                let first = self.encoder.prelude(self.domain.as_deref())
                    + &self.encoder.raw(TEST_FIRST_CHUNK);
                Some(Transmit::Data {
                    bytes: Bytes::from(first),
                    confirms: None,
                })
            }
            Step::Last => {
                self.step = Step::Done;
                let last = self.encoder.raw(TEST_SECOND_CHUNK) + self.encoder.end();
                Some(Transmit::End(Bytes::from(last)))
            }
            Step::Waiting | Step::Done => None,
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout): the end of the phase delay.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next().map(|(_, deadline)| deadline)
    }

    /// Runs the phase delay: once it passed, the last piece is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timers.expire(Timer::PhaseDelay, now) {
            self.step = match self.step {
                // A first piece not yet taken still goes out first.
                Step::First => Step::FirstThenLast,
                Step::Waiting => Step::Last,
                other => other,
            };
        }
    }

    /// True once the last piece was taken.
    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_one_answers_the_host_prefix() {
        assert_eq!(Phase::of(&Query::parse("VER=8&MODE=init")), Phase::Init);
        assert_eq!(Phase::of(&Query::parse("VER=8")), Phase::Buffering);
        assert_eq!(init_body(Some("b")), "[\"b\",null]");
        assert_eq!(init_body(None), "[null,null]");
        assert_eq!(X_ACCEPT.as_str(), "x-accept");
        assert_eq!(
            X_ACCEPT_VALUE,
            "application/json; application/x-www-form-urlencoded"
        );
    }

    #[test]
    fn the_host_prefix_is_picked_by_the_random_number() {
        let prefixes = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(host_prefix(&prefixes, 0), Some("a"));
        assert_eq!(host_prefix(&prefixes, 1), Some("b"));
        assert_eq!(host_prefix(&prefixes, u128::MAX), Some("b"));
    }

    #[test]
    fn phase_two_writes_twice_a_delay_apart() {
        let now = Instant::now();
        let query = Query::parse("VER=8&TYPE=xmlhttp");
        let mut test = ConnectionTest::new(now, &query, Duration::from_millis(500));
        assert_eq!(test.content_type(), "text/plain");
        assert_eq!(
            test.poll_transmit(now),
            Some(Transmit::Data {
                bytes: Bytes::from_static(b"11111"),
                confirms: None
            })
        );
        let due = now + Duration::from_millis(500);
        assert_eq!(test.poll_timeout(), Some(due));
        test.handle_timeout(due - Duration::from_millis(1));
        assert_eq!(test.poll_transmit(due), None);
        test.handle_timeout(due);
        assert_eq!(test.poll_timeout(), None);
        assert!(!test.is_done());
        assert_eq!(
            test.poll_transmit(due),
            Some(Transmit::End(Bytes::from_static(b"2")))
        );
        assert!(test.is_done());
        assert_eq!(test.poll_transmit(due), None);
    }

    #[test]
    fn an_html_test_is_a_page_of_scripts() {
        let now = Instant::now();
        let query = Query::parse("VER=8&TYPE=html&DOMAIN=example.com");
        let mut test = ConnectionTest::new(now, &query, TEST_PHASE_DELAY);
        assert_eq!(test.content_type(), "text/html");
        let Some(Transmit::Data { bytes, .. }) = test.poll_transmit(now) else {
            panic!("the first piece");
        };
        let first = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(first.starts_with("<html><body><script>try{document.domain=\"example.com\";"));
        assert!(first.contains("parent.m(\"11111\")"));
        test.handle_timeout(now + TEST_PHASE_DELAY);
        let Some(Transmit::End(last)) = test.poll_transmit(now) else {
            panic!("the last piece");
        };
        assert_eq!(
            &last[..],
            b"<script>try{parent.m(\"2\")}catch(e){}</script>\n<script>try{parent.d()}catch(e){}</script>\n"
        );
    }

    #[test]
    fn a_delay_that_passes_before_the_first_write_keeps_the_order() {
        let now = Instant::now();
        let mut test = ConnectionTest::new(now, &Query::parse("VER=8"), Duration::from_millis(1));
        let late = now + Duration::from_secs(1);
        test.handle_timeout(late);
        assert!(matches!(
            test.poll_transmit(late),
            Some(Transmit::Data { .. })
        ));
        assert_eq!(test.poll_timeout(), None);
        assert!(matches!(test.poll_transmit(late), Some(Transmit::End(_))));
    }
}
