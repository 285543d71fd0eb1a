//! What the app sends, encoded at most once per wire format.
//!
//! A broadcast reaches sessions of every transport; each transport needs the
//! message in its own form (a BrowserChannel array's ASCII JSON, a SockJS
//! quoted string, WebSocket text, an event-stream event). A [`Payload`]
//! makes each form the first time a session asks for it and hands the same
//! bytes to every later session.

use crate::event_stream::format as event_stream;
use crate::json::{self, EscapePolicy};
use crate::websocket::permessage_deflate::{deflate_message, DeflateParams};
use bytes::Bytes;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The forms a message takes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// The data of a BrowserChannel array: ASCII-only JSON.
    BrowserChannel,
    /// A SockJS message inside an `a[...]` frame: a JSON string with SockJS's escaping.
    SockJs,
    /// The payload of a WebSocket text (or binary) message.
    WebSocket,
    /// One `text/event-stream` event.
    EventSource,
}

const FORMATS: usize = 4;

impl WireFormat {
    fn index(self) -> usize {
        match self {
            WireFormat::BrowserChannel => 0,
            WireFormat::SockJs => 1,
            WireFormat::WebSocket => 2,
            WireFormat::EventSource => 3,
        }
    }
}

/// What a payload holds before encoding.
#[derive(Debug, Clone, PartialEq)]
enum Body {
    Json(Value),
    /// UTF-8 text, held as bytes so WebSocket frames share it without a copy.
    Text(Bytes),
    Binary(Bytes),
    Event {
        data: String,
        event: Option<String>,
        id: Option<String>,
    },
}

/// A message for one or many sessions, with its encodings cached.
///
/// ```
/// use axum_channel_protocol::payload::{Payload, WireFormat};
/// use serde_json::json;
///
/// let payload = Payload::json(json!({"text": "é"}));
/// assert_eq!(&payload.encode(WireFormat::BrowserChannel).unwrap()[..], br#"{"text":"\u00e9"}"#);
/// assert_eq!(&payload.encode(WireFormat::SockJs).unwrap()[..], r#""{\"text\":\"é\"}""#.as_bytes());
/// assert_eq!(&payload.encode(WireFormat::EventSource).unwrap()[..], "data: {\"text\":\"é\"}\n\n".as_bytes());
/// // Asking again returns the same bytes without encoding again.
/// payload.encode(WireFormat::SockJs);
/// assert_eq!(payload.encodings(), 3);
/// ```
#[derive(Debug)]
pub struct Payload {
    body: Body,
    /// The event type EventSource clients get it as (`message` when none).
    event_type: Option<String>,
    /// The event id EventSource clients get it with (its history position).
    event_id: Option<String>,
    encoded: [OnceLock<Option<Bytes>>; FORMATS],
    encodings: AtomicUsize,
    encoded_bytes: AtomicUsize,
    /// The WebSocket form compressed on its own (permessage-deflate
    /// without context takeover), with the parameters it was made with.
    deflated: OnceLock<(DeflateParams, Bytes)>,
    deflated_encodings: AtomicUsize,
    member_deflates: AtomicUsize,
}

impl Payload {
    fn new(body: Body) -> Self {
        Self {
            body,
            event_type: None,
            event_id: None,
            encoded: Default::default(),
            encodings: AtomicUsize::new(0),
            encoded_bytes: AtomicUsize::new(0),
            deflated: OnceLock::new(),
            deflated_encodings: AtomicUsize::new(0),
            member_deflates: AtomicUsize::new(0),
        }
    }

    /// A JSON message: a JSON value on BrowserChannel, its JSON text elsewhere
    /// (a JSON string is sent as its text).
    pub fn json(value: Value) -> Self {
        match value {
            Value::String(text) => Self::text(text),
            value => Self::new(Body::Json(value)),
        }
    }

