//! What the app knows about a session's peer, fixed when the session opens.
//!
//! The request that opened a session lives in hyper's read buffer; keeping
//! its `HeaderMap` would keep that whole buffer alive for the session's
//! life. The few things kept are copied out in one compact allocation, and
//! a `HeaderMap` is built only if the app asks for one.

use super::Transport;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Uri;
use std::net::SocketAddr;
use std::sync::OnceLock;

/// The headers and URI of the opening request, copied out of hyper's buffer.
#[derive(Debug)]
struct RequestHead {
    /// `name\0value\0` pairs, names in lowercase.
    headers: Box<[u8]>,
    uri: Box<str>,
    parsed_headers: OnceLock<HeaderMap>,
    parsed_uri: OnceLock<Uri>,
}

impl RequestHead {
    fn new(uri: &Uri, headers: &HeaderMap) -> Self {
        let mut packed = Vec::new();
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
            headers: packed.into_boxed_slice(),
            uri: uri.to_string().into_boxed_str(),
            parsed_headers: OnceLock::new(),
            parsed_uri: OnceLock::new(),
        }
    }

    fn headers(&self) -> &HeaderMap {
        self.parsed_headers.get_or_init(|| {
            let mut map = HeaderMap::new();
            let mut fields = self.headers.split(|b| *b == 0);
            while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
                if let (Ok(name), Ok(value)) =
                    (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
                {
                    map.append(name, value);
                }
            }
            map
        })
    }

    fn uri(&self) -> &Uri {
        self.parsed_uri
            .get_or_init(|| self.uri.parse().unwrap_or_default())
    }
}

/// The facts about one session's peer.
#[derive(Debug)]
pub(crate) struct SessionInfo {
    pub(crate) id: String,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) transport: Transport,
    /// The app version the client reported (BrowserChannel `CVER`).
    pub(crate) app_version: Option<String>,
    /// The negotiated WebSocket subprotocol, or the SockJS transport's name.
    pub(crate) protocol: Option<String>,
    /// The EventSource client's `Last-Event-ID`.
    pub(crate) last_event_id: Option<String>,
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
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            remote_addr,
            transport,
            app_version: None,
            protocol: None,
            last_event_id: None,
            head: RequestHead::new(uri, headers),
        }
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
        assert_eq!(info.id.len(), 32);
    }
}
