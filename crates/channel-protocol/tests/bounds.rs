//! Property: no sequence of inputs makes a bounded buffer grow past its
//! setting. Whatever the client sends (forward channel batches with any
//! offsets and request numbers, acknowledgements with any AID, pongs that
//! answer nothing), whatever the app sends and however time passes:
//!
//! - an [`OrderBuffer`] holds at most `max_held` early items;
//! - a BrowserChannel session holds at most `max_held_maps` maps and as many
//!   forward channel requests, and at most `max_outgoing_arrays` app arrays;
//! - a SockJS session (over HTTP receivers or one WebSocket) holds at most
//!   `max_queued_messages` messages;
//! - a WebSocket session queues at most `max_queued_messages` messages and
//!   as many pings (one at least, for the automatic ping);
//! - an EventSource session queues at most `max_queued_events` events.
//!
//! And in bytes, whatever the sizes of the app's messages and of the
//! client's maps:
//!
//! - a [`WeightedOrderBuffer`] holds at most `max_weight`, and says what
//!   it holds;
//! - every engine's queue for the peer (`max_queued_bytes`) refuses a
//!   message exactly when it would take the queue past the bound while
//!   something waits, so it holds at most the bound or one larger message
//!   (BrowserChannel: plus its control arrays); its count of queued bytes
//!   goes up by what each accepted message weighs, and back to nothing
//!   once the queue is drained, so a session whose peer read everything
//!   can send again;
//! - a BrowserChannel session holds at most `max_held_bytes` of maps, and a
//!   refused request leaves it as it was.

use axum_channel_protocol::browserchannel::{
    self, BackChannelEncoder, ForwardBatch, ForwardMessage,
};
use axum_channel_protocol::engine::{Engine, HttpReceivers, ReceiverId, Ticket};
use axum_channel_protocol::payload::WireFormat;
use axum_channel_protocol::sockjs::{self, Attach, ReceiverEncoding, ReceiverKind};
use axum_channel_protocol::websocket::{self, Framed, Incoming};
use axum_channel_protocol::{
    event_stream, CloseReason, OrderBuffer, Payload, Placement, SendError, WeightedOrderBuffer,
};
use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A sequence number: near the expected one (behind, at, ahead), near the
/// end of the number space, or anything.
#[derive(Debug, Clone, Copy)]
enum Number {
    Near(i64),
    NearEnd(u64),
    Any(u64),
}

impl Number {
    fn resolve(self, base: u64) -> u64 {
        match self {
            Number::Near(delta) => base.saturating_add_signed(delta),
            Number::NearEnd(back) => u64::MAX - back,
            Number::Any(n) => n,
        }
    }
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        6 => (-4i64..12).prop_map(Number::Near),
        1 => (0u64..4).prop_map(Number::NearEnd),
        1 => any::<u64>().prop_map(Number::Any),
    ]
}

fn advance() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..2_000).prop_map(Duration::from_millis),
        (0u64..120).prop_map(Duration::from_secs),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_order_buffer_holds_at_most_its_bound(
        max_held in 0usize..6,
        first in prop_oneof![0u64..100, (0u64..4).prop_map(|back| u64::MAX - back)],
        offers in prop::collection::vec(number(), 0..64),
    ) {
        let mut buffer = OrderBuffer::new(first, max_held);
        let mut released = Vec::new();
        for offer in offers {
            let seq = offer.resolve(buffer.next_expected());
            let _ = buffer.offer(seq, seq, &mut released);
            prop_assert!(buffer.held() <= max_held);
        }
        // Released in order, each once.
        prop_assert!(released.windows(2).all(|pair| pair[1] == pair[0] + 1));
    }
}

#[derive(Debug, Clone)]
enum BcOp {
    Forward {
        rid: Option<Number>,
        offset: Number,
        maps: Option<usize>,
    },
    Terminate(Option<Number>),
    Send,
    Acknowledge(i64),
    AttachBackChannel {
        chunked: bool,
    },
    PollTransmit,
    DetachBackChannel,
    Backpressure(bool),
    Wait(Duration),
}

