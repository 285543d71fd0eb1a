//! Decoding of forward channel POST bodies (client to server).
//!
//! A client sends numbered maps, either url-encoded:
//!
//! ```text
//! count=2&ofs=7&req0_JSON=%7B%22a%22%3A1%7D&req1__S=hello
//! ```
//!
//! or, when the server announced `X-Accept: application/json`, as JSON:
//!
//! ```text
//! {"ofs": 7, "data": [{"a": 1}, "hello"]}
//! ```
//!
//! `ofs` is the number of the first map; the others follow on. A map with a
//! `JSON` key carries a JSON message, a map with a `_S` key a string message;
//! any other map reaches the application as it is.

use crate::message::{json_size, map_size};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// The longest a forward channel request may be held while the app catches
/// up. The client gives up on a request after 10 to 20 seconds without an
/// answer and retries it, three times at most; an answer well before that
/// keeps the client slowed down without making it fail.
pub const FORWARD_CHANNEL_HOLD: std::time::Duration = std::time::Duration::from_secs(8);

/// One client message taken from the forward channel.
#[derive(Debug, Clone, PartialEq)]
pub enum ForwardMessage {
    /// A JSON message: a map's `JSON` key, a `_S` string, or an item of a JSON body.
    Json(Value),
    /// A map with neither a `JSON` nor a `_S` key, passed on as it is.
    Map(BTreeMap<String, String>),
}

impl ForwardMessage {
    /// Approximately how many bytes the message holds: what
    /// [`Message::size`](crate::Message::size) says of the message it
    /// becomes. A session weighs the maps it holds out of order with it.
    pub fn size(&self) -> usize {
        match self {
            ForwardMessage::Json(value) => json_size(value),
            ForwardMessage::Map(map) => map_size(map),
        }
    }
}

/// The maps of one forward channel request, numbered from `offset`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardBatch {
    /// The number of the first map (`ofs`).
    pub offset: u64,
    /// The decoded maps, in order.
    pub messages: Vec<ForwardMessage>,
}

/// Why a forward channel body was refused; the session is left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardError {
    /// The body is not a well-formed forward channel request.
    BadData(String),
    /// The request holds more maps than the server accepts in one request.
    TooManyMaps {
        /// The most maps one request may hold.
        limit: usize,
    },
}

impl fmt::Display for ForwardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardError::BadData(why) => write!(f, "bad forward channel data: {why}"),
            ForwardError::TooManyMaps { limit } => {
                write!(f, "a forward channel request may hold at most {limit} maps")
            }
        }
    }
}

impl std::error::Error for ForwardError {}

fn bad(why: impl Into<String>) -> ForwardError {
    ForwardError::BadData(why.into())
}

/// Decodes one forward channel body; `None` means the request carries no maps.
///
/// `is_json` is true when the request's `Content-Type` is `application/json`.
/// Every map is checked before any is returned, so a bad request delivers
/// nothing.
///
/// ```
/// use axum_channel_protocol::browserchannel::{decode_forward_channel, ForwardMessage};
/// use serde_json::json;
///
/// let body = b"count=2&ofs=4&req0_JSON=%5B1%2C2%5D&req1__S=hi";
/// let batch = decode_forward_channel(false, body, 100).unwrap().unwrap();
/// assert_eq!(batch.offset, 4);
/// assert_eq!(batch.messages, [ForwardMessage::Json(json!([1, 2])), ForwardMessage::Json(json!("hi"))]);
/// assert!(decode_forward_channel(false, b"count=1", 100).is_err());
/// ```
pub fn decode_forward_channel(
    is_json: bool,
    body: &[u8],
    max_maps: usize,
) -> Result<Option<ForwardBatch>, ForwardError> {
    if is_json {
        decode_json(body, max_maps)
    } else {
        decode_form(body, max_maps)
    }
}

fn decode_json(body: &[u8], max_maps: usize) -> Result<Option<ForwardBatch>, ForwardError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let object = match value {
        Value::Null => return Ok(None),
        Value::Object(object) => object,
        _ => return Err(bad("a JSON body must be an object or null")),
    };
    let offset = object
        .get("ofs")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("`ofs` must be a whole number"))?;
    let data = match object.get("data") {
        Some(Value::Array(items)) => items,
        _ => return Err(bad("`data` must be an array")),
    };
    if data.len() > max_maps {
        return Err(ForwardError::TooManyMaps { limit: max_maps });
    }
    let messages = data.iter().cloned().map(ForwardMessage::Json).collect();
    Ok(Some(ForwardBatch { offset, messages }))
}

