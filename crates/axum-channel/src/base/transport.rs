//! Which protocol carries a session.

use std::fmt;

/// Which protocol carries a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// Google's BrowserChannel, version 8 (forward channel POSTs, back channel GETs).
    BrowserChannel,
    /// A native WebSocket (RFC 6455, or the legacy hixie-76 draft when enabled).
    WebSocket,
    /// Server-sent events (`text/event-stream`); the client cannot send.
    EventSource,
    /// SockJS 0.3; `Session::protocol` names the SockJS transport underneath.
    SockJs,
}

impl Transport {
    /// Every transport, in the order metrics list them.
    pub(crate) const ALL: [Transport; 4] = [
        Transport::BrowserChannel,
        Transport::WebSocket,
        Transport::EventSource,
        Transport::SockJs,
    ];

    /// The transport's name in logs and metric labels.
    ///
    /// ```
    /// assert_eq!(axum_channel::Transport::SockJs.as_str(), "sockjs");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::BrowserChannel => "browserchannel",
            Transport::WebSocket => "websocket",
            Transport::EventSource => "eventsource",
            Transport::SockJs => "sockjs",
        }
    }

    /// Its place in [`Transport::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Transport::BrowserChannel => 0,
            Transport::WebSocket => 1,
            Transport::EventSource => 2,
            Transport::SockJs => 3,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
