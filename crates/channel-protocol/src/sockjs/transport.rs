//! What each SockJS transport is, as sockjs-node serves it: the methods it
//! allows, what its replies carry (content type, CORS, the send replies),
//! and, for the receiving ones, the [`ReceiverKind`] a request attaches,
//! built from its callback. The IO side keeps only the HTTP glue.
//!
//! ```
//! use axum_channel_protocol::sockjs::transport::{content_type, Cors};
//! use axum_channel_protocol::sockjs::TransportKind;
//! use http::Method;
//!
//! let jsonp = TransportKind::JsonpPolling;
//! assert!(jsonp.allows(&Method::GET) && !jsonp.allows(&Method::POST));
//! assert_eq!(jsonp.allow(), "GET");
//! assert_eq!(jsonp.content_type(), content_type::JAVASCRIPT);
//! assert_eq!(jsonp.cors(), Cors::NoSniff);
//! assert!(jsonp.receiver(Some("c=cb")).is_ok());
//! assert_eq!(jsonp.receiver(None).unwrap_err().message(), "\"callback\" parameter required");
//! ```

use super::path::TransportKind;
use super::payload::{decode_jsonp_send, decode_xhr_send, PayloadError};
use super::receiver::{
    htmlfile_prelude, valid_callback, xhr_streaming_prelude, ReceiverEncoding, EVENTSOURCE_PRELUDE,
};
use super::session::ReceiverKind;
use crate::websocket::handshake::{self, Accepted, Options, Refusal};
use http::header::{self, HeaderMap};
use http::request::Parts;
use http::{Method, StatusCode};
use std::fmt;

/// The content types of SockJS replies.
pub mod content_type {
    /// Frames for script transports (`xhr`, `xhr_streaming`, `jsonp`).
    pub const JAVASCRIPT: &str = "application/javascript; charset=UTF-8";
    /// Plain text: the send replies, errors, the greeting.
    pub const PLAIN: &str = "text/plain; charset=UTF-8";
    /// The `htmlfile` page and the iframe page.
    pub const HTML: &str = "text/html; charset=UTF-8";
    /// The `eventsource` stream.
    pub const EVENT_STREAM: &str = "text/event-stream";
    /// `/info`.
    pub const JSON: &str = "application/json; charset=UTF-8";
}

/// The longest JSONP callback sockjs-node accepts.
pub const MAX_JSONP_CALLBACK: usize = 32;

/// What a transport does with its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `websocket`: the request upgrades to a WebSocket carrying the session.
    WebSocket,
    /// `xhr`, `xhr_streaming`, `eventsource`, `htmlfile`, `jsonp`: the
    /// response receives the session's frames.
    Receive,
    /// `xhr_send`, `jsonp_send`: the request carries the client's messages.
    Send,
}

/// Which CORS headers a transport's replies get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cors {
    /// sockjs-node's: the request's `Origin` echoed with credentials
    /// allowed (`null` included), or `*` without an `Origin`.
    Standard,
    /// `eventsource`'s: as [`Cors::Standard`], but `Origin: null` is
    /// answered with `*`, as sockjs-node still does there.
    NullOriginAsAny,
    /// None: a page loads `htmlfile` in an iframe, not through XHR.
    None,
    /// None, but `X-Content-Type-Options: nosniff`: `jsonp` replies are
    /// scripts only a `<script>` element may run.
    NoSniff,
}

/// How a send request's body is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendBody {
    /// A JSON array of strings (`xhr_send`, and `jsonp_send` otherwise).
    Json,
    /// `d=<JSON array>` as `application/x-www-form-urlencoded` (`jsonp_send`).
    Form,
}

/// The reply to a send request that was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReply {
    /// 204 for `xhr_send`, 200 for `jsonp_send`.
    pub status: StatusCode,
    /// Empty for `xhr_send`, `ok` for `jsonp_send`.
    pub body: &'static str,
}

