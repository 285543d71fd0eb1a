//! The server side of the WebSocket opening handshake, without IO: request
//! headers in, the 101 response's headers or a refusal out. RFC 6455
//! section 4.2, and the legacy drafts hixie-76 and hixie-75 when the
//! endpoint accepts them.
//!
//! Who may connect (origins, authorisation) is the IO side's admission, not
//! a rule of the handshake; so is whether the connection can be upgraded at
//! all, which only the HTTP server knows ([`Refusal::CannotUpgrade`]).
//!
//! ```
//! use axum_channel_protocol::websocket::handshake::{accept, Handshake, Options};
//!
//! let request = http::Request::get("/chat")
//!     .header("host", "example.com")
//!     .header("upgrade", "websocket")
//!     .header("connection", "Upgrade")
//!     .header("sec-websocket-version", "13")
//!     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
//!     .header("sec-websocket-protocol", "b, a")
//!     .body(())
//!     .unwrap();
//! let (parts, ()) = request.into_parts();
//! let protocols = ["a".to_owned(), "b".to_owned()];
//! let accepted = accept(&parts, &Options { protocols: &protocols, hixie: false }).unwrap();
//! assert_eq!(accepted.handshake, Handshake::Rfc6455);
//! assert_eq!(accepted.protocol.as_deref(), Some("a"));
//! assert_eq!(accepted.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! ```

use crate::hixie76::{self, Challenge};
use data_encoding::BASE64;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, StatusCode};
use sha1::{Digest, Sha1};
use std::fmt;
use std::time::Instant;

/// The GUID RFC 6455 section 1.3 appends to the client's key.
pub const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only `Sec-WebSocket-Version` this server speaks (RFC 6455 section 4.4).
pub const VERSION: &str = "13";

/// The reason phrase of a hixie-76 101 response, which its clients check.
pub const HIXIE76_REASON: &str = "WebSocket Protocol Handshake";

/// The reason phrase of a hixie-75 101 response, which its clients check.
pub const HIXIE75_REASON: &str = "Web Socket Protocol Handshake";

/// The refusal's words for a request that upgrades to something else.
pub const UPGRADE_ONLY_TO_WEBSOCKET: &str = "Can \"Upgrade\" only to \"WebSocket\".";

/// The refusal's words for a request whose `Connection` lacks `Upgrade`.
pub const CONNECTION_MUST_BE_UPGRADE: &str = "\"Connection\" must be \"Upgrade\".";

/// The refusal's words for an RFC 6455 request without its key.
pub const MISSING_KEY: &str = "Missing Sec-WebSocket-Key";

/// The refusal's words for a hixie-76 key that hides no number.
pub const INVALID_HIXIE76_KEY: &str = "Invalid hixie-76 key";

/// The refusal's words for a handshake of no version this endpoint speaks.
pub const UNSUPPORTED_VERSION: &str = "Unsupported WebSocket version";

/// `Sec-WebSocket-Accept` for the client's `Sec-WebSocket-Key`: the base64
/// of the SHA-1 of the key and [`ACCEPT_GUID`] (RFC 6455 section 4.2.2).
/// It is always 28 characters.
///
/// ```
/// use axum_channel_protocol::websocket::handshake::accept_key;
///
/// // RFC 6455 section 1.3.
/// assert_eq!(accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(ACCEPT_GUID.as_bytes());
    BASE64.encode(&sha1.finalize())
}

/// What an endpoint accepts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// Subprotocols in the server's order of preference.
    pub protocols: &'a [String],
    /// Whether the hixie-76 and hixie-75 drafts are accepted.
    pub hixie: bool,
}

/// Which handshake, and so which framing, a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// RFC 6455: binary messages, pings, close codes.
    Rfc6455,
    /// hixie-76: the client's 8 bytes after the headers must be answered
    /// ([`Handshake::challenge`]) before framing starts.
    Hixie76 {
        /// The number `Sec-WebSocket-Key1` hides.
        key1: u32,
        /// The number `Sec-WebSocket-Key2` hides.
        key2: u32,
    },
    /// hixie-75: no keys; framing starts right after the headers.
    Hixie75,
}

impl Handshake {
    /// True for RFC 6455 framing; the drafts carry neither binary
    /// messages nor pings.
    pub fn is_rfc6455(&self) -> bool {
        matches!(self, Handshake::Rfc6455)
    }

