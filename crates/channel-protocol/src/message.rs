//! What a client sends, as the app receives it.

use bytes::Bytes;
use serde::de::DeserializeOwned;
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
    /// A text message: WebSocket text, or a SockJS message.
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
            Message::Map(map) => Some(map_to_object(map)),
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

    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text),
            _ => None,
        }
    }

    /// Approximately how many bytes the message holds, for bounding a
    /// queue of received messages in bytes: exact for text and binary
    /// data, the keys and values of a map, and for JSON an estimate
    /// ([`json_size`]). It approximates memory, not the bytes the message
    /// took on the wire: escapes and framing are not counted.
    ///
    /// ```
    /// use axum_channel_protocol::Message;
    /// use serde_json::json;
    ///
    /// assert_eq!(Message::Text("hello".into()).size(), 5);
    /// assert_eq!(Message::Json(json!({"to": "ann", "n": 1})).size(), 2 + 3 + 1 + 8 + 2 * 8);
    /// ```
    pub fn size(&self) -> usize {
        match self {
            Message::Json(value) => json_size(value),
            Message::Map(map) => map_size(map),
            Message::Text(text) => text.len(),
            Message::Binary(data) => data.len(),
        }
    }

    /// Decodes the message into `T`, with one meaning on every transport: a
    /// BrowserChannel JSON map is decoded as it is; a text or binary message
    /// (SockJS, WebSocket) is parsed as JSON text; a raw map decodes as an
    /// object of strings.
    ///
    /// ```
    /// use axum_channel_protocol::Message;
    /// use serde::Deserialize;
    /// use serde_json::json;
    ///
    /// #[derive(Deserialize, Debug, PartialEq)]
    /// struct Say { room: String, text: String }
    ///
    /// let over_websocket = Message::Text(r#"{"room":"r","text":"hi"}"#.into());
    /// let over_browserchannel = Message::Json(json!({"room": "r", "text": "hi"}));
    /// assert_eq!(over_websocket.json::<Say>().unwrap(), over_browserchannel.json::<Say>().unwrap());
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match self {
            Message::Json(value) => T::deserialize(value),
            Message::Text(text) => serde_json::from_str(text),
            Message::Binary(data) => serde_json::from_slice(data),
            Message::Map(map) => T::deserialize(map_to_object(map.clone())),
        }
    }
}

/// What a number, `true`, `false` or `null` counts for in [`json_size`]:
/// its eight bytes of data.
const JSON_SCALAR: usize = 8;

/// What each array item and object entry adds in [`json_size`], for its
/// place in the array or object.
const JSON_SLOT: usize = 8;

/// A cheap estimate of the bytes a JSON value holds, without serializing
/// it: the length of every string and object key, 8 bytes for each
/// number, boolean and null (its data), and 8 more for each array item and
/// object entry (its place in the array or object). It walks the value
/// with a stack of its own, so no nesting depth can overflow the thread's
/// stack.
///
/// ```
/// use axum_channel_protocol::message::json_size;
/// use serde_json::json;
///
/// assert_eq!(json_size(&json!("abc")), 3);
/// assert_eq!(json_size(&json!([1, true, null])), 3 * 8 + 3 * 8);
/// ```
pub fn json_size(value: &Value) -> usize {
    let mut size = 0;
    let mut pending = Vec::new();
    let mut current = value;
    loop {
        match current {
            Value::Null | Value::Bool(_) | Value::Number(_) => size += JSON_SCALAR,
            Value::String(text) => size += text.len(),
            Value::Array(items) => {
                size += JSON_SLOT * items.len();
                pending.extend(items);
            }
            Value::Object(entries) => {
                for (key, item) in entries {
                    size += key.len() + JSON_SLOT;
                    pending.push(item);
                }
            }
        }
        match pending.pop() {
            Some(next) => current = next,
            None => return size,
        }
    }
}

/// The bytes of a map's keys and values.
pub(crate) fn map_size(map: &BTreeMap<String, String>) -> usize {
    map.iter().map(|(key, value)| key.len() + value.len()).sum()
}

fn map_to_object(map: BTreeMap<String, String>) -> Value {
    Value::Object(
        map.into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_has_a_json_reading() {
        let map: BTreeMap<_, _> = [("a".to_owned(), "1".to_owned())].into();
        assert_eq!(
            Message::Map(map.clone()).into_json(),
            Some(json!({"a": "1"}))
        );
        assert_eq!(Message::Text("x".into()).into_json(), Some(json!("x")));
        assert_eq!(Message::Binary(Bytes::new()).into_json(), None);
        assert_eq!(
            Message::Map(map)
                .json::<BTreeMap<String, String>>()
                .unwrap()["a"],
            "1"
        );
        assert_eq!(
            Message::Binary(Bytes::from_static(b"[1]"))
                .json::<Vec<u8>>()
                .unwrap(),
            [1]
        );
        assert!(Message::Text("not json".into()).json::<Value>().is_err());
    }

    #[test]
    fn sizes_count_what_each_kind_holds() {
        let map: BTreeMap<_, _> = [
            ("ab".to_owned(), "cde".to_owned()),
            ("f".to_owned(), String::new()),
        ]
        .into();
        assert_eq!(Message::Map(map).size(), 6);
        assert_eq!(Message::Binary(Bytes::from_static(&[0; 7])).size(), 7);
        assert_eq!(Message::Text("é".into()).size(), 2, "bytes, not characters");
        assert_eq!(Message::Json(json!("x".repeat(1000))).size(), 1000);
        assert_eq!(Message::Json(json!([])).size(), 0);
        assert_eq!(
            Message::Json(json!({"a": [1, {"bc": null}]})).size(),
            (1 + JSON_SLOT) + 2 * JSON_SLOT + JSON_SCALAR + (2 + JSON_SLOT) + JSON_SCALAR
        );
    }

    #[test]
    fn a_deeply_nested_value_is_weighed_without_recursion() {
        let mut value = json!(1);
        for _ in 0..100_000 {
            value = Value::Array(vec![value]);
        }
        assert_eq!(json_size(&value), 100_000 * JSON_SLOT + JSON_SCALAR);
        // Dropping it recurses in serde_json; unwind it by hand.
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap_or(Value::Null);
        }
    }
}
