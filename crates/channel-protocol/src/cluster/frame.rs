//! The frames nodes exchange: a broadcast, a question, a reply.
//!
//! A frame is one bus message. Its first byte says what it is: `B` a
//! broadcast (a JSON header line, then the payload's bytes untouched, so
//! binary data and large texts are not escaped), `Q` a question and `R` a
//! reply (JSON). The JSON header never holds a raw newline, so the first
//! `\n` ends it.

use super::topic::Topic;
use crate::payload::{Parts, PartsKind, Payload};
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Who a broadcast is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every session.
    All,
    /// The members of any of these rooms, each member once (no room twice,
    /// see [`Target::rooms`]).
    Rooms(Vec<String>),
    /// One session, by id.
    Session(String),
}

impl Target {
    /// The members of these rooms; a room named twice counts once, so a
    /// member is sent one copy.
    pub fn rooms<I: IntoIterator<Item = String>>(rooms: I) -> Target {
        let mut unique: Vec<String> = Vec::new();
        for room in rooms {
            if !unique.contains(&room) {
                unique.push(room);
            }
        }
        Target::Rooms(unique)
    }
}

/// A broadcast travelling between nodes.
#[derive(Debug)]
pub struct Envelope {
    /// The node that made it, which delivered it to its own members already.
    pub origin: String,
    /// Who it is for.
    pub target: Target,
    /// Session ids left out (the sender, say).
    pub except: Vec<String>,
    /// The message.
    pub payload: Payload,
}

/// Which members the copy of a broadcast heard on one topic is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience<'a> {
    /// Every session of the node.
    Everyone,
    /// The members of `room` who are in none of `not_in`: a member of
    /// several target rooms takes the copy of the first of them in the
    /// target's order, and ignores the others.
    Room {
        /// The room whose topic carried this copy.
        room: &'a str,
        /// Target rooms listed before it.
        not_in: &'a [String],
    },
    /// The session with this id.
    Session(&'a str),
    /// No one: the frame came on a topic it was not published on.
    Nobody,
}

impl Envelope {
    /// The topics this broadcast is published on: one per target room.
    pub fn topics(&self) -> Vec<Topic> {
        match &self.target {
            Target::All => vec![Topic::All],
            Target::Rooms(rooms) => rooms.iter().cloned().map(Topic::Room).collect(),
            Target::Session(_) => Vec::new(),
        }
    }

    /// Who the copy that arrived on `topic` is for.
    ///
    /// ```
    /// use axum_channel_protocol::cluster::{frame::Audience, Envelope, Target, Topic};
    /// use axum_channel_protocol::Payload;
    /// let envelope = Envelope {
    ///     origin: "n1".into(),
    ///     target: Target::rooms(["a".to_string(), "b".to_string()]),
    ///     except: vec![],
    ///     payload: Payload::text("hi"),
    /// };
    /// // Members of both rooms take the copy of `a`, not the one of `b`.
    /// let not_in = ["a".to_string()];
    /// assert_eq!(envelope.audience(&Topic::Room("b".into())), Audience::Room { room: "b", not_in: &not_in });
    /// assert_eq!(envelope.audience(&Topic::All), Audience::Nobody);
    /// ```
    pub fn audience(&self, topic: &Topic) -> Audience<'_> {
        match (&self.target, topic) {
            (Target::All, Topic::All) => Audience::Everyone,
            (Target::Rooms(rooms), Topic::Room(room) | Topic::Log(room)) => {
                match rooms.iter().position(|r| r == room) {
                    Some(index) => Audience::Room {
                        room: &rooms[index],
                        not_in: &rooms[..index],
                    },
                    None => Audience::Nobody,
                }
            }
            (Target::Session(id), Topic::Node(_)) => Audience::Session(id),
            _ => Audience::Nobody,
        }
    }
}

/// What one node asks the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Question {
    /// How many of your sessions are in this room?
    RoomMembers(String),
    /// How many sessions have you?
    Sessions,
    /// Have you the session with this id?
    FindSession(String),
}

/// A question, numbered by the node that asks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Numbers the question among those `from` asked.
    pub id: u64,
    /// The node that asks, which hears replies on its own topic.
    pub from: String,
    /// What it asks.
    pub question: Question,
}

/// What a node answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// A number of sessions.
    Count(usize),
    /// Whether it has the session.
    Found(bool),
}