/// Why a receiving request is refused before it reaches its session: 500,
/// as sockjs-node answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackError {
    /// `htmlfile` and `jsonp` need `c` (or `callback`).
    Required,
    /// The callback has characters other than letters, digits, `-`, `_`,
    /// `.`, or (for `jsonp`) more than [`MAX_JSONP_CALLBACK`].
    Invalid,
    /// The transport does not receive (`websocket`, `xhr_send`, `jsonp_send`).
    NotReceiving,
}

impl CallbackError {
    /// The reply's status: 500 (and 404 for a transport that does not receive).
    pub fn status(&self) -> StatusCode {
        match self {
            CallbackError::Required | CallbackError::Invalid => StatusCode::INTERNAL_SERVER_ERROR,
            CallbackError::NotReceiving => StatusCode::NOT_FOUND,
        }
    }

    /// The reply's `text/plain` body, in sockjs-node's words.
    pub fn message(&self) -> &'static str {
        match self {
            CallbackError::Required => "\"callback\" parameter required",
            CallbackError::Invalid => "invalid \"callback\" parameter",
            CallbackError::NotReceiving => super::pages::NOT_FOUND,
        }
    }
}

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for CallbackError {}

/// The first of `names` in a raw (still percent-encoded) query string.
fn query_param(query: &str, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    })
}

impl TransportKind {
    /// What the transport does with its request.
    pub fn role(self) -> Role {
        match self {
            TransportKind::WebSocket => Role::WebSocket,
            TransportKind::XhrSend | TransportKind::JsonpSend => Role::Send,
            _ => Role::Receive,
        }
    }

    /// True when the transport answers `method`; an `OPTIONS` it allows is
    /// a CORS preflight, answered with [`allow`](Self::allow) as the
    /// allowed methods.
    pub fn allows(self, method: &Method) -> bool {
        match self {
            TransportKind::WebSocket
            | TransportKind::EventSource
            | TransportKind::HtmlFile
            | TransportKind::JsonpPolling => method == Method::GET,
            TransportKind::XhrPolling | TransportKind::XhrStreaming | TransportKind::XhrSend => {
                method == Method::POST || method == Method::OPTIONS
            }
            TransportKind::JsonpSend => method == Method::POST,
        }
    }

