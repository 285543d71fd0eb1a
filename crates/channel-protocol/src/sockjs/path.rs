//! The endpoints under a SockJS prefix.

/// A transport URL's last path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// `websocket`: SockJS frames over a WebSocket.
    WebSocket,
    /// `xhr`: XHR long polling.
    XhrPolling,
    /// `xhr_send`: messages from the client for XHR transports.
    XhrSend,
    /// `xhr_streaming`: a streamed XHR response.
    XhrStreaming,
    /// `eventsource`: frames as server-sent events.
    EventSource,
    /// `htmlfile`: frames as `<script>` calls in a forever-loading page.
    HtmlFile,
    /// `jsonp`: JSONP long polling.
    JsonpPolling,
    /// `jsonp_send`: messages from the client for JSONP.
    JsonpSend,
}

impl TransportKind {
    fn from_segment(segment: &str) -> Option<Self> {
        Some(match segment {
            "websocket" => TransportKind::WebSocket,
            "xhr" => TransportKind::XhrPolling,
            "xhr_send" => TransportKind::XhrSend,
            "xhr_streaming" => TransportKind::XhrStreaming,
            "eventsource" => TransportKind::EventSource,
            "htmlfile" => TransportKind::HtmlFile,
            "jsonp" => TransportKind::JsonpPolling,
            "jsonp_send" => TransportKind::JsonpSend,
            _ => return None,
        })
    }

    /// The name sockjs-node gives the transport (`connection.protocol`).
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::WebSocket => "websocket",
            TransportKind::XhrPolling => "xhr-polling",
            TransportKind::XhrSend => "xhr-send",
            TransportKind::XhrStreaming => "xhr-streaming",
            TransportKind::EventSource => "eventsource",
            TransportKind::HtmlFile => "htmlfile",
            TransportKind::JsonpPolling => "jsonp-polling",
            TransportKind::JsonpSend => "jsonp-send",
        }
    }
}

/// What a request under the SockJS prefix is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The prefix itself, with or without a trailing slash: the greeting.
    Welcome,
    /// `/info`: server capabilities.
    Info,
    /// `/iframe.html` or `/iframe-<anything>.html`: the cross-domain iframe page.
    Iframe,
    /// `/websocket`: a raw WebSocket without SockJS framing.
    RawWebSocket,
    /// `/<server>/<session>/<transport>`.
    Transport {
        /// The session id chosen by the client.
        session: String,
        /// The transport.
        kind: TransportKind,
    },
    /// Anything else: 404.
    NotFound,
}

/// A server or session id: not empty, no dots.
fn is_id(segment: &str) -> bool {
    !segment.is_empty() && !segment.contains('.')
}

/// Names the endpoint of `path`, the part after the prefix (`""` or starting with `/`).
pub fn endpoint(path: &str) -> Endpoint {
    match path {
        "" | "/" => return Endpoint::Welcome,
        "/info" => return Endpoint::Info,
        "/websocket" => return Endpoint::RawWebSocket,
        _ => {}
    }
    if let Some(name) = path
        .strip_prefix("/iframe")
        .and_then(|r| r.strip_suffix(".html"))
    {
        // sockjs-node accepts `iframe[0-9-.a-z_]*.html`.
        if name
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() || matches!(c, '-' | '.' | '_'))
        {
            return Endpoint::Iframe;
        }
    }
    let mut segments = path.strip_prefix('/').unwrap_or(path).split('/');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some(server), Some(session), Some(kind), None) if is_id(server) && is_id(session) => {
            match TransportKind::from_segment(kind) {
                Some(kind) => Endpoint::Transport {
                    session: session.to_owned(),
                    kind,
                },
                None => Endpoint::NotFound,
            }
        }
        _ => Endpoint::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_endpoints() {
        assert_eq!(endpoint(""), Endpoint::Welcome);
        assert_eq!(endpoint("/"), Endpoint::Welcome);
        assert_eq!(endpoint("/info"), Endpoint::Info);
        assert_eq!(endpoint("/websocket"), Endpoint::RawWebSocket);
        assert_eq!(endpoint("/iframe.html"), Endpoint::Iframe);
        assert_eq!(endpoint("/iframe-a1.2_x.html"), Endpoint::Iframe);
        assert_eq!(endpoint("/iframe-A.html"), Endpoint::NotFound);
        assert_eq!(endpoint("/info/x"), Endpoint::NotFound);
    }

    #[test]
    fn transport_urls() {
        assert_eq!(
            endpoint("/000/abc/xhr_streaming"),
            Endpoint::Transport {
                session: "abc".into(),
                kind: TransportKind::XhrStreaming
            }
        );
        for bad in [
            "/000/abc/bogus",
            "//abc/xhr",
            "/000//xhr",
            "/0.0/abc/xhr",
            "/000/a.b/xhr",
            "/000/abc/xhr/x",
        ] {
            assert_eq!(endpoint(bad), Endpoint::NotFound, "{bad}");
        }
    }
}