/// One node's answer to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The request's id.
    pub id: u64,
    /// The node that answers.
    pub from: String,
    /// Its answer.
    pub answer: Answer,
}

/// One message on the bus.
#[derive(Debug)]
pub enum Frame {
    /// A broadcast (boxed: it is far larger than a question).
    Broadcast(Box<Envelope>),
    /// A question to every node.
    Request(Request),
    /// A reply to one node.
    Reply(Reply),
}

/// Bytes that are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError(pub(crate) &'static str);

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a cluster frame: {}", self.0)
    }
}

impl std::error::Error for FrameError {}

const BROADCAST: u8 = b'B';
const REQUEST: u8 = b'Q';
const REPLY: u8 = b'R';

/// The broadcast header: everything but the payload's bytes.
#[derive(Serialize, Deserialize)]
struct Header {
    from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rooms: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    except: Vec<String>,
    kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Json,
    Text,
    Binary,
    Event,
}

impl Envelope {
    /// The broadcast as one bus message.
    pub fn encode(&self) -> Bytes {
        let Parts { kind, event_type } = self.payload.parts();
        let (rooms, session) = match &self.target {
            Target::All => (None, None),
            Target::Rooms(rooms) => (Some(rooms.clone()), None),
            Target::Session(id) => (None, Some(id.clone())),
        };
        let mut header = Header {
            from: self.origin.clone(),
            rooms,
            session,
            except: self.except.clone(),
            kind: Kind::Text,
            event_type: event_type.map(str::to_owned),
            event: None,
            id: None,
        };
        let body: Bytes = match kind {
            PartsKind::Json(value) => {
                header.kind = Kind::Json;
                Bytes::from(value.to_string())
            }
            PartsKind::Text(text) => text.clone(),
            PartsKind::Binary(data) => {
                header.kind = Kind::Binary;
                data.clone()
            }
            PartsKind::Event { data, event, id } => {
                header.kind = Kind::Event;
                header.event = event.map(str::to_owned);
                header.id = id.map(str::to_owned);
                Bytes::copy_from_slice(data.as_bytes())
            }
        };
        let header = serde_json::to_vec(&header).expect("a header of strings serializes");
        let mut frame = BytesMut::with_capacity(2 + header.len() + body.len());
        frame.put_u8(BROADCAST);
        frame.put_slice(&header);
        frame.put_u8(b'\n');
        frame.put_slice(&body);
        frame.freeze()
    }
}

impl Request {
    /// The question as one bus message.
    pub fn encode(&self) -> Bytes {
        tagged(REQUEST, self)
    }
}

impl Reply {
    /// The reply as one bus message.
    pub fn encode(&self) -> Bytes {
        tagged(REPLY, self)
    }
}

fn tagged(tag: u8, value: &impl Serialize) -> Bytes {
    let mut frame = vec![tag];
    serde_json::to_writer(&mut frame, value).expect("a frame of strings and numbers serializes");
    Bytes::from(frame)
}

impl Frame {
    /// Reads one bus message.
    ///
    /// ```
    /// use axum_channel_protocol::cluster::{Frame, Reply, Answer};
    /// let reply = Reply { id: 7, from: "n2".into(), answer: Answer::Count(3) };
    /// match Frame::decode(&reply.encode()) {
    ///     Ok(Frame::Reply(decoded)) => assert_eq!(decoded, reply),
    ///     other => panic!("{other:?}"),
    /// }
    /// assert!(Frame::decode(b"B{").is_err());
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let (&tag, rest) = bytes.split_first().ok_or(FrameError("empty"))?;
        match tag {
            BROADCAST => decode_broadcast(rest).map(|e| Frame::Broadcast(Box::new(e))),
            REQUEST => serde_json::from_slice(rest)
                .map(Frame::Request)
                .map_err(|_| FrameError("a malformed request")),
            REPLY => serde_json::from_slice(rest)
                .map(Frame::Reply)
                .map_err(|_| FrameError("a malformed reply")),
            _ => Err(FrameError("an unknown kind")),
        }
    }
}

