//! An idle session is paid for in bytes: every engine stays at or below
//! its size on 64-bit targets (with its byte bounds, a bound in its config
//! and a count of queued bytes beside it, BrowserChannel two, and the close
//! reason boxed in its `Outbox`).
//! Growing past a bound should be a choice made on purpose, with the bound
//! raised here and in axum-channel's `Live` size test.
#![cfg(target_pointer_width = "64")]

use axum_channel_protocol::{browserchannel, event_stream, sockjs, websocket};
use std::mem::size_of;

#[test]
fn every_engine_stays_within_its_bound() {
    let sizes = [
        (
            "browserchannel::Session",
            size_of::<browserchannel::Session>(),
            440,
        ),
        ("sockjs::Session", size_of::<sockjs::Session>(), 328),
        (
            "sockjs::WebSocketSession",
            size_of::<sockjs::WebSocketSession>(),
            400,
        ),
        ("websocket::Session", size_of::<websocket::Session>(), 304),
        (
            "event_stream::Session",
            size_of::<event_stream::Session>(),
            176,
        ),
    ];
    for (engine, size, bound) in sizes {
        println!("{engine}: {size} bytes (bound {bound})");
        assert!(size <= bound, "{engine} takes {size} bytes, over {bound}");
    }
}
