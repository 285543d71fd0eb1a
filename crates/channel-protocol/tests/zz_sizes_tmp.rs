use channel_protocol::{browserchannel, event_stream, sockjs, websocket};
use std::mem::size_of;
#[test]
fn print_sizes() {
    println!(
        "SIZES bc={} sockjs={} sockjs_ws={} ws={} es={} optinstant={}",
        size_of::<browserchannel::Session>(),
        size_of::<sockjs::Session>(),
        size_of::<sockjs::WebSocketSession>(),
        size_of::<websocket::Session>(),
        size_of::<event_stream::Session>(),
        size_of::<Option<std::time::Instant>>()
    );
}