    /// The `Allow` header of its 405 reply (and the methods of its preflight).
    pub fn allow(self) -> &'static str {
        match self {
            TransportKind::WebSocket
            | TransportKind::EventSource
            | TransportKind::HtmlFile
            | TransportKind::JsonpPolling => "GET",
            TransportKind::XhrPolling | TransportKind::XhrStreaming | TransportKind::XhrSend => {
                "OPTIONS, POST"
            }
            TransportKind::JsonpSend => "POST",
        }
    }

    /// The content type of its successful replies (a WebSocket's 101 has none).
    pub fn content_type(self) -> &'static str {
        match self {
            TransportKind::XhrPolling
            | TransportKind::XhrStreaming
            | TransportKind::JsonpPolling => content_type::JAVASCRIPT,
            TransportKind::EventSource => content_type::EVENT_STREAM,
            TransportKind::HtmlFile => content_type::HTML,
            TransportKind::WebSocket | TransportKind::XhrSend | TransportKind::JsonpSend => {
                content_type::PLAIN
            }
        }
    }

    /// Which CORS headers its replies get, errors included.
    pub fn cors(self) -> Cors {
        match self {
            TransportKind::EventSource => Cors::NullOriginAsAny,
            TransportKind::HtmlFile | TransportKind::JsonpSend | TransportKind::WebSocket => {
                Cors::None
            }
            TransportKind::JsonpPolling => Cors::NoSniff,
            TransportKind::XhrPolling | TransportKind::XhrStreaming | TransportKind::XhrSend => {
                Cors::Standard
            }
        }
    }

    /// The receiver a request of this transport attaches, given the
    /// request's raw query string: its encoding, its prelude, and whether
    /// it polls. `htmlfile` and `jsonp` take their callback from `c` or
    /// `callback`.
    pub fn receiver(self, query: Option<&str>) -> Result<ReceiverKind, CallbackError> {
        let callback = || -> Result<String, CallbackError> {
            let callback = query
                .and_then(|query| query_param(query, &["c", "callback"]))
                .ok_or(CallbackError::Required)?;
            let max = (self == TransportKind::JsonpPolling).then_some(MAX_JSONP_CALLBACK);
            if !valid_callback(&callback, max) {
                return Err(CallbackError::Invalid);
            }
            Ok(callback)
        };
        let http = |encoding, prelude, polling| ReceiverKind::Http {
            encoding,
            prelude,
            polling,
        };
        Ok(match self {
            TransportKind::XhrPolling => http(ReceiverEncoding::Xhr, String::new(), true),
            TransportKind::XhrStreaming => {
                http(ReceiverEncoding::Xhr, xhr_streaming_prelude(), false)
            }
            TransportKind::EventSource => http(
                ReceiverEncoding::EventSource,
                EVENTSOURCE_PRELUDE.to_owned(),
                false,
            ),
            TransportKind::HtmlFile => {
                let callback = callback()?;
                http(
                    ReceiverEncoding::HtmlFile,
                    htmlfile_prelude(&callback),
                    false,
                )
            }
            TransportKind::JsonpPolling => http(
                ReceiverEncoding::Jsonp {
                    callback: callback()?,
                },
                String::new(),
                true,
            ),
            TransportKind::WebSocket | TransportKind::XhrSend | TransportKind::JsonpSend => {
                return Err(CallbackError::NotReceiving)
            }
        })
    }

    /// How a send request's body is decoded, given its `Content-Type`:
    /// `jsonp_send` reads a form when the client posts one. `None` for a
    /// transport that does not send.
    pub fn send_body(self, content_type: Option<&str>) -> Option<SendBody> {
        match self {
            TransportKind::XhrSend => Some(SendBody::Json),
            TransportKind::JsonpSend => Some(
                if content_type
                    .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"))
                {
                    SendBody::Form
                } else {
                    SendBody::Json
                },
            ),
            _ => None,
        }
    }

    /// The messages of a send request's body (see [`send_body`](Self::send_body)).
    /// An error is answered with 500 and its text; a transport that does
    /// not send reads nothing.
    pub fn decode_send(
        self,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<String>, PayloadError> {
        match self.send_body(content_type) {
            Some(SendBody::Json) if self == TransportKind::XhrSend => decode_xhr_send(body),
            Some(SendBody::Json) => decode_jsonp_send(false, body),
            Some(SendBody::Form) => decode_jsonp_send(true, body),
            None => Ok(Vec::new()),
        }
    }

    /// The reply to a send request whose messages were taken: 204 for
    /// `xhr_send`, 200 `ok` for `jsonp_send`. `None` for other transports.
    pub fn send_reply(self) -> Option<SendReply> {
        match self {
            TransportKind::XhrSend => Some(SendReply {
                status: StatusCode::NO_CONTENT,
                body: "",
            }),
            TransportKind::JsonpSend => Some(SendReply {
                status: StatusCode::OK,
                body: "ok",
            }),
            _ => None,
        }
    }
}

/// The refusal's words for a raw WebSocket asking for a draft.
pub const ONLY_RFC6455: &str = "Only supported WebSocket protocol is RFC 6455.";

/// The opening handshake of SockJS's WebSocket endpoints: `raw` for
/// `/websocket` (plain messages), else `/<server>/<session>/websocket`
/// (SockJS frames). The SockJS transport accepts the hixie drafts, as
/// sockjs-node does; the raw endpoint speaks RFC 6455 only and refuses an
/// `Upgrade` with a `Sec-WebSocket-Version` other than 8 or 13 with 400
/// [`ONLY_RFC6455`]. Neither offers subprotocols.
pub fn websocket_handshake(request: &Parts, raw: bool) -> Result<Accepted, Refusal> {
    if raw && !raw_websocket_version_ok(&request.headers) {
        return Err(Refusal::BadRequest(ONLY_RFC6455));
    }
    handshake::accept(
        request,
        &Options {
            protocols: &[],
            hixie: !raw,
        },
    )
}

