//! The headers node-browserchannel sends on every reply, and its error pages.

use axum::body::Body;
use axum_channel_protocol::browserchannel::back_channel;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

/// Headers that keep proxies and browsers from caching or sniffing replies,
/// as node-browserchannel sends them on every response.
#[derive(Debug, Clone)]
pub(crate) struct StandardHeaders {
    headers: HeaderMap,
}

impl StandardHeaders {
    pub(crate) fn new() -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, no-store, max-age=0, must-revalidate"),
        );
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::EXPIRES,
            HeaderValue::from_static("Fri, 01 Jan 1990 00:00:00 GMT"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        Self { headers }
    }

    /// A reply with the standard headers and the given content type.
    pub(crate) fn response(
        &self,
        status: StatusCode,
        content_type: &'static str,
        body: Body,
    ) -> Response<Body> {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.extend(self.headers.clone());
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }

    /// A plain-text reply.
    pub(crate) fn text(&self, status: StatusCode, body: impl Into<Body>) -> Response<Body> {
        self.response(status, back_channel::TEXT_CONTENT_TYPE, body.into())
    }

    /// An error reply whose body carries `message` where the client looks for it.
    pub(crate) fn error(&self, status: StatusCode, message: &str) -> Response<Body> {
        tracing::debug!(status = status.as_u16(), message, "refusing request");
        self.response(
            status,
            back_channel::HTML_CONTENT_TYPE,
            Body::from(back_channel::error_body(message)),
        )
    }
}