    /// A text message: a JSON string on BrowserChannel, text elsewhere.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(Body::Text(Bytes::from(text.into())))
    }

    /// Text already checked to be UTF-8.
    pub(crate) fn utf8(text: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&text).is_ok());
        Self::new(Body::Text(text))
    }

    /// Binary data: WebSocket only.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::new(Body::Binary(data.into()))
    }

    /// A server-sent event with a type and id: EventSource only.
    pub fn event(data: impl Into<String>, event: Option<String>, id: Option<String>) -> Self {
        Self::new(Body::Event {
            data: data.into(),
            event,
            id,
        })
    }

    /// Names the event type EventSource clients receive this message as
    /// (its data is the message's text); other transports ignore it.
    ///
    /// ```
    /// use axum_channel_protocol::payload::{Payload, WireFormat};
    /// let payload = Payload::text("hi").with_event_type("said");
    /// assert_eq!(&payload.encode(WireFormat::EventSource).unwrap()[..], b"event: said\ndata: hi\n\n");
    /// assert_eq!(&payload.encode(WireFormat::WebSocket).unwrap()[..], b"hi");
    /// ```
    pub fn with_event_type(mut self, event: impl Into<String>) -> Self {
        self.event_type = Some(event.into());
        self
    }

    /// The same message at a history position: EventSource clients get
    /// `position` as the event's id, and a JSON object gets it as the string
    /// value of `field` too (any value `field` had is replaced). Made once
    /// per broadcast, so every member still shares one encoding per format.
    ///
    /// ```
    /// use axum_channel_protocol::payload::{Payload, WireFormat};
    /// use serde_json::json;
    ///
    /// let said = Payload::json(json!({"text": "hi"})).with_event_type("said");
    /// let stamped = said.at_position(Some("pos"), "7-ab");
    /// assert_eq!(&stamped.encode(WireFormat::WebSocket).unwrap()[..], br#"{"pos":"7-ab","text":"hi"}"#);
    /// assert_eq!(
    ///     &stamped.encode(WireFormat::EventSource).unwrap()[..],
    ///     b"event: said\nid: 7-ab\ndata: {\"pos\":\"7-ab\",\"text\":\"hi\"}\n\n"
    /// );
    /// ```
    pub fn at_position(&self, field: Option<&str>, position: &str) -> Payload {
        let body = match (&self.body, field) {
            (Body::Json(Value::Object(object)), Some(field)) => {
                let mut object = object.clone();
                object.insert(field.to_owned(), Value::String(position.to_owned()));
                Body::Json(Value::Object(object))
            }
            (Body::Event { data, event, .. }, _) => Body::Event {
                data: data.clone(),
                event: event.clone(),
                id: Some(position.to_owned()),
            },
            (body, _) => body.clone(),
        };
        let mut stamped = Self::new(body);
        stamped.event_type = self.event_type.clone();
        stamped.event_id = Some(position.to_owned());
        stamped
    }

    /// The same message, with none of its encodings made yet (for a frame
    /// to another node, say).
    pub fn copy_unencoded(&self) -> Payload {
        let mut copy = Self::new(self.body.clone());
        copy.event_type = self.event_type.clone();
        copy.event_id = self.event_id.clone();
        copy
    }

    /// True for binary data.
    pub fn is_binary(&self) -> bool {
        matches!(self.body, Body::Binary(_))
    }

    /// What this payload is, for the error of a transport that cannot carry it.
    pub fn kind(&self) -> &'static str {
        match self.body {
            Body::Json(_) | Body::Text(_) => "text",
            Body::Binary(_) => "binary messages",
            Body::Event { .. } => "events",
        }
    }

    /// The payload in `format`, encoded on first use; `None` when the format
    /// cannot carry it (binary data outside WebSocket, events outside EventSource).
    pub fn encode(&self, format: WireFormat) -> Option<Bytes> {
        self.encoded[format.index()]
            .get_or_init(|| {
                let encoded = self.encode_now(format);
                if let Some(bytes) = &encoded {
                    self.encodings.fetch_add(1, Ordering::Relaxed);
                    self.encoded_bytes.fetch_add(bytes.len(), Ordering::Relaxed);
                }
                encoded
            })
            .clone()
    }

    /// The WebSocket form compressed on its own with `params`
    /// (permessage-deflate without context takeover, RFC 7692 section
    /// 7.1.1.1), made once and shared by every session that compresses
    /// with the same parameters; `None` when WebSocket cannot carry it.
    ///
    /// ```
    /// use axum_channel_protocol::payload::Payload;
    /// use axum_channel_protocol::websocket::permessage_deflate::DeflateParams;
    ///
    /// let payload = Payload::text("hello hello hello hello");
    /// let params = DeflateParams { level: 6, window_bits: 15, no_context_takeover: true };
    /// let first = payload.deflated(params).unwrap();
    /// assert_eq!(first, payload.deflated(params).unwrap());
    /// assert_eq!(payload.deflated_encodings(), 1);
    /// ```
    pub fn deflated(&self, params: DeflateParams) -> Option<Bytes> {
        let plain = self.encode(WireFormat::WebSocket)?;
        let make = || {
            self.deflated_encodings.fetch_add(1, Ordering::Relaxed);
            let bytes = deflate_message(params, &plain);
            self.encoded_bytes.fetch_add(bytes.len(), Ordering::Relaxed);
            bytes
        };
        let (made_with, bytes) = self.deflated.get_or_init(|| (params, make()));
        if *made_with == params {
            Some(bytes.clone())
        } else {
            // Another endpoint's settings: compressed for it alone.
            Some(make())
        }
    }

    /// How many compressed forms [`deflated`](Self::deflated) made (one
    /// per set of parameters, however many sessions share it).
    pub fn deflated_encodings(&self) -> usize {
        self.deflated_encodings.load(Ordering::Relaxed)
    }

    /// Notes that one session will compress this payload itself (context
    /// takeover: its compressor's window is its own).
    pub fn count_member_deflate(&self) {
        self.member_deflates.fetch_add(1, Ordering::Relaxed);
    }

    /// How many sessions compress this payload themselves.
    pub fn member_deflates(&self) -> usize {
        self.member_deflates.load(Ordering::Relaxed)
    }

    /// How many encodings were made so far (at most one per wire format).
    pub fn encodings(&self) -> usize {
        self.encodings.load(Ordering::Relaxed)
    }

    /// How many bytes those encodings (and the compressed forms) hold together.
    pub fn encoded_bytes(&self) -> usize {
        self.encoded_bytes.load(Ordering::Relaxed)
    }

    /// What the payload holds, for carrying it to another node.
    pub(crate) fn parts(&self) -> Parts<'_> {
        let kind = match &self.body {
            Body::Json(value) => PartsKind::Json(value),
            Body::Text(text) => PartsKind::Text(text),
            Body::Binary(data) => PartsKind::Binary(data),
            Body::Event { data, event, id } => PartsKind::Event {
                data,
                event: event.as_deref(),
                id: id.as_deref(),
            },
        };
        Parts {
            kind,
            event_type: self.event_type.as_deref(),
        }
    }

    fn text_form(&self) -> Option<std::borrow::Cow<'_, str>> {
        match &self.body {
            Body::Json(value) => Some(value.to_string().into()),
            // Built from a `String` only, so always UTF-8.
            Body::Text(text) => std::str::from_utf8(text).ok().map(Into::into),
            Body::Binary(_) | Body::Event { .. } => None,
        }
    }

    fn encode_now(&self, format: WireFormat) -> Option<Bytes> {
        let text = match format {
            WireFormat::BrowserChannel => match &self.body {
                Body::Json(value) => json::to_ascii_string(value),
                Body::Text(_) => json::encode(&*self.text_form()?, EscapePolicy::Ascii),
                _ => return None,
            },
            WireFormat::SockJs => json::encode(&*self.text_form()?, EscapePolicy::SockJs),
            WireFormat::WebSocket => match &self.body {
                Body::Binary(data) | Body::Text(data) => return Some(data.clone()),
                _ => self.text_form()?.into_owned(),
            },
            WireFormat::EventSource => match &self.body {
                Body::Event { data, event, id } => {
                    event_stream::encode_event(data, event.as_deref(), id.as_deref())
                }
                _ => event_stream::encode_event(
                    &self.text_form()?,
                    self.event_type.as_deref(),
                    self.event_id.as_deref(),
                ),
            },
        };
        Some(Bytes::from(text))
    }
}