/// sockjs-node's raw endpoint: a request that asks to upgrade names
/// version 8 or 13.
fn raw_websocket_version_ok(headers: &HeaderMap) -> bool {
    let version = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|value| value.to_str().ok());
    headers.get(header::UPGRADE).is_none() || matches!(version, Some("8" | "13"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockjs::receiver::ReceiverEncoding;

    const ALL: [TransportKind; 8] = [
        TransportKind::WebSocket,
        TransportKind::XhrPolling,
        TransportKind::XhrSend,
        TransportKind::XhrStreaming,
        TransportKind::EventSource,
        TransportKind::HtmlFile,
        TransportKind::JsonpPolling,
        TransportKind::JsonpSend,
    ];

    #[test]
    fn methods_and_allow_headers() {
        let table: Vec<_> = ALL
            .iter()
            .map(|kind| {
                let methods: Vec<_> = [Method::GET, Method::POST, Method::OPTIONS]
                    .into_iter()
                    .filter(|method| kind.allows(method))
                    .collect();
                (kind.name(), methods, kind.allow())
            })
            .collect();
        use Method as M;
        assert_eq!(
            table,
            [
                ("websocket", vec![M::GET], "GET"),
                ("xhr-polling", vec![M::POST, M::OPTIONS], "OPTIONS, POST"),
                ("xhr-send", vec![M::POST, M::OPTIONS], "OPTIONS, POST"),
                ("xhr-streaming", vec![M::POST, M::OPTIONS], "OPTIONS, POST"),
                ("eventsource", vec![M::GET], "GET"),
                ("htmlfile", vec![M::GET], "GET"),
                ("jsonp-polling", vec![M::GET], "GET"),
                ("jsonp-send", vec![M::POST], "POST"),
            ]
        );
    }

    #[test]
    fn content_types_roles_and_cors() {
        use content_type::*;
        let table: Vec<_> = ALL
            .iter()
            .map(|kind| (kind.role(), kind.content_type(), kind.cors()))
            .collect();
        assert_eq!(
            table,
            [
                (Role::WebSocket, PLAIN, Cors::None),
                (Role::Receive, JAVASCRIPT, Cors::Standard),
                (Role::Send, PLAIN, Cors::Standard),
                (Role::Receive, JAVASCRIPT, Cors::Standard),
                (Role::Receive, EVENT_STREAM, Cors::NullOriginAsAny),
                (Role::Receive, HTML, Cors::None),
                (Role::Receive, JAVASCRIPT, Cors::NoSniff),
                (Role::Send, PLAIN, Cors::None),
            ]
        );
    }

    #[test]
    fn receivers_are_built_per_transport() {
        let kind = |transport: TransportKind, query| transport.receiver(query).unwrap();
        assert_eq!(
            kind(TransportKind::XhrPolling, None),
            ReceiverKind::Http {
                encoding: ReceiverEncoding::Xhr,
                prelude: String::new(),
                polling: true
            }
        );
        assert!(matches!(
            kind(TransportKind::XhrStreaming, None),
            ReceiverKind::Http { prelude, polling: false, .. } if prelude.len() == 2049
        ));
        assert_eq!(
            kind(TransportKind::EventSource, Some("c=ignored")),
            ReceiverKind::Http {
                encoding: ReceiverEncoding::EventSource,
                prelude: "\r\n".into(),
                polling: false
            }
        );
        assert!(matches!(
            kind(TransportKind::HtmlFile, Some("callback=parent.cb")),
            ReceiverKind::Http { encoding: ReceiverEncoding::HtmlFile, prelude, polling: false }
                if prelude.contains("var c = parent.parent.cb;")
        ));
        assert_eq!(
            kind(TransportKind::JsonpPolling, Some("t=1&c=a%2Eb&callback=x")),
            ReceiverKind::Http {
                encoding: ReceiverEncoding::Jsonp {
                    callback: "a.b".into()
                },
                prelude: String::new(),
                polling: true
            }
        );
    }

    #[test]
    fn callbacks_are_required_and_checked() {
        let error = |transport: TransportKind, query| transport.receiver(query).unwrap_err();
        for transport in [TransportKind::HtmlFile, TransportKind::JsonpPolling] {
            let required = error(transport, Some("t=1"));
            assert_eq!(required, CallbackError::Required);
            assert_eq!(required.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(required.message(), "\"callback\" parameter required");
            let invalid = error(transport, Some("c=alert(1)"));
            assert_eq!(invalid.message(), "invalid \"callback\" parameter");
        }
        let long = format!("c={}", "x".repeat(33));
        assert_eq!(
            error(TransportKind::JsonpPolling, Some(&long)),
            CallbackError::Invalid
        );
        assert!(TransportKind::HtmlFile.receiver(Some(&long)).is_ok());
        assert_eq!(
            error(TransportKind::XhrSend, None),
            CallbackError::NotReceiving
        );
    }

    #[test]
    fn send_bodies_and_replies() {
        assert_eq!(TransportKind::XhrSend.send_body(None), Some(SendBody::Json));
        assert_eq!(
            TransportKind::JsonpSend
                .send_body(Some("application/x-www-form-urlencoded; charset=UTF-8")),
            Some(SendBody::Form)
        );
        assert_eq!(
            TransportKind::JsonpSend.send_body(Some("text/plain")),
            Some(SendBody::Json)
        );
        assert_eq!(TransportKind::XhrPolling.send_body(None), None);
        assert_eq!(
            TransportKind::JsonpSend.decode_send(
                Some("application/x-www-form-urlencoded"),
                b"d=%5B%22a%22%5D"
            ),
            Ok(vec!["a".to_owned()])
        );
        assert_eq!(
            TransportKind::XhrSend.decode_send(None, br#"["a","b"]"#),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(
            TransportKind::XhrSend.send_reply(),
            Some(SendReply {
                status: StatusCode::NO_CONTENT,
                body: ""
            })
        );
        assert_eq!(
            TransportKind::JsonpSend.send_reply(),
            Some(SendReply {
                status: StatusCode::OK,
                body: "ok"
            })
        );
        assert_eq!(TransportKind::HtmlFile.send_reply(), None);
    }

    fn request(headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::get("/sockjs/websocket");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_raw_endpoint_speaks_rfc6455_only() {
        let hixie76 = request(&[
            ("upgrade", "WebSocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key1", "18x 6]8vM;54 *(5:  {   U1]8  z [  8"),
            ("sec-websocket-key2", "1_ tx7X d  <  nw  334J702) 7]o}` 0"),
        ]);
        assert_eq!(
            websocket_handshake(&hixie76, true).unwrap_err(),
            Refusal::BadRequest(ONLY_RFC6455)
        );
        assert!(websocket_handshake(&hixie76, false)
            .unwrap()
            .handshake
            .challenge(std::time::Instant::now())
            .is_some());
        let version8 = request(&[
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-version", "8"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        // Version 8 passes SockJS's rule, then the handshake asks for 13.
        assert_eq!(
            websocket_handshake(&version8, true).unwrap_err(),
            Refusal::UnsupportedVersion
        );
        // Without an Upgrade, the handshake itself refuses.
        assert_eq!(
            websocket_handshake(&request(&[]), true).unwrap_err(),
            Refusal::BadRequest(handshake::UPGRADE_ONLY_TO_WEBSOCKET)
        );
    }
}