    /// The hixie-76 challenge to answer, started at `now` (when the 101
    /// response went out).
    pub fn challenge(&self, now: Instant) -> Option<Challenge> {
        match *self {
            Handshake::Hixie76 { key1, key2 } => Some(Challenge::new(now, key1, key2)),
            _ => None,
        }
    }

    /// The 101 response's reason phrase, where the draft's clients check
    /// it; RFC 6455 keeps the standard one.
    pub fn reason_phrase(&self) -> Option<&'static str> {
        match self {
            Handshake::Rfc6455 => None,
            Handshake::Hixie76 { .. } => Some(HIXIE76_REASON),
            Handshake::Hixie75 => Some(HIXIE75_REASON),
        }
    }
}

/// An accepted handshake: what the 101 response carries.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The handshake the request asked for.
    pub handshake: Handshake,
    /// The subprotocol chosen: the first of the server's that the client offers.
    pub protocol: Option<String>,
    /// The response's headers: `Upgrade`, `Connection`, the handshake's
    /// own, and `Sec-WebSocket-Protocol` when one was chosen. The IO side
    /// inserts them after any headers of its own, so these win.
    pub headers: HeaderMap,
}

impl Accepted {
    /// The response's status: 101 Switching Protocols.
    pub fn status(&self) -> StatusCode {
        StatusCode::SWITCHING_PROTOCOLS
    }

    /// The reason phrase the IO side sets on the response, if not the
    /// standard one (see [`Handshake::reason_phrase`]).
    pub fn reason_phrase(&self) -> Option<&'static str> {
        self.handshake.reason_phrase()
    }
}

/// Why a handshake request is refused. The IO side answers with
/// [`status`](Self::status), the [`headers`](Self::headers), and
/// [`message`](Self::message) as a `text/plain; charset=UTF-8` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a GET (RFC 6455 section 4.1): 405.
    MethodNotAllowed,
    /// A malformed handshake: 400 with these words.
    BadRequest(&'static str),
    /// A `Sec-WebSocket-Version` other than 13: 426 naming the one this
    /// server speaks (RFC 6455 section 4.4).
    UnsupportedVersion,
    /// The HTTP connection offers no upgrade (only the IO side can tell,
    /// and reports it with this): 426.
    CannotUpgrade,
}

impl Refusal {
    /// The response's status.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::UnsupportedVersion | Refusal::CannotUpgrade => StatusCode::UPGRADE_REQUIRED,
        }
    }

    /// The response's body.
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::MethodNotAllowed => "Method not allowed",
            Refusal::BadRequest(message) => message,
            Refusal::UnsupportedVersion => UNSUPPORTED_VERSION,
            Refusal::CannotUpgrade => "This connection cannot be upgraded",
        }
    }

    /// Headers the response carries besides its content type:
    /// `Sec-WebSocket-Version: 13` for an unsupported version.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if *self == Refusal::UnsupportedVersion {
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static(VERSION),
            );
        }
        headers
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status().as_u16(), self.message())
    }
}

impl std::error::Error for Refusal {}

fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The comma-separated tokens of every value of header `name`.
fn tokens(headers: &HeaderMap, name: HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

const KEY1: HeaderName = HeaderName::from_static("sec-websocket-key1");
const KEY2: HeaderName = HeaderName::from_static("sec-websocket-key2");

/// Which handshake the request's headers ask for, or why none.
fn handshake_kind(headers: &HeaderMap, hixie: bool) -> Result<Handshake, Refusal> {
    let upgrade = header_str(headers, header::UPGRADE).unwrap_or("");
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(Refusal::BadRequest(UPGRADE_ONLY_TO_WEBSOCKET));
    }
    if !tokens(headers, header::CONNECTION).any(|token| token.eq_ignore_ascii_case("upgrade")) {
        return Err(Refusal::BadRequest(CONNECTION_MUST_BE_UPGRADE));
    }
    let key1 = header_str(headers, KEY1);
    let key2 = header_str(headers, KEY2);
    match (headers.get(header::SEC_WEBSOCKET_VERSION), key1, key2) {
        (Some(version), _, _) if version != VERSION => Err(Refusal::UnsupportedVersion),
        (Some(_), _, _) => match headers.get(header::SEC_WEBSOCKET_KEY) {
            Some(_) => Ok(Handshake::Rfc6455),
            None => Err(Refusal::BadRequest(MISSING_KEY)),
        },
        (None, Some(key1), Some(key2)) if hixie => {
            match (hixie76::key_number(key1), hixie76::key_number(key2)) {
                (Ok(key1), Ok(key2)) => Ok(Handshake::Hixie76 { key1, key2 }),
                _ => Err(Refusal::BadRequest(INVALID_HIXIE76_KEY)),
            }
        }
        (None, None, None) if hixie => Ok(Handshake::Hixie75),
        _ => Err(Refusal::BadRequest(UNSUPPORTED_VERSION)),
    }
}