/// A payload's content, borrowed.
pub(crate) struct Parts<'a> {
    pub(crate) kind: PartsKind<'a>,
    pub(crate) event_type: Option<&'a str>,
}

/// The four kinds of payload.
pub(crate) enum PartsKind<'a> {
    Json(&'a Value),
    Text(&'a Bytes),
    Binary(&'a Bytes),
    Event {
        data: &'a str,
        event: Option<&'a str>,
        id: Option<&'a str>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_text_everywhere() {
        let payload = Payload::json(json!("hi"));
        assert_eq!(
            &payload.encode(WireFormat::BrowserChannel).unwrap()[..],
            b"\"hi\""
        );
        assert_eq!(&payload.encode(WireFormat::WebSocket).unwrap()[..], b"hi");
        assert_eq!(&payload.encode(WireFormat::SockJs).unwrap()[..], b"\"hi\"");
    }

    #[test]
    fn binary_and_events_go_only_where_they_fit() {
        let binary = Payload::binary(vec![0u8, 1]);
        assert!(binary.is_binary());
        assert_eq!(&binary.encode(WireFormat::WebSocket).unwrap()[..], [0, 1]);
        assert_eq!(binary.encode(WireFormat::SockJs), None);
        assert_eq!(binary.encodings(), 1);
        let event = Payload::event("d", Some("e".into()), Some("1".into()));
        assert_eq!(
            &event.encode(WireFormat::EventSource).unwrap()[..],
            b"event: e\nid: 1\ndata: d\n\n"
        );
        assert_eq!(event.encode(WireFormat::BrowserChannel), None);
        assert_eq!(event.kind(), "events");
    }
}