fn decode_broadcast(bytes: &[u8]) -> Result<Envelope, FrameError> {
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(FrameError("a broadcast without a header line"))?;
    let header: Header = serde_json::from_slice(&bytes[..newline])
        .map_err(|_| FrameError("a malformed broadcast header"))?;
    let body = &bytes[newline + 1..];
    let target = match (header.rooms, header.session) {
        (None, None) => Target::All,
        (Some(rooms), None) => Target::rooms(rooms),
        (None, Some(id)) => Target::Session(id),
        (Some(_), Some(_)) => return Err(FrameError("a broadcast to rooms and a session")),
    };
    let text = || std::str::from_utf8(body).map_err(|_| FrameError("text that is not UTF-8"));
    let mut payload = match header.kind {
        Kind::Json => Payload::json(
            serde_json::from_slice(body).map_err(|_| FrameError("a malformed JSON payload"))?,
        ),
        Kind::Text => {
            text()?;
            Payload::utf8(Bytes::copy_from_slice(body))
        }
        Kind::Binary => Payload::binary(Bytes::copy_from_slice(body)),
        Kind::Event => Payload::event(text()?, header.event, header.id),
    };
    if let Some(event_type) = header.event_type {
        payload = payload.with_event_type(event_type);
    }
    Ok(Envelope {
        origin: header.from,
        target,
        except: header.except,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::WireFormat;
    use serde_json::json;

    fn round_trip(envelope: &Envelope) -> Envelope {
        match Frame::decode(&envelope.encode()) {
            Ok(Frame::Broadcast(decoded)) => *decoded,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_payload_kind_crosses_unchanged() {
        let payloads = [
            Payload::json(json!({"text": "é\n", "n": 1})),
            Payload::text("line\nbreak").with_event_type("said"),
            Payload::binary(vec![0u8, 10, 255]),
            Payload::event("d\ne", Some("tick".into()), Some("7".into())),
        ];
        for payload in payloads {
            let envelope = Envelope {
                origin: "node-1".into(),
                target: Target::rooms(["a".to_string(), "b".to_string(), "a".to_string()]),
                except: vec!["s1".into()],
                payload,
            };
            let decoded = round_trip(&envelope);
            assert_eq!(decoded.origin, "node-1");
            assert_eq!(decoded.target, Target::Rooms(vec!["a".into(), "b".into()]));
            assert_eq!(decoded.except, ["s1"]);
            for format in [
                WireFormat::BrowserChannel,
                WireFormat::SockJs,
                WireFormat::WebSocket,
                WireFormat::EventSource,
            ] {
                assert_eq!(
                    decoded.payload.encode(format),
                    envelope.payload.encode(format),
                    "{format:?}"
                );
            }
        }
    }

    #[test]
    fn targets_cross_unchanged() {
        for target in [Target::All, Target::Session("abc".into())] {
            let envelope = Envelope {
                origin: "n".into(),
                target: target.clone(),
                except: vec![],
                payload: Payload::text("x"),
            };
            assert_eq!(round_trip(&envelope).target, target);
        }
    }

    #[test]
    fn questions_and_replies_cross_unchanged() {
        let request = Request {
            id: u64::MAX,
            from: "n1".into(),
            question: Question::RoomMembers("lobby".into()),
        };
        match Frame::decode(&request.encode()) {
            Ok(Frame::Request(decoded)) => assert_eq!(decoded, request),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn broken_frames_are_refused() {
        for bytes in [
            &b""[..],
            b"X{}",
            b"B",
            b"B{}\n",
            b"B{\"from\":\"n\",\"kind\":\"text\"}\n\xff",
            b"B{\"from\":\"n\",\"kind\":\"json\"}\n{",
            b"B{\"from\":\"n\",\"kind\":\"text\",\"rooms\":[],\"session\":\"s\"}\n",
            b"Q{\"id\":-1}",
        ] {
            assert!(Frame::decode(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn each_member_takes_the_copy_of_its_first_target_room() {
        let envelope = Envelope {
            origin: "n".into(),
            target: Target::rooms(["a".to_string(), "b".to_string(), "c".to_string()]),
            except: vec![],
            payload: Payload::text("x"),
        };
        let rooms = ["a", "b", "c"].map(|r| crate::cluster::topic::Topic::Room(r.into()));
        // A member of b and c: the copy on b is its, the one on c is not.
        let member = ["b", "c"];
        let takes: Vec<bool> = rooms
            .iter()
            .map(|topic| match envelope.audience(topic) {
                Audience::Room { room, not_in } => {
                    member.contains(&room) && !not_in.iter().any(|r| member.contains(&r.as_str()))
                }
                _ => false,
            })
            .collect();
        assert_eq!(takes, [false, true, false]);
        assert_eq!(
            envelope.audience(&crate::cluster::topic::Topic::Room("z".into())),
            Audience::Nobody
        );
    }
}