/// The first subprotocol of `supported` that the client offers
/// (RFC 6455 section 4.2.2: the server picks one of the client's).
pub fn select_protocol(headers: &HeaderMap, supported: &[String]) -> Option<String> {
    supported
        .iter()
        .find(|protocol| tokens(headers, header::SEC_WEBSOCKET_PROTOCOL).any(|t| t == *protocol))
        .cloned()
}

/// Checks a handshake request and builds the 101 response's headers.
pub fn accept(request: &Parts, options: &Options<'_>) -> Result<Accepted, Refusal> {
    if request.method != Method::GET {
        return Err(Refusal::MethodNotAllowed);
    }
    let handshake = handshake_kind(&request.headers, options.hixie)?;
    let protocol = select_protocol(&request.headers, options.protocols);
    let mut headers = HeaderMap::new();
    if let Some(value) = protocol
        .as_deref()
        .and_then(|protocol| HeaderValue::from_str(protocol).ok())
    {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    match handshake {
        Handshake::Rfc6455 => {
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            let key = request
                .headers
                .get(header::SEC_WEBSOCKET_KEY)
                .map_or(&[][..], HeaderValue::as_bytes);
            let accept = HeaderValue::from_str(&accept_key(key)).expect("base64 is a valid header");
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        Handshake::Hixie76 { .. } | Handshake::Hixie75 => {
            // hixie-76 names its headers Sec-WebSocket-*, hixie-75 WebSocket-*.
            let (origin, location) = if matches!(handshake, Handshake::Hixie76 { .. }) {
                ("sec-websocket-origin", "sec-websocket-location")
            } else {
                ("websocket-origin", "websocket-location")
            };
            headers.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
            if let Some(value) = request.headers.get(header::ORIGIN) {
                headers.insert(HeaderName::from_static(origin), value.clone());
            }
            let host = header_str(&request.headers, header::HOST).unwrap_or("localhost");
            if let Ok(value) = HeaderValue::from_str(&format!("ws://{host}{}", request.uri)) {
                headers.insert(HeaderName::from_static(location), value);
            }
        }
    }
    Ok(Accepted {
        handshake,
        protocol,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().method(method).uri("/ws?x=1");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    const RFC6455: &[(&str, &str)] = &[
        ("host", "example.com"),
        ("upgrade", "WebSocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    const HIXIE76: &[(&str, &str)] = &[
        ("host", "example.com"),
        ("origin", "http://example.com"),
        ("upgrade", "WebSocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key1", "18x 6]8vM;54 *(5:  {   U1]8  z [  8"),
        ("sec-websocket-key2", "1_ tx7X d  <  nw  334J702) 7]o}` 0"),
    ];

    fn with(
        base: &[(&'static str, &'static str)],
        extra: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        let mut headers: Vec<_> = base
            .iter()
            .filter(|(name, _)| !extra.iter().any(|(n, _)| n == name))
            .copied()
            .collect();
        headers.extend(extra.iter().filter(|(_, value)| !value.is_empty()));
        headers
    }

    fn refusal(headers: &[(&str, &str)], hixie: bool) -> Refusal {
        let options = Options {
            protocols: &[],
            hixie,
        };
        accept(&request(Method::GET, headers), &options).unwrap_err()
    }

    #[test]
    fn an_rfc6455_handshake_is_answered_with_the_accept_key() {
        let accepted = accept(&request(Method::GET, RFC6455), &Options::default()).unwrap();
        assert_eq!(accepted.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(accepted.handshake, Handshake::Rfc6455);
        assert_eq!(accepted.reason_phrase(), None);
        assert_eq!(accepted.headers["upgrade"], "websocket");
        assert_eq!(accepted.headers["connection"], "Upgrade");
        assert_eq!(
            accepted.headers["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert!(accepted.headers.get("sec-websocket-protocol").is_none());
    }

    #[test]
    fn the_first_of_the_servers_protocols_the_client_offers_is_chosen() {
        let headers = with(RFC6455, &[("sec-websocket-protocol", "chat, superchat")]);
        let supported = ["superchat".to_owned(), "chat".to_owned()];
        let options = Options {
            protocols: &supported,
            hixie: false,
        };
        let accepted = accept(&request(Method::GET, &headers), &options).unwrap();
        assert_eq!(accepted.protocol.as_deref(), Some("superchat"));
        assert_eq!(accepted.headers["sec-websocket-protocol"], "superchat");
        let none = ["other".to_owned()];
        let options = Options {
            protocols: &none,
            hixie: false,
        };
        assert_eq!(
            accept(&request(Method::GET, &headers), &options)
                .unwrap()
                .protocol,
            None
        );
    }

    #[test]
    fn malformed_handshakes_are_refused_with_their_words() {
        let options = Options::default();
        assert_eq!(
            accept(&request(Method::POST, RFC6455), &options).unwrap_err(),
            Refusal::MethodNotAllowed
        );
        assert_eq!(
            refusal(&with(RFC6455, &[("upgrade", "h2c")]), false),
            Refusal::BadRequest(UPGRADE_ONLY_TO_WEBSOCKET)
        );
        assert_eq!(
            refusal(&with(RFC6455, &[("connection", "keep-alive")]), false),
            Refusal::BadRequest(CONNECTION_MUST_BE_UPGRADE)
        );
        assert_eq!(
            refusal(&with(RFC6455, &[("sec-websocket-key", "")]), false),
            Refusal::BadRequest(MISSING_KEY)
        );
        let old = refusal(&with(RFC6455, &[("sec-websocket-version", "8")]), false);
        assert_eq!(old, Refusal::UnsupportedVersion);
        assert_eq!(old.status(), StatusCode::UPGRADE_REQUIRED);
        assert_eq!(old.headers()["sec-websocket-version"], "13");
        assert_eq!(
            refusal(&with(RFC6455, &[("sec-websocket-version", "")]), false),
            Refusal::BadRequest(UNSUPPORTED_VERSION)
        );
        assert_eq!(
            Refusal::CannotUpgrade.message(),
            "This connection cannot be upgraded"
        );
        assert_eq!(
            Refusal::CannotUpgrade.status(),
            StatusCode::UPGRADE_REQUIRED
        );
        assert!(Refusal::CannotUpgrade.headers().is_empty());
    }

    #[test]
    fn hixie_76_is_accepted_only_when_enabled() {
        assert_eq!(
            refusal(HIXIE76, false),
            Refusal::BadRequest(UNSUPPORTED_VERSION)
        );
        let options = Options {
            protocols: &[],
            hixie: true,
        };
        let accepted = accept(&request(Method::GET, HIXIE76), &options).unwrap();
        assert_eq!(
            accepted.handshake,
            Handshake::Hixie76 {
                key1: 155_712_099,
                key2: 173_347_027
            }
        );
        assert_eq!(accepted.reason_phrase(), Some(HIXIE76_REASON));
        assert_eq!(accepted.headers["upgrade"], "WebSocket");
        assert_eq!(
            accepted.headers["sec-websocket-origin"],
            "http://example.com"
        );
        assert_eq!(
            accepted.headers["sec-websocket-location"],
            "ws://example.com/ws?x=1"
        );
        let now = Instant::now();
        let challenge = accepted.handshake.challenge(now).unwrap();
        assert_eq!(&challenge.answer(b"Tm[K T2u"), b"fQJ,fN/4F4!~K~MH");
        assert_eq!(
            refusal(&with(HIXIE76, &[("sec-websocket-key1", "12345")]), true),
            Refusal::BadRequest(INVALID_HIXIE76_KEY)
        );
        assert_eq!(
            refusal(&with(HIXIE76, &[("sec-websocket-key2", "")]), true),
            Refusal::BadRequest(UNSUPPORTED_VERSION)
        );
    }

    #[test]
    fn hixie_75_has_no_keys_and_its_own_header_names() {
        let headers = with(
            HIXIE76,
            &[
                ("sec-websocket-key1", ""),
                ("sec-websocket-key2", ""),
                ("host", ""),
            ],
        );
        let options = Options {
            protocols: &[],
            hixie: true,
        };
        let accepted = accept(&request(Method::GET, &headers), &options).unwrap();
        assert_eq!(accepted.handshake, Handshake::Hixie75);
        assert!(accepted.handshake.challenge(Instant::now()).is_none());
        assert_eq!(accepted.reason_phrase(), Some(HIXIE75_REASON));
        assert_eq!(accepted.headers["websocket-origin"], "http://example.com");
        assert_eq!(
            accepted.headers["websocket-location"],
            "ws://localhost/ws?x=1"
        );
        assert!(accepted.headers.get("sec-websocket-origin").is_none());
    }
}
