//! The IO half of the WebSocket opening handshake. The protocol crate
//! decides whether and how to answer
//! (`axum_channel_protocol::websocket::handshake`); this takes the connection
//! out of hyper and writes the answer.

use crate::reply;
use axum::body::Body;
use axum_channel_protocol::websocket::handshake::{Accepted, Handshake, Refusal};
use axum_channel_protocol::websocket::permessage_deflate::{self, Agreed, DeflateConfig};
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::Response;
use hyper::upgrade::OnUpgrade;

/// The reply to a refused handshake: its status, its words, its headers.
pub(crate) fn refused(refusal: Refusal) -> Response<Body> {
    let mut response = reply::text(refusal.status(), refusal.message());
    response.headers_mut().extend(refusal.headers());
    response
}

/// Refuses a request whose connection hyper cannot hand over (HTTP/2, or
/// a server without upgrades), before anything else is decided.
pub(crate) fn check_upgradable(parts: &Parts) -> Result<(), Refusal> {
    match parts.extensions.get::<OnUpgrade>() {
        Some(_) => Ok(()),
        None => Err(Refusal::CannotUpgrade),
    }
}

/// An accepted handshake ready to go out: the `101` response, and the
/// connection once it is sent.
pub(crate) struct Upgrading {
    pub(crate) response: Response<Body>,
    pub(crate) on_upgrade: OnUpgrade,
    pub(crate) handshake: Handshake,
}

/// Takes the connection of an accepted handshake out of hyper and builds
/// the `101` response: the endpoint's `extra` headers, then the protocol's.
pub(crate) fn upgrade(
    parts: &mut Parts,
    accepted: Accepted,
    extra: &HeaderMap,
) -> Result<Upgrading, Refusal> {
    let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
        return Err(Refusal::CannotUpgrade);
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = accepted.status();
    let headers = response.headers_mut();
    headers.extend(extra.clone());
    headers.extend(accepted.headers.clone());
    if let Some(phrase) = accepted.reason_phrase() {
        response
            .extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(phrase.as_bytes()));
    }
    Ok(Upgrading {
        response,
        on_upgrade,
        handshake: accepted.handshake,
    })
}

/// Negotiates permessage-deflate for an accepted RFC 6455 handshake when
/// the endpoint has it on, adding the answer to the 101's headers.
pub(crate) fn negotiate_deflate(
    parts: &Parts,
    accepted: &mut Accepted,
    config: Option<&DeflateConfig>,
) -> Option<Agreed> {
    let config = config?;
    if !accepted.handshake.is_rfc6455() {
        return None;
    }
    let offers = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .into_iter()
        .filter_map(|value| value.to_str().ok());
    let agreed = permessage_deflate::negotiate(offers, config)?;
    let value = HeaderValue::from_str(&agreed.response()).ok()?;
    accepted
        .headers
        .insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
    tracing::debug!(extension = %agreed.response(), "permessage-deflate agreed");
    Some(agreed)
}