fn bc_op() -> impl Strategy<Value = BcOp> {
    prop_oneof![
        4 => (prop::option::of(number()), number(), prop::option::of(0usize..6))
            .prop_map(|(rid, offset, maps)| BcOp::Forward { rid, offset, maps }),
        1 => prop::option::of(number()).prop_map(BcOp::Terminate),
        4 => Just(BcOp::Send),
        2 => prop_oneof![-2i64..8, any::<i64>()].prop_map(BcOp::Acknowledge),
        1 => any::<bool>().prop_map(|chunked| BcOp::AttachBackChannel { chunked }),
        2 => Just(BcOp::PollTransmit),
        1 => Just(BcOp::DetachBackChannel),
        1 => any::<bool>().prop_map(BcOp::Backpressure),
        1 => advance().prop_map(BcOp::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_browserchannel_session_holds_at_most_its_bounds(
        max_held_maps in 0usize..4,
        max_outgoing_arrays in 0usize..4,
        first_request in prop::option::of(number()),
        ops in prop::collection::vec(bc_op(), 0..64),
    ) {
        let config = browserchannel::SessionConfig {
            max_held_maps,
            max_outgoing_arrays,
            ..browserchannel::SessionConfig::default()
        };
        let mut now = Instant::now();
        let first_request = first_request.map(|rid| rid.resolve(1000));
        let mut session = browserchannel::Session::new(now, "s", None, first_request, config);
        let mut next_rid = first_request.unwrap_or(0);
        let mut next_map = 0u64;
        let mut back_channel = None;
        for op in ops {
            match op {
                BcOp::Forward { rid, offset, maps } => {
                    let rid = rid.map(|rid| rid.resolve(next_rid));
                    let batch = maps.map(|maps| {
                        let offset = offset.resolve(next_map);
                        ForwardBatch {
                            offset,
                            messages: (0..maps).map(|i| ForwardMessage::Json(json!(i))).collect(),
                        }
                    });
                    let held = session.held_maps();
                    if session.handle_forward(now, rid, batch).is_err() {
                        // A refused request changes nothing.
                        prop_assert_eq!(session.held_maps(), held);
                    } else if let Some(rid) = rid {
                        next_rid = next_rid.max(rid.saturating_add(1));
                    }
                }
                BcOp::Terminate(rid) => {
                    let _ = session.terminate(now, rid.map(|rid| rid.resolve(next_rid)));
                }
                BcOp::Send => {
                    let _ = session.send(now, &Payload::text("m"));
                }
                BcOp::Acknowledge(aid) => session.acknowledge(now, aid),
                BcOp::AttachBackChannel { chunked } => {
                    back_channel = session.attach_back_channel(now, BackChannelEncoder::xmlhttp(), chunked, None);
                }
                BcOp::PollTransmit => {
                    if let Some(id) = back_channel {
                        session.poll_receiver(now, id);
                    }
                }
                BcOp::DetachBackChannel => {
                    if let Some(id) = back_channel.take() {
                        session.detach_back_channel(now, id);
                    }
                }
                BcOp::Backpressure(blocked) => session.set_backpressure(now, blocked),
                BcOp::Wait(duration) => {
                    now += duration;
                    session.handle_timeout(now);
                }
            }
            while let Some(event) = session.poll_event() {
                if let axum_channel_protocol::Event::Message(_) = event {
                    next_map += 1;
                }
            }
            prop_assert!(session.held_maps() <= 2 * max_held_maps, "{} maps held", session.held_maps());
            prop_assert!(session.outstanding_app_arrays() <= max_outgoing_arrays);
        }
    }
}

#[derive(Debug, Clone)]
enum SockJsOp {
    Send,
    Attach { polling: bool, websocket: bool },
    PollTransmit,
    Detach,
    Messages(usize),
    Close,
    Wait(Duration),
}

fn sockjs_op() -> impl Strategy<Value = SockJsOp> {
    prop_oneof![
        6 => Just(SockJsOp::Send),
        2 => (any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(polling, websocket)| SockJsOp::Attach { polling, websocket }),
        3 => Just(SockJsOp::PollTransmit),
        1 => Just(SockJsOp::Detach),
        1 => (0usize..4).prop_map(SockJsOp::Messages),
        1 => Just(SockJsOp::Close),
        1 => advance().prop_map(SockJsOp::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_sockjs_session_holds_at_most_its_bound(
        max_queued_messages in 0usize..5,
        response_limit in 0usize..64,
        ops in prop::collection::vec(sockjs_op(), 0..64),
    ) {
        let config = sockjs::SessionConfig {
            max_queued_messages,
            response_limit,
            ..sockjs::SessionConfig::default()
        };
        let mut now = Instant::now();
        let mut session = sockjs::Session::new(now, config);
        let mut receiver = None;
        for op in ops {
            match op {
                SockJsOp::Send => {
                    let _ = session.send(now, &Payload::text("m"));
                }
                SockJsOp::Attach { polling, websocket } => {
                    let kind = if websocket {
                        ReceiverKind::WebSocket
                    } else {
                        ReceiverKind::Http {
                            encoding: ReceiverEncoding::Xhr,
                            prelude: String::new(),
                            polling,
                        }
                    };
                    if let Attach::Attached { id, .. } = session.attach_receiver(now, kind) {
                        receiver = Some(id);
                    }
                }
                SockJsOp::PollTransmit => {
                    let id = receiver.unwrap_or(ReceiverId(0));
                    session.poll_receiver(now, id);
                }
                SockJsOp::Detach => {
                    if let Some(id) = receiver.take() {
                        session.detach_receiver(now, id, CloseReason::ConnectionLost);
                    }
                }
                SockJsOp::Messages(count) => {
                    session.handle_messages(now, vec!["x".to_owned(); count]);
                }
                SockJsOp::Close => session.close(now, CloseReason::Closed(String::new())),
                SockJsOp::Wait(duration) => {
                    now += duration;
                    session.handle_timeout(now);
                }
            }
            while session.poll_event().is_some() {}
            prop_assert!(session.pending_messages() <= max_queued_messages);
        }
    }

    #[test]
    fn a_sockjs_websocket_session_holds_at_most_its_bound(
        max_queued_messages in 0usize..5,
        ops in prop::collection::vec(ws_op(), 0..64),
    ) {
        let config = sockjs::SessionConfig {
            max_queued_messages,
            ..sockjs::SessionConfig::default()
        };
        let mut now = Instant::now();
        let mut session = sockjs::WebSocketSession::new(now, config);
        for op in ops {
            match op {
                WsOp::Send => {
                    let _ = session.send(now, &Payload::text("m"));
                }
                WsOp::Ping => {
                    let _ = session.ping(now, Bytes::new());
                }
                WsOp::PollFrame => {
                    session.poll_frame(now);
                }
                WsOp::Incoming(incoming) => session.handle_incoming(now, incoming),
                WsOp::Close => session.close(now, CloseReason::Closed(String::new())),
                WsOp::AppIdle => session.app_idle(now),
                WsOp::Wait(duration) => {
                    now += duration;
                    session.handle_timeout(now);
                }
            }
            while session.poll_event().is_some() {}
            prop_assert!(session.pending_messages() <= max_queued_messages);
        }
    }
}

#[derive(Debug, Clone)]
enum WsOp {
    Send,
    Ping,
    PollFrame,
    Incoming(Incoming),
    Close,
    AppIdle,
    Wait(Duration),
}

fn incoming() -> impl Strategy<Value = Incoming> {
    prop_oneof![
        4 => prop_oneof![Just(&b""[..]), Just(&b"bogus"[..])]
            .prop_map(|payload| Incoming::Pong(Bytes::from_static(payload))),
        2 => Just(Incoming::Text("[\"x\"]".into())),
        1 => Just(Incoming::Ping),
        1 => Just(Incoming::Failed { code: 1007, reason: "bad".into() }),
        1 => Just(Incoming::Close { code: Some(1000), reason: String::new() }),
    ]
}

fn ws_op() -> impl Strategy<Value = WsOp> {
    prop_oneof![
        6 => Just(WsOp::Send),
        3 => Just(WsOp::Ping),
        4 => Just(WsOp::PollFrame),
        3 => incoming().prop_map(WsOp::Incoming),
        1 => Just(WsOp::Close),
        1 => Just(WsOp::AppIdle),
        3 => advance().prop_map(WsOp::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_websocket_session_queues_at_most_its_bound(
        max_queued_messages in 0usize..5,
        ping_every in prop::option::of(1u64..30),
        ops in prop::collection::vec(ws_op(), 0..96),
    ) {
        let config = websocket::SessionConfig {
            max_queued_messages,
            ping_interval: ping_every.map(Duration::from_secs),
            ..websocket::SessionConfig::default()
        };
        let mut now = Instant::now();
        let mut session = websocket::Session::new(now, config);
        for op in ops {
            match op {
                WsOp::Send => {
                    let _ = session.send(now, &Payload::text("m"));
                }
                WsOp::Ping => {
                    let _ = session.ping(now, Bytes::from_static(b"p"));
                }
                WsOp::PollFrame => {
                    session.poll_transmit(now);
                }
                WsOp::Incoming(incoming) => session.handle_incoming(now, incoming),
                WsOp::Close => session.close(now, CloseReason::Closed(String::new())),
                WsOp::AppIdle => session.app_idle(now),
                WsOp::Wait(duration) => {
                    now += duration;
                    session.handle_timeout(now);
                }
            }
            while session.poll_event().is_some() {}
            prop_assert!(session.queued_messages() <= max_queued_messages);
            prop_assert!(
                session.queued_pings() <= max_queued_messages.max(1),
                "{} pings queued", session.queued_pings()
            );
        }
    }
}

#[derive(Debug, Clone)]
enum EsOp {
    Send,
    Ping,
    PollTransmit,
    Close,
    Wait(Duration),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_event_source_session_queues_at_most_its_bound(
        max_queued_events in 0usize..5,
        ping_every in prop::option::of(1u64..30),
        ops in prop::collection::vec(prop_oneof![
            6 => Just(EsOp::Send),
            2 => Just(EsOp::Ping),
            3 => Just(EsOp::PollTransmit),
            1 => Just(EsOp::Close),
            2 => advance().prop_map(EsOp::Wait),
        ], 0..64),
    ) {
        let config = event_stream::SessionConfig {
            max_queued_events,
            ping_interval: ping_every.map(Duration::from_secs),
            ..event_stream::SessionConfig::default()
        };
        let mut now = Instant::now();
        let mut session = event_stream::Session::new(now, config);
        let stream = session.stream();
        for op in ops {
            match op {
                EsOp::Send => {
                    let _ = session.send(now, &Payload::text("m"));
                }
                EsOp::Ping => {
                    let _ = session.ping(now, Bytes::from_static(b"p"));
                }
                EsOp::PollTransmit => {
                    session.poll_receiver(now, stream);
                }
                EsOp::Close => session.close(now, CloseReason::Closed(String::new())),
                EsOp::Wait(duration) => {
                    now += duration;
                    session.handle_timeout(now);
                }
            }
            while session.poll_event().is_some() {}
            prop_assert!(session.queued_events() <= max_queued_events);
        }
    }
}

/// The byte bound's rule for one message (or ping) of `len` bytes, offered
/// to a queue that held `before` bytes and was `empty` of messages: it is
/// refused exactly when it would take the queue past `bound` while
/// something waits, and the count moves by what was accepted.
fn obeys_byte_bound(
    result: &Result<Ticket, SendError>,
    before: usize,
    after: usize,
    empty: bool,
    len: usize,
    bound: usize,
) -> Result<(), TestCaseError> {
    match result {
        Ok(_) => {
            prop_assert!(
                empty || before + len <= bound,
                "{before} + {len} bytes over {bound}"
            );
            prop_assert_eq!(after, before + len);
        }
        Err(SendError::QueueTooLarge { limit_bytes }) => {
            prop_assert_eq!(*limit_bytes, bound);
            prop_assert!(
                !empty && before + len > bound,
                "{before} + {len} bytes refused under {bound}"
            );
            prop_assert_eq!(after, before);
        }
        Err(_) => prop_assert_eq!(after, before),
    }
    Ok(())
}

/// A text message of `len` bytes.
fn text(len: usize) -> Payload {
    Payload::text("m".repeat(len))
}

/// The bytes `payload` takes in `format`, as the queue counts them.
fn encoded(payload: &Payload, format: WireFormat) -> usize {
    payload.encode(format).map_or(0, |bytes| bytes.len())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_weighted_order_buffer_holds_at_most_its_weight(
        max_held in 0usize..6,
        max_weight in 0usize..40,
        offers in prop::collection::vec((number(), 0usize..24), 0..64),
    ) {
        let mut buffer = WeightedOrderBuffer::new(0, max_held, max_weight);
        // What the buffer should hold: each early item's weight.
        let mut held = BTreeMap::new();
        let mut released = Vec::new();
        for (offer, weight) in offers {
            let next = buffer.next_expected();
            let seq = offer.resolve(next);
            let before = buffer.held_weight();
            let predicted = buffer.check(seq, weight);
            let result = buffer.offer(seq, seq, weight, &mut released);
            prop_assert_eq!(&result, &predicted);
            match result {
                Ok(Placement::Accepted) if seq != next => {
                    held.insert(seq, weight);
                }
                Ok(_) => {}
                Err(_) => prop_assert_eq!(buffer.held_weight(), before),
            }
            for seq in released.drain(..) {
                held.remove(&seq);
            }
            prop_assert!(buffer.held_weight() <= max_weight);
            prop_assert_eq!(buffer.held_weight(), held.values().sum::<usize>());
            prop_assert_eq!(buffer.held(), held.len());
        }
    }

    #[test]
    fn a_browserchannel_session_holds_at_most_its_byte_bounds(
        max_queued_bytes in 0usize..64,
        max_held_bytes in 0usize..32,
        first_request in prop::option::of(number()),
        ops in prop::collection::vec(bc_op(), 0..64),
        sizes in prop::collection::vec(0usize..24, 64),
    ) {
        let config = browserchannel::SessionConfig {
            max_queued_bytes,
            max_held_bytes,
            ..browserchannel::SessionConfig::default()
        };
        let mut now = Instant::now();
        let first_request = first_request.map(|rid| rid.resolve(1000));
        let mut session = browserchannel::Session::new(now, "s", None, first_request, config);
        let mut next_rid = first_request.unwrap_or(0);
        let mut next_map = 0u64;
        let mut back_channel = None;
        let mut largest = 0;
        for (op, size) in ops.into_iter().zip(sizes) {
            match op {
                BcOp::Forward { rid, offset, maps } => {
                    let rid = rid.map(|rid| rid.resolve(next_rid));
                    // Maps of `size` bytes each, as the session weighs them.
                    let batch = maps.map(|maps| ForwardBatch {
                        offset: offset.resolve(next_map),
                        messages: (0..maps).map(|_| ForwardMessage::Json(json!("x".repeat(size)))).collect(),
                    });
                    let (held, held_bytes) = (session.held_maps(), session.held_bytes());
                    if session.handle_forward(now, rid, batch).is_err() {
                        // A refused request changes nothing.
                        prop_assert_eq!(session.held_maps(), held);
                        prop_assert_eq!(session.held_bytes(), held_bytes);
                    } else if let Some(rid) = rid {
                        next_rid = next_rid.max(rid.saturating_add(1));
                    }
                }
                BcOp::Terminate(rid) => {
                    let _ = session.terminate(now, rid.map(|rid| rid.resolve(next_rid)));
                }
                BcOp::Send => {
                    let payload = text(size);
                    let len = encoded(&payload, WireFormat::BrowserChannel);
                    let (before, empty) = (session.queued_bytes(), session.outstanding_app_arrays() == 0);
                    let result = session.send(now, &payload);
                    obeys_byte_bound(&result, before, session.queued_bytes(), empty, len, max_queued_bytes)?;
                    if result.is_ok() {
                        largest = largest.max(len);
                    }
                }
                BcOp::Acknowledge(aid) => session.acknowledge(now, aid),
                BcOp::AttachBackChannel { chunked } => {
                    back_channel = session.attach_back_channel(now, BackChannelEncoder::xmlhttp(), chunked, None);
                }
                BcOp::PollTransmit => {
                    if let Some(id) = back_channel {
                        session.poll_receiver(now, id);
                    }
                }
                BcOp::DetachBackChannel => {
                    if let Some(id) = back_channel.take() {
                        session.detach_back_channel(now, id);
                    }
                }
                BcOp::Backpressure(blocked) => session.set_backpressure(now, blocked),
                BcOp::Wait(duration) => {
                    now += duration;
                    session.handle_timeout(now);
                }
            }
            while let Some(event) = session.poll_event() {
                if let axum_channel_protocol::Event::Message(_) = event {
                    next_map += 1;
                }
            }
            prop_assert!(session.held_bytes() <= max_held_bytes, "{} bytes held", session.held_bytes());
            // Control arrays (`c`, `noop`, `stop`) are never refused: at
            // most 18 bytes each here.
            let control = session.outstanding_arrays() - session.outstanding_app_arrays();
            prop_assert!(
                session.queued_bytes() <= max_queued_bytes.max(largest) + 18 * control,
                "{} bytes queued", session.queued_bytes()
            );
            if session.outstanding_arrays() == 0 {
                prop_assert_eq!(session.queued_bytes(), 0);
            }
        }
    }

    #[test]
    fn a_sockjs_session_holds_at_most_its_byte_bound(
        max_queued_bytes in 0usize..48,
        response_limit in 0usize..64,
        ops in prop::collection::vec(sockjs_op(), 0..64),
        sizes in prop::collection::vec(0usize..24, 64),
    ) {
        let config = sockjs::SessionConfig {
            max_queued_bytes,
            response_limit,
            ..sockjs::SessionConfig::default()
        };
        let mut now = Instant::now();
        let mut session = sockjs::Session::new(now, config);
        let mut receiver = None;
        let mut largest = 0;
        for (op, size) in ops.into_iter().zip(sizes) {
            match op {
                SockJsOp::Send => {
                    let payload = text(size);
                    let len = encoded(&payload, WireFormat::SockJs);
                    let (before, empty) = (session.queued_bytes(), session.pending_messages() == 0);
                    let result = session.send(now, &payload);
                    obeys_byte_bound(&result, before, session.queued_bytes(), empty, len, max_queued_bytes)?;
                    if result.is_ok() {
                        largest = largest.max(len);
                    }
                }
                SockJsOp::Attach { polling, websocket } => {
                    let kind = if websocket {
                        ReceiverKind::WebSocket
                    } else {
                        ReceiverKind::Http {
                            encoding: ReceiverEncoding::Xhr,
                            prelude: String::new(),
                            polling,
                        }
                    };
                    if let Attach::Attached { id, .. } = session.attach_receiver(now, kind) {
                        receiver = Some(id);
                    }
                }
                SockJsOp::PollTransmit => {
                    let id = receiver.unwrap_or(ReceiverId(0));
                    session.poll_receiver(now, id);
                }
                SockJsOp::Detach => {
                    if let Some(id) = receiver.take() {
                        session.detach_receiver(now, id, CloseReason::ConnectionLost);
                    }
                }
                SockJsOp::Messages(count) => {
                    session.handle_messages(now, vec!["x".to_owned(); count]);
                }
                SockJsOp::Close => session.close(now, CloseReason::Closed(String::new())),
                SockJsOp::Wait(duration) => {
                    now += duration;
                    session.handle_timeout(now);
                }
            }
            while session.poll_event().is_some() {}
            prop_assert!(session.queued_bytes() <= max_queued_bytes.max(largest));
            prop_assert_eq!(session.pending_messages() == 0, session.queued_bytes() == 0);
        }
    }

    #[test]
    fn a_sockjs_websocket_session_holds_at_most_its_byte_bound(
        max_queued_bytes in 0usize..48,
        ops in prop::collection::vec(ws_op(), 0..64),
        sizes in prop::collection::vec(0usize..24, 64),
    ) {
        let config = sockjs::SessionConfig {
            max_queued_bytes,
            ..sockjs::SessionConfig::default()
        };
        let mut now = Instant::now();
        let mut session = sockjs::WebSocketSession::new(now, config);
        let mut largest = 0;
        for (op, size) in ops.into_iter().zip(sizes) {
            match op {
                WsOp::Send => {
                    let payload = text(size);
                    let len = encoded(&payload, WireFormat::SockJs);
                    let (before, empty) = (session.queued_bytes(), session.pending_messages() == 0);
                    let result = session.send(now, &payload);
                    obeys_byte_bound(&result, before, session.queued_bytes(), empty, len, max_queued_bytes)?;
                    if result.is_ok() {
                        largest = largest.max(len);
                    }
                }
                WsOp::Ping => {
                    let _ = session.ping(now, Bytes::new());
                }
                WsOp::PollFrame => {
                    session.poll_frame(now);
                }
                WsOp::Incoming(incoming) => session.handle_incoming(now, incoming),
                WsOp::Close => session.close(now, CloseReason::Closed(String::new())),
                WsOp::AppIdle => session.app_idle(now),
                WsOp::Wait(duration) => {
                    now += duration;
                    session.handle_timeout(now);
                }
            }
            while session.poll_event().is_some() {}
            prop_assert!(session.queued_bytes() <= max_queued_bytes.max(largest));
            prop_assert_eq!(session.pending_messages() == 0, session.queued_bytes() == 0);
        }
    }

    #[test]
    fn a_websocket_session_queues_at_most_its_byte_bound(
        max_queued_bytes in 0usize..48,
        ping_every in prop::option::of(1u64..30),
        ops in prop::collection::vec(ws_op(), 0..96),
        sizes in prop::collection::vec(0usize..24, 96),
    ) {
        let config = websocket::SessionConfig {
            max_queued_bytes,
            ping_interval: ping_every.map(Duration::from_secs),
            ..websocket::SessionConfig::default()
        };
        let mut now = Instant::now();
        let mut session = websocket::Session::new(now, config);
        let mut largest = 0;
        for (op, size) in ops.into_iter().zip(sizes) {
            match op {
                WsOp::Send => {
                    let (before, empty) = (session.queued_bytes(), session.queued_bytes() == 0);
                    let result = session.send(now, &text(size));
                    obeys_byte_bound(&result, before, session.queued_bytes(), empty, size, max_queued_bytes)?;
                    if result.is_ok() {
                        largest = largest.max(size);
                    }
                }
                WsOp::Ping => {
                    // Pings hold their payload until their pong.
                    let (before, empty) = (session.queued_bytes(), session.queued_bytes() == 0);
                    let result = session.ping(now, Bytes::from(vec![b'p'; size]));
                    obeys_byte_bound(&result, before, session.queued_bytes(), empty, size, max_queued_bytes)?;
                    if result.is_ok() {
                        largest = largest.max(size);
                    }
                }
                WsOp::PollFrame => {
                    session.poll_transmit(now);
                }
                WsOp::Incoming(incoming) => session.handle_incoming(now, incoming),
                WsOp::Close => session.close(now, CloseReason::Closed(String::new())),
                WsOp::AppIdle => session.app_idle(now),
                WsOp::Wait(duration) => {
                    now += duration;
                    session.handle_timeout(now);
                }
            }
            while session.poll_event().is_some() {}
            prop_assert!(session.queued_bytes() <= max_queued_bytes.max(largest));
            if session.queued_messages() == 0 && session.queued_pings() == 0 {
                prop_assert_eq!(session.queued_bytes(), 0);
            }
        }
    }

    #[test]
    fn an_event_source_session_queues_at_most_its_byte_bound(
        max_queued_bytes in 0usize..64,
        ping_every in prop::option::of(1u64..30),
        ops in prop::collection::vec(prop_oneof![
            6 => Just(EsOp::Send),
            2 => Just(EsOp::Ping),
            3 => Just(EsOp::PollTransmit),
            1 => Just(EsOp::Close),
            2 => advance().prop_map(EsOp::Wait),
        ], 0..64),
        sizes in prop::collection::vec(0usize..24, 64),
    ) {
        let config = event_stream::SessionConfig {
            max_queued_bytes,
            ping_interval: ping_every.map(Duration::from_secs),
            ..event_stream::SessionConfig::default()
        };
        let mut now = Instant::now();
        let mut session = event_stream::Session::new(now, config);
        let stream = session.stream();
        let mut largest = 0;
        for (op, size) in ops.into_iter().zip(sizes) {
            let (before, empty) = (session.queued_bytes(), session.queued_events() == 0);
            match op {
                EsOp::Send => {
                    let payload = text(size);
                    let len = encoded(&payload, WireFormat::EventSource);
                    let result = session.send(now, &payload);
                    obeys_byte_bound(&result, before, session.queued_bytes(), empty, len, max_queued_bytes)?;
                    if result.is_ok() {
                        largest = largest.max(len);
                    }
                }
                EsOp::Ping => {
                    let comment = "p".repeat(size);
                    let len = event_stream::encode_comment(&comment).len();
                    let result = session.ping(now, Bytes::from(comment));
                    obeys_byte_bound(&result, before, session.queued_bytes(), empty, len, max_queued_bytes)?;
                    if result.is_ok() {
                        largest = largest.max(len);
                    }
                }
                EsOp::PollTransmit => {
                    session.poll_receiver(now, stream);
                }
                EsOp::Close => session.close(now, CloseReason::Closed(String::new())),
                EsOp::Wait(duration) => {
                    now += duration;
                    session.handle_timeout(now);
                }
            }
            while session.poll_event().is_some() {}
            prop_assert!(session.queued_bytes() <= max_queued_bytes.max(largest));
            prop_assert_eq!(session.queued_events() == 0, session.queued_bytes() == 0);
        }
    }
}
