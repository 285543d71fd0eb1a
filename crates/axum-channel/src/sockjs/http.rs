//! The HTTP details of SockJS replies: caching, CORS, the JSESSIONID cookie,
//! and the fixed pages.

use crate::config::{JSessionId, SockJsConfig};
use axum::body::Body;
use axum_channel_protocol::sockjs::pages;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use std::time::{Duration, SystemTime};

/// One year, the cache lifetime of static SockJS replies.
const YEAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);

use crate::reply::reply;
use axum_channel_protocol::sockjs::transport::content_type::{HTML, JSON, PLAIN};

/// An empty reply.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// 404, as sockjs-node words it.
pub(crate) fn not_found() -> Response<Body> {
    reply(StatusCode::NOT_FOUND, PLAIN, pages::NOT_FOUND)
}

/// 405 with the methods the endpoint allows.
pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response = empty(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// Replies that must never be cached.
pub(crate) fn no_cache(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache, no-transform, must-revalidate, max-age=0"),
    );
}

/// Replies cached for a year.
pub(crate) fn cache_for_a_year(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000"),
    );
    let expires = httpdate::fmt_http_date(SystemTime::now() + YEAR);
    if let Ok(expires) = HeaderValue::from_str(&expires) {
        headers.insert(header::EXPIRES, expires);
    }
}

/// What a request's CORS headers may say: the request's headers, the
/// endpoint's settings, and whether the page's origin may read the reply
/// (the layer's origin policy allows it).
pub(crate) struct Cors<'a> {
    pub(crate) request: &'a HeaderMap,
    pub(crate) config: &'a SockJsConfig,
    pub(crate) origin_allowed: bool,
}

/// CORS as sockjs-node answers XHR and `/info` requests, for allowed
/// origins: the request's `Origin` echoed with credentials allowed (`null`
/// included, the origin of sandboxed pages), or `*` without credentials
/// when there is none, and the requested headers allowed. An origin the
/// policy does not allow gets no `Access-Control-Allow-Origin`: its page
/// cannot read the reply.
pub(crate) fn cors(headers: &mut HeaderMap, cors: &Cors<'_>) {
    cors_for(headers, cors, cors.request.get(header::ORIGIN));
}

/// CORS of the `eventsource` transport, where sockjs-node still answers
/// `Origin: null` with `*`.
pub(crate) fn cors_event_source(headers: &mut HeaderMap, cors: &Cors<'_>) {
    let origin = cors
        .request
        .get(header::ORIGIN)
        .filter(|origin| *origin != "null");
    cors_for(headers, cors, origin);
}

fn cors_for(headers: &mut HeaderMap, cors: &Cors<'_>, origin: Option<&HeaderValue>) {
    if cors.config.disable_cors {
        return;
    }
    match origin.filter(|origin| !origin.is_empty()) {
        Some(origin) if cors.origin_allowed => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        Some(_) => {}
        None => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(requested) = cors
        .request
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .filter(|requested| !requested.is_empty())
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
}

/// The `JSESSIONID` cookie some load balancers need for sticky sessions.
pub(crate) fn jsessionid(headers: &mut HeaderMap, request: &HeaderMap, config: &SockJsConfig) {
    let cookie = match &config.jsessionid {
        JSessionId::Off => return,
        JSessionId::Dummy => {
            let existing = request
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| *name == "JSESSIONID")
                .map(|(_, value)| value.trim().to_owned());
            format!(
                "JSESSIONID={}; path=/",
                existing.as_deref().unwrap_or("dummy")
            )
        }
        JSessionId::Custom(make) => match make(request) {
            Some(cookie) => cookie,
            None => return,
        },
    };
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, cookie);
    }
}

/// The answer to a CORS preflight of an XHR or `/info` endpoint.
pub(crate) fn preflight(cors_of: &Cors<'_>, methods: &'static str) -> Response<Body> {
    let mut response = empty(StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    cache_for_a_year(headers);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(YEAR.as_secs()),
    );
    cors(headers, cors_of);
    response
}

/// `GET /info`: what the server offers.
pub(crate) fn info(cors_of: &Cors<'_>) -> Response<Body> {
    let config = cors_of.config;
    let entropy = u32::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..4]
            .try_into()
            .expect("four bytes"),
    );
    let mut info = serde_json::json!({
        "websocket": config.websocket,
        "cookie_needed": !matches!(config.jsessionid, JSessionId::Off),
        "origins": ["*:*"],
        "entropy": entropy,
    });
    if config.disable_cors {
        info.as_object_mut().expect("an object").remove("origins");
    }
    let mut response = reply(StatusCode::OK, JSON, info.to_string());
    no_cache(response.headers_mut());
    cors(response.headers_mut(), cors_of);
    response
}

/// `GET /iframe.html`: the page cross-domain clients load in an iframe; it
/// runs the SockJS client from `sockjs_url`. Cached for a year and
/// revalidated by its MD5 `ETag`; the 304 carries only the cache headers.
///
/// Inside the iframe the client's requests are the server's own origin, so
/// the origin policy would let them through whoever framed the page: the
/// page may therefore only be framed by the origins the policy allows
/// (`Content-Security-Policy: frame-ancestors`, `frame_ancestors`; `None`
/// when any origin may).
pub(crate) fn iframe(
    request: &HeaderMap,
    config: &SockJsConfig,
    frame_ancestors: Option<&str>,
) -> Response<Body> {
    let page = pages::iframe(&config.sockjs_url);
    let etag = pages::etag(&page);
    let etag_value = HeaderValue::from_str(&etag).expect("hex digits in quotes");
    if request.get(header::IF_NONE_MATCH) == Some(&etag_value) {
        let mut response = empty(StatusCode::NOT_MODIFIED);
        cache_for_a_year(response.headers_mut());
        return response;
    }
    let length = page.len();
    let mut response = reply(StatusCode::OK, HTML, page);
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag_value);
    cache_for_a_year(headers);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Some(policy) = frame_ancestors
        .and_then(|ancestors| HeaderValue::from_str(&format!("frame-ancestors {ancestors}")).ok())
    {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}
