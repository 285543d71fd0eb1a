//! SockJS payload decoding on any body: `decode_xhr_send`,
//! `decode_jsonp_send` (form and raw), `decode_websocket`. None panics,
//! and they agree where the protocol says they read the same thing.
#![no_main]

use axum_channel_protocol::sockjs::payload::{
    decode_jsonp_send, decode_websocket, decode_xhr_send, WebSocketPayload,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let xhr = decode_xhr_send(data);
    // A raw JSONP body is read exactly like an XHR body.
    assert_eq!(decode_jsonp_send(false, data), xhr);
    let _ = decode_jsonp_send(true, data);

    let text = String::from_utf8_lossy(data);
    let websocket = decode_websocket(&text);
    if text.is_empty() {
        assert_eq!(websocket, WebSocketPayload::Messages(Vec::new()));
    }
    // A body that is a JSON array of messages carries the same messages
    // over a WebSocket.
    if let Ok(messages) = &xhr {
        assert_eq!(websocket, WebSocketPayload::Messages(messages.clone()));
    }
    // A form body `d=<array>` carries what the array carries.
    if let Ok(messages) = &xhr {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("d", &text)
            .finish();
        assert_eq!(
            decode_jsonp_send(true, form.as_bytes()),
            Ok(messages.clone())
        );
    }
});
