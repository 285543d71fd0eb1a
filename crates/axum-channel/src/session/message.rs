//! What a client sends.

use bytes::Bytes;
use serde_json::Value;
use std::collections::BTreeMap;

/// One message from the client.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// A JSON value: a BrowserChannel map's `JSON` key, a `_S` string, or an
    /// item of a JSON forward channel body.
    Json(Value),
    /// A BrowserChannel map with neither a `JSON` nor a `_S` key, as sent.
    Map(BTreeMap<String, String>),
    /// A WebSocket text message.
    Text(String),
    /// A WebSocket binary message.
    Binary(Bytes),
}

impl Message {
    /// The message as JSON: a raw map becomes an object of strings and text
    /// a JSON string; binary data has no JSON form.
    pub fn into_json(self) -> Option<Value> {
        match self {
            Message::Json(value) => Some(value),
            Message::Map(map) => Some(Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            )),
            Message::Text(text) => Some(Value::String(text)),
            Message::Binary(_) => None,
        }
    }

    /// The JSON value, if this is a JSON message.
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Message::Json(value) => Some(value),
            _ => None,
        }
    }
}
