//! Cluster bus messages on any bytes: `Frame::decode` never panics, what
//! it reads encodes back to a frame that reads the same, a log entry that
//! reads encodes back to the same bytes, and a channel name that parses as
//! a topic is that topic's name.
#![no_main]

use axum_channel_protocol::cluster::{entry, Frame, Topic};
use axum_channel_protocol::WireFormat;
use libfuzzer_sys::fuzz_target;

const FORMATS: [WireFormat; 4] = [
    WireFormat::BrowserChannel,
    WireFormat::SockJs,
    WireFormat::WebSocket,
    WireFormat::EventSource,
];

fuzz_target!(|data: &[u8]| {
    match Frame::decode(data) {
        Ok(Frame::Broadcast(envelope)) => match Frame::decode(&envelope.encode()) {
            Ok(Frame::Broadcast(again)) => {
                assert_eq!(again.origin, envelope.origin);
                assert_eq!(again.target, envelope.target);
                assert_eq!(again.except, envelope.except);
                for format in FORMATS {
                    assert_eq!(again.payload.encode(format), envelope.payload.encode(format));
                }
            }
            other => panic!("a broadcast re-read as {other:?}"),
        },
        Ok(Frame::Request(request)) => match Frame::decode(&request.encode()) {
            Ok(Frame::Request(again)) => assert_eq!(again, request),
            other => panic!("a request re-read as {other:?}"),
        },
        Ok(Frame::Reply(reply)) => match Frame::decode(&reply.encode()) {
            Ok(Frame::Reply(again)) => assert_eq!(again, reply),
            other => panic!("a reply re-read as {other:?}"),
        },
        Err(_) => {}
    }

    if let Ok((position, frame)) = entry::decode(data) {
        assert_eq!(entry::encode(position, frame), data);
    }

    if let Some((&split, rest)) = data.split_first() {
        let text = String::from_utf8_lossy(rest);
        let split = (split as usize).min(text.len());
        if text.is_char_boundary(split) {
            let (prefix, channel) = text.split_at(split);
            if let Some(topic) = Topic::parse(prefix, channel) {
                assert_eq!(topic.channel(prefix), channel);
            }
        }
    }
});
