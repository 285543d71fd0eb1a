//! The server side of the WebSocket opening handshake: RFC 6455, and the
//! legacy hixie-75/76 drafts when enabled.

use axum::body::Body;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};

/// Which handshake a request asks for. It holds copies, never slices of
/// the request: the connection outlives it.
pub(crate) enum Handshake {
    Rfc6455,
    Hixie76 { key1: String, key2: String },
    Hixie75,
}

/// Why a handshake request is refused.
pub(crate) enum Refusal {
    BadRequest(&'static str),
    /// A `Sec-WebSocket-Version` other than 13: 426 naming the one we speak.
    UnsupportedVersion,
    /// The connection offers no upgrade (not HTTP/1.1 through hyper): 426.
    CannotUpgrade,
}

impl Refusal {
    fn bad_request(message: &'static str) -> Self {
        Refusal::BadRequest(message)
    }

    pub(crate) fn response(self) -> Response<Body> {
        match self {
            Refusal::CannotUpgrade => crate::reply::text(
                StatusCode::UPGRADE_REQUIRED,
                "This connection cannot be upgraded",
            ),
            Refusal::BadRequest(message) => crate::reply::text(StatusCode::BAD_REQUEST, message),
            Refusal::UnsupportedVersion => {
                let mut response = crate::reply::text(
                    StatusCode::UPGRADE_REQUIRED,
                    "Unsupported WebSocket version",
                );
                response.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
                response
            }
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

/// What the handshake may accept.
pub(crate) struct HandshakeOptions<'a> {
    /// Subprotocols in order of preference.
    pub(crate) protocols: &'a [String],
    /// Extra response headers.
    pub(crate) headers: &'a HeaderMap,
    /// Whether the hixie-75/76 drafts are accepted.
    pub(crate) hixie: bool,
}

/// An accepted handshake: the 101 response to send, and how to take over
/// the connection once it is sent.
pub(crate) struct Accepted {
    pub(crate) response: Response<Body>,
    pub(crate) on_upgrade: hyper::upgrade::OnUpgrade,
    pub(crate) handshake: Handshake,
    pub(crate) protocol: Option<String>,
}

fn handshake_kind(headers: &HeaderMap, hixie: bool) -> Result<Handshake, Refusal> {
    let upgrade = header_str(headers, "upgrade").unwrap_or("");
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(Refusal::bad_request(
            "Can \"Upgrade\" only to \"WebSocket\".",
        ));
    }
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(Refusal::bad_request("\"Connection\" must be \"Upgrade\"."));
    }
    let key1 = header_str(headers, "sec-websocket-key1");
    let key2 = header_str(headers, "sec-websocket-key2");
    let version = headers.get(header::SEC_WEBSOCKET_VERSION);
    match (version, key1, key2) {
        (Some(version), _, _) if version != "13" => Err(Refusal::UnsupportedVersion),
        (Some(_), _, _) => match headers.get(header::SEC_WEBSOCKET_KEY) {
            Some(_) => Ok(Handshake::Rfc6455),
            None => Err(Refusal::bad_request("Missing Sec-WebSocket-Key")),
        },
        (None, Some(key1), Some(key2)) if hixie => {
            for key in [key1, key2] {
                if channel_protocol::hixie76::key_number(key).is_err() {
                    return Err(Refusal::bad_request("Invalid hixie-76 key"));
                }
            }
            Ok(Handshake::Hixie76 {
                key1: key1.to_owned(),
                key2: key2.to_owned(),
            })
        }
        (None, None, None) if hixie => Ok(Handshake::Hixie75),
        _ => Err(Refusal::bad_request("Unsupported WebSocket version")),
    }
}

/// The first subprotocol of `supported` that the client offers.
fn select_protocol(headers: &HeaderMap, supported: &[String]) -> Option<String> {
    let offered: Vec<&str> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    supported
        .iter()
        .find(|protocol| offered.contains(&protocol.as_str()))
        .cloned()
}

/// Checks a GET request's handshake and builds the 101 response.
pub(crate) fn accept(
    parts: &mut Parts,
    options: &HandshakeOptions<'_>,
) -> Result<Accepted, Refusal> {
    let handshake = handshake_kind(&parts.headers, options.hixie)?;
    let protocol = select_protocol(&parts.headers, options.protocols);
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return Err(Refusal::CannotUpgrade);
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.extend(options.headers.clone());
    if let Some(protocol) = protocol
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    match &handshake {
        Handshake::Rfc6455 => {
            let key = parts
                .headers
                .get(header::SEC_WEBSOCKET_KEY)
                .expect("checked by handshake_kind");
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            let accept =
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            headers.insert(
                header::SEC_WEBSOCKET_ACCEPT,
                HeaderValue::from_str(&accept).expect("base64 is a valid header"),
            );
        }
        Handshake::Hixie76 { .. } | Handshake::Hixie75 => {
            let hixie76 = matches!(handshake, Handshake::Hixie76 { .. });
            let (origin_name, location_name, phrase) = if hixie76 {
                (
                    "sec-websocket-origin",
                    "sec-websocket-location",
                    "WebSocket Protocol Handshake",
                )
            } else {
                (
                    "websocket-origin",
                    "websocket-location",
                    "Web Socket Protocol Handshake",
                )
            };
            headers.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
            headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            if let Some(origin) = parts.headers.get(header::ORIGIN) {
                headers.insert(HeaderName::from_static(origin_name), origin.clone());
            }
            let host = header_str(&parts.headers, "host").unwrap_or("localhost");
            let location = format!("ws://{host}{}", parts.uri);
            if let Ok(location) = HeaderValue::from_str(&location) {
                headers.insert(HeaderName::from_static(location_name), location);
            }
            response
                .extensions_mut()
                .insert(hyper::ext::ReasonPhrase::from_static(phrase.as_bytes()));
        }
    }

    Ok(Accepted {
        response,
        on_upgrade,
        handshake,
        protocol,
    })
}
