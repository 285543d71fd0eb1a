//! Decoding what SockJS clients send: a JSON array of messages.

use serde_json::Value;
use std::fmt;

/// Why a send request's body was refused (both answered with 500, as sockjs-node does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// The body is empty, or not a JSON array: `Payload expected.`
    PayloadExpected,
    /// The body is not JSON: `Broken JSON encoding.`
    BrokenJson,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PayloadError::PayloadExpected => "Payload expected.",
            PayloadError::BrokenJson => "Broken JSON encoding.",
        })
    }
}

impl std::error::Error for PayloadError {}

/// A message as the app receives it: strings as they are, anything else as JSON text.
fn message_text(value: Value) -> String {
    match value {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

fn decode_array(text: &str) -> Result<Vec<String>, PayloadError> {
    if text.is_empty() {
        return Err(PayloadError::PayloadExpected);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => Ok(items.into_iter().map(message_text).collect()),
        Ok(_) => Err(PayloadError::PayloadExpected),
        Err(_) => Err(PayloadError::BrokenJson),
    }
}

/// Decodes an `xhr_send` body: `["message", ...]`.
pub fn decode_xhr_send(body: &[u8]) -> Result<Vec<String>, PayloadError> {
    let text = std::str::from_utf8(body).map_err(|_| PayloadError::BrokenJson)?;
    decode_array(text)
}

/// Decodes a `jsonp_send` body: a form with `d=<JSON array>`, or the array itself.
pub fn decode_jsonp_send(is_form: bool, body: &[u8]) -> Result<Vec<String>, PayloadError> {
    if is_form {
        let data = form_urlencoded::parse(body)
            .find(|(key, _)| key == "d")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        decode_array(&data)
    } else {
        decode_xhr_send(body)
    }
}

/// What a SockJS WebSocket text message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebSocketPayload {
    /// Messages to deliver, in order (an empty message carries none).
    Messages(Vec<String>),
    /// The text is not JSON: the session must close.
    Broken,
}

/// Decodes one text message of the `websocket` transport: a JSON array of
/// messages, or a single JSON string.
pub fn decode_websocket(text: &str) -> WebSocketPayload {
    if text.is_empty() {
        return WebSocketPayload::Messages(Vec::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => {
            WebSocketPayload::Messages(items.into_iter().map(message_text).collect())
        }
        Ok(other) => WebSocketPayload::Messages(vec![message_text(other)]),
        Err(_) => WebSocketPayload::Broken,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xhr_send_bodies() {
        assert_eq!(
            decode_xhr_send(br#"["a","b\u2028",1]"#),
            Ok(vec!["a".into(), "b\u{2028}".into(), "1".into()])
        );
        assert_eq!(decode_xhr_send(b""), Err(PayloadError::PayloadExpected));
        assert_eq!(decode_xhr_send(b"[\"x"), Err(PayloadError::BrokenJson));
        assert_eq!(decode_xhr_send(b"{}"), Err(PayloadError::PayloadExpected));
        assert_eq!(decode_xhr_send(b"\xff"), Err(PayloadError::BrokenJson));
    }

    #[test]
    fn jsonp_send_bodies() {
        assert_eq!(
            decode_jsonp_send(true, b"d=%5B%22x%22%5D"),
            Ok(vec!["x".into()])
        );
        assert_eq!(
            decode_jsonp_send(true, b"e=1"),
            Err(PayloadError::PayloadExpected)
        );
        assert_eq!(
            decode_jsonp_send(true, b"d=%5B"),
            Err(PayloadError::BrokenJson)
        );
        assert_eq!(decode_jsonp_send(false, br#"["y"]"#), Ok(vec!["y".into()]));
    }

    #[test]
    fn websocket_messages() {
        assert_eq!(
            decode_websocket(r#"["a","b"]"#),
            WebSocketPayload::Messages(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            decode_websocket(r#""a""#),
            WebSocketPayload::Messages(vec!["a".into()])
        );
        assert_eq!(decode_websocket(""), WebSocketPayload::Messages(vec![]));
        assert_eq!(decode_websocket("[\"a"), WebSocketPayload::Broken);
    }
}
