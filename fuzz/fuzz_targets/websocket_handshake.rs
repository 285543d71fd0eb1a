//! The WebSocket opening handshake (`websocket::handshake::accept`) and
//! SockJS's WebSocket endpoints (`sockjs::transport::websocket_handshake`)
//! on any method, any header names and values (some of them the
//! handshake's own, to reach every branch), any subprotocol lists; and a
//! SockJS receiving transport on any query string.
//!
//! Asserted besides "no panic":
//! - an accepted RFC 6455 handshake carries a 28-character
//!   `Sec-WebSocket-Accept` equal to `accept_key` of the request's key,
//!   `Upgrade: websocket` and `Connection: Upgrade`;
//! - a chosen subprotocol is one of the server's that the client offered;
//! - a hixie handshake is accepted only when enabled, and only hixie-76
//!   has a challenge, whose answer is the spec's computation;
//! - a refusal is 400, 405 or 426, and a 426 for the version names 13;
//! - the raw SockJS endpoint never accepts a draft.
#![no_main]

use arbitrary::Arbitrary;
use axum_channel_protocol::hixie76::challenge_response;
use axum_channel_protocol::sockjs::transport::websocket_handshake;
use axum_channel_protocol::sockjs::TransportKind;
use axum_channel_protocol::websocket::handshake::{accept, accept_key, Handshake, Options, Refusal};
use http::header::{HeaderName, HeaderValue};
use http::Method;
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

/// A header name: one the handshake reads, or any.
#[derive(Arbitrary, Debug)]
enum Name {
    Upgrade,
    Connection,
    Version,
    Key,
    Key1,
    Key2,
    Protocol,
    Origin,
    Host,
    Any(String),
}

impl Name {
    fn name(&self) -> Option<HeaderName> {
        let known = match self {
            Name::Upgrade => "upgrade",
            Name::Connection => "connection",
            Name::Version => "sec-websocket-version",
            Name::Key => "sec-websocket-key",
            Name::Key1 => "sec-websocket-key1",
            Name::Key2 => "sec-websocket-key2",
            Name::Protocol => "sec-websocket-protocol",
            Name::Origin => "origin",
            Name::Host => "host",
            Name::Any(name) => return HeaderName::from_bytes(name.as_bytes()).ok(),
        };
        Some(HeaderName::from_static(known))
    }
}

/// A header value: a useful one, or any bytes.
#[derive(Arbitrary, Debug)]
enum Value {
    WebSocket,
    Upgrade,
    Thirteen,
    Key(String),
    Bytes(Vec<u8>),
}

impl Value {
    fn value(&self) -> Option<HeaderValue> {
        match self {
            Value::WebSocket => Some(HeaderValue::from_static("websocket")),
            Value::Upgrade => Some(HeaderValue::from_static("Upgrade")),
            Value::Thirteen => Some(HeaderValue::from_static("13")),
            Value::Key(text) => HeaderValue::from_str(text).ok(),
            Value::Bytes(bytes) => HeaderValue::from_bytes(bytes).ok(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    get: bool,
    hixie: bool,
    uri_path: String,
    headers: Vec<(Name, Value)>,
    protocols: Vec<String>,
    query: String,
    key3: [u8; 8],
}

fuzz_target!(|input: Input| {
    let uri = format!("/{}", input.uri_path);
    let mut builder = http::Request::builder()
        .method(if input.get { Method::GET } else { Method::POST })
        .uri(http::Uri::try_from(uri).unwrap_or_else(|_| http::Uri::from_static("/")));
    for (name, value) in &input.headers {
        if let (Some(name), Some(value)) = (name.name(), value.value()) {
            builder = builder.header(name, value);
        }
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let options = Options {
        protocols: &input.protocols,
        hixie: input.hixie,
    };
    match accept(&parts, &options) {
        Ok(accepted) => {
            assert!(input.get);
            assert_eq!(accepted.headers["connection"], "Upgrade");
            match accepted.handshake {
                Handshake::Rfc6455 => {
                    let key = parts.headers["sec-websocket-key"].as_bytes();
                    let sent = accepted.headers["sec-websocket-accept"].as_bytes();
                    assert_eq!(sent.len(), 28);
                    assert_eq!(sent, accept_key(key).as_bytes());
                    assert_eq!(accepted.headers["upgrade"], "websocket");
                    assert!(accepted.handshake.challenge(Instant::now()).is_none());
                }
                Handshake::Hixie76 { .. } => {
                    assert!(input.hixie);
                    let challenge = accepted.handshake.challenge(Instant::now()).unwrap();
                    let key = |name| parts.headers[name].to_str().unwrap();
                    assert_eq!(
                        Ok(challenge.answer(&input.key3)),
                        challenge_response(
                            key("sec-websocket-key1"),
                            key("sec-websocket-key2"),
                            &input.key3
                        )
                    );
                }
                Handshake::Hixie75 => assert!(input.hixie),
            }
            if let Some(protocol) = &accepted.protocol {
                assert!(input.protocols.contains(protocol));
                let offered = parts
                    .headers
                    .get_all("sec-websocket-protocol")
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .flat_map(|value| value.split(','))
                    .any(|token| token.trim() == protocol);
                assert!(offered);
            }
        }
        Err(refusal) => {
            assert!(matches!(refusal.status().as_u16(), 400 | 405 | 426));
            if refusal == Refusal::UnsupportedVersion {
                assert_eq!(refusal.headers()["sec-websocket-version"], "13");
            }
            assert!(!refusal.message().is_empty());
        }
    }
    for raw in [false, true] {
        if let Ok(accepted) = websocket_handshake(&parts, raw) {
            assert!(!raw || accepted.handshake.is_rfc6455());
            assert_eq!(accepted.protocol, None);
        }
    }
    for transport in [TransportKind::HtmlFile, TransportKind::JsonpPolling] {
        if let Err(error) = transport.receiver(Some(&input.query)) {
            assert_eq!(error.status().as_u16(), 500);
        }
    }
});
