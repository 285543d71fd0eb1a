//! What the app knows about a session's peer, fixed when the session opens.
//!
//! The request that opened a session lives in hyper's read buffer; keeping
//! its `HeaderMap` would keep that whole buffer alive for the session's
//! life. The few things kept are copied out in one compact allocation, and
//! a `HeaderMap` is built only if the app asks for one.

use super::transport::Transport;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Uri;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::OnceLock;

/// The headers and URI of the opening request, copied out of hyper's buffer
/// into one allocation: the URI, then `name\0value\0` pairs (names in
/// lowercase). Parsed back only if the app asks, both at once.
#[derive(Debug)]
struct RequestHead {
    packed: Box<[u8]>,
    /// Where the headers start in `packed`.
    uri_len: u32,
    parsed: OnceLock<Box<(Uri, HeaderMap)>>,
}

impl RequestHead {
    fn new(uri: &Uri, headers: &HeaderMap) -> Self {
        let uri = uri.to_string();
        let mut packed = Vec::with_capacity(
            uri.len()
                + headers
                    .iter()
                    .map(|(name, value)| name.as_str().len() + value.len() + 2)
                    .sum::<usize>(),
        );
        packed.extend_from_slice(uri.as_bytes());
        for (name, value) in headers {
            // Cookies may carry credentials; the app never sees them on a session.
            if name == http::header::COOKIE {
                continue;
            }
            packed.extend_from_slice(name.as_str().as_bytes());
            packed.push(0);
            packed.extend_from_slice(value.as_bytes());
            packed.push(0);
        }
        Self {
            packed: packed.into_boxed_slice(),
            // A request's URI fits in hyper's buffer, far below 4 GiB.
            uri_len: u32::try_from(uri.len()).unwrap_or(u32::MAX),
            parsed: OnceLock::new(),
        }
    }

    fn parsed(&self) -> &(Uri, HeaderMap) {
        self.parsed.get_or_init(|| {
            let split = (self.uri_len as usize).min(self.packed.len());
            let (uri, headers) = self.packed.split_at(split);
            let uri = std::str::from_utf8(uri)
                .ok()
                .and_then(|uri| uri.parse().ok())
                .unwrap_or_default();
            let mut map = HeaderMap::new();
            let mut fields = headers.split(|b| *b == 0);
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
                {
                    map.append(name, value);
                }
            }
            Box::new((uri, map))
        })
    }

    fn headers(&self) -> &HeaderMap {
        &self.parsed().1
    }

    fn uri(&self) -> &Uri {
        &self.parsed().0
    }
}

/// A session's id: 128 random bits, written as 32 hex digits. Held as two
/// halves: a `u128` is 16-byte aligned, and would pad every session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SessionKey([u64; 2]);

impl SessionKey {
    fn new(key: u128) -> Self {
        SessionKey([(key >> 64) as u64, key as u64])
    }

    /// The key a session id names, if it is one.
    pub(crate) fn parse(id: &str) -> Option<Self> {
        if id.len() != 32 {
            return None;
        }
        u128::from_str_radix(id, 16).ok().map(SessionKey::new)
    }
}

/// The facts about one session's peer.
#[derive(Debug)]
pub(crate) struct SessionInfo {
    key: SessionKey,
    /// The key in hex, which `id()` hands out.
    hex: [u8; 32],
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) transport: Transport,
    /// The app version the client reported (BrowserChannel `CVER`).
    pub(crate) app_version: Option<Box<str>>,
    /// The negotiated WebSocket subprotocol, or the SockJS transport's name.
    pub(crate) protocol: Option<Cow<'static, str>>,
    /// The EventSource client's `Last-Event-ID`.
    pub(crate) last_event_id: Option<Box<str>>,
    /// The id a SockJS client chose for its session, which its requests name.
    pub(crate) sockjs_key: Option<Box<str>>,
    /// What the authorisation hook attached.
    pub(crate) extensions: http::Extensions,
    /// Every log line and task of the session runs in it.
    pub(crate) span: tracing::Span,
    head: RequestHead,
}

impl SessionInfo {
    /// Info for a new session with a random 128-bit id; `headers` are
    /// copied without `Cookie`.
    pub(crate) fn new(
        transport: Transport,
        remote_addr: Option<SocketAddr>,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Self {
        let key = uuid::Uuid::new_v4().as_u128();
        let mut hex = [0u8; 32];
        for (index, digit) in hex.iter_mut().enumerate() {
            let nibble = (key >> (124 - 4 * index)) & 0xF;
            *digit = b"0123456789abcdef"[nibble as usize];
        }
        Self {
            key: SessionKey::new(key),
            hex,
            remote_addr,
            transport,
            app_version: None,
            protocol: None,
            last_event_id: None,
            sockjs_key: None,
            extensions: http::Extensions::new(),
            span: tracing::info_span!(
                "session",
                id = std::str::from_utf8(&hex).unwrap_or_default(),
                transport = %transport,
                remote = ?remote_addr,
                user = tracing::field::Empty,
            ),
            head: RequestHead::new(uri, headers),
        }
    }

    /// The session's id: 32 hex digits.
    pub(crate) fn id(&self) -> &str {
        std::str::from_utf8(&self.hex).unwrap_or_default()
    }

    pub(crate) fn key(&self) -> SessionKey {
        self.key
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        self.head.headers()
    }

    pub(crate) fn uri(&self) -> &Uri {
        self.head.uri()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_copied_without_cookies() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", HeaderValue::from_static("secret=1"));
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        let uri: Uri = "/ws?room=a".parse().unwrap();
        let info = SessionInfo::new(Transport::WebSocket, None, &uri, &headers);
        assert_eq!(info.headers().get_all("x-a").iter().count(), 2);
        assert!(info.headers().get("cookie").is_none());
        assert_eq!(info.uri().query(), Some("room=a"));
        assert_eq!(info.id().len(), 32);
        assert_eq!(SessionKey::parse(info.id()), Some(info.key()));
        assert_eq!(SessionKey::parse("not an id"), None);
    }
}