fn decode_form(body: &[u8], max_maps: usize) -> Result<Option<ForwardBatch>, ForwardError> {
    let mut count = None;
    let mut offset = None;
    let mut entries = Vec::new();
    for (key, value) in form_urlencoded::parse(body) {
        match key.as_ref() {
            "count" => count = Some(value.parse::<usize>().map_err(|_| bad("bad `count`"))?),
            "ofs" => offset = Some(value.parse::<u64>().map_err(|_| bad("bad `ofs`"))?),
            key => {
                if let Some((index, map_key)) = split_map_key(key) {
                    entries.push((index, map_key.to_owned(), value.into_owned()));
                }
            }
        }
    }
    let count = count.ok_or_else(|| bad("missing `count`"))?;
    if count == 0 {
        return Ok(None);
    }
    if count > max_maps {
        return Err(ForwardError::TooManyMaps { limit: max_maps });
    }
    let offset = offset.ok_or_else(|| bad("missing `ofs`"))?;
    let mut maps = vec![BTreeMap::new(); count];
    for (index, map_key, value) in entries {
        let map = maps
            .get_mut(index)
            .ok_or_else(|| bad(format!("map {index} is beyond `count`")))?;
        // The client marks a map it failed to encode with `type=_badmap`.
        if map_key == "type" && value == "_badmap" {
            continue;
        }
        map.insert(map_key, value);
    }
    let messages = maps
        .into_iter()
        .map(map_to_message)
        .collect::<Result<_, _>>()?;
    Ok(Some(ForwardBatch { offset, messages }))
}

/// Splits `req12_key` into `(12, "key")`.
fn split_map_key(key: &str) -> Option<(usize, &str)> {
    let rest = key.strip_prefix("req")?;
    let (index, map_key) = rest.split_once('_')?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) || map_key.is_empty() {
        return None;
    }
    Some((index.parse().ok()?, map_key))
}

fn map_to_message(mut map: BTreeMap<String, String>) -> Result<ForwardMessage, ForwardError> {
    if let Some(json) = map.get("JSON") {
        let value =
            serde_json::from_str(json).map_err(|e| bad(format!("invalid JSON in map: {e}")))?;
        return Ok(ForwardMessage::Json(value));
    }
    if let Some(text) = map.remove("_S") {
        return Ok(ForwardMessage::Json(Value::String(text)));
    }
    Ok(ForwardMessage::Map(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(body: &str) -> Result<Option<ForwardBatch>, ForwardError> {
        decode_forward_channel(false, body.as_bytes(), 100)
    }

    #[test]
    fn count_zero_carries_no_maps() {
        assert_eq!(form("count=0"), Ok(None));
    }

    #[test]
    fn json_and_string_maps_become_json_messages() {
        let batch = form("count=2&ofs=7&req0_JSON=%7B%22a%22%3A%5B1%2C2%5D%7D&req1__S=hi+there")
            .unwrap()
            .unwrap();
        assert_eq!(batch.offset, 7);
        assert_eq!(
            batch.messages,
            vec![
                ForwardMessage::Json(json!({"a": [1, 2]})),
                ForwardMessage::Json(json!("hi there")),
            ]
        );
    }

    #[test]
    fn other_maps_pass_through_as_maps() {
        let batch = form("count=1&ofs=0&req0_x=3&req0_y=10&req0_type=_badmap")
            .unwrap()
            .unwrap();
        let expected: BTreeMap<String, String> =
            [("x".into(), "3".into()), ("y".into(), "10".into())].into();
        assert_eq!(batch.messages, vec![ForwardMessage::Map(expected)]);
    }

    #[test]
    fn maps_are_ordered_by_index_not_by_key_order() {
        let batch = form("req1__S=b&count=2&req0__S=a&ofs=3").unwrap().unwrap();
        assert_eq!(
            batch.messages,
            vec![
                ForwardMessage::Json(json!("a")),
                ForwardMessage::Json(json!("b"))
            ]
        );
    }

    #[test]
    fn malformed_form_bodies_are_refused() {
        for body in [
            "",
            "ofs=0",
            "count=x",
            "count=1",
            "count=1&ofs=-1&req0__S=a",
            "count=1&ofs=0&req3__S=a",
            "count=1&ofs=0&req0_JSON=%7B",
        ] {
            assert!(
                matches!(form(body), Err(ForwardError::BadData(_))),
                "{body:?} was accepted"
            );
        }
    }

    #[test]
    fn a_huge_count_is_refused_before_allocating() {
        assert_eq!(
            form("count=99999999999&ofs=0"),
            Err(ForwardError::TooManyMaps { limit: 100 })
        );
    }

    #[test]
    fn json_bodies_decode() {
        let batch = decode_forward_channel(true, br#"{"ofs":2,"data":[null,1.5,"x"]}"#, 10)
            .unwrap()
            .unwrap();
        assert_eq!(batch.offset, 2);
        assert_eq!(
            batch.messages,
            vec![
                ForwardMessage::Json(Value::Null),
                ForwardMessage::Json(json!(1.5)),
                ForwardMessage::Json(json!("x")),
            ]
        );
        assert_eq!(decode_forward_channel(true, b"null", 10), Ok(None));
    }

    #[test]
    fn malformed_json_bodies_are_refused() {
        for body in [
            &b"{"[..],
            b"[]",
            br#"{"data":[]}"#,
            br#"{"ofs":-1,"data":[]}"#,
            br#"{"ofs":0}"#,
        ] {
            assert!(decode_forward_channel(true, body, 10).is_err());
        }
        assert_eq!(
            decode_forward_channel(true, br#"{"ofs":0,"data":[1,2,3]}"#, 2),
            Err(ForwardError::TooManyMaps { limit: 2 })
        );
    }
}
