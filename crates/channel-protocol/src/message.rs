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

    /// Decodes the message into `T`, with one meaning on every transport: a
    /// BrowserChannel JSON map is decoded as it is; a text or binary message
    /// (SockJS, WebSocket) is parsed as JSON text; a raw map decodes as an
    /// object of strings.
    ///
    /// ```
    /// use channel_protocol::Message;
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
}
