//! `sockjs::path::endpoint` on any path: it never panics, and what it
//! names agrees with the path.
#![no_main]

use axum_channel_protocol::sockjs::path::{endpoint, Endpoint};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = String::from_utf8_lossy(data);
    match endpoint(&path) {
        Endpoint::Welcome => assert!(path.is_empty() || path == "/"),
        Endpoint::Info => assert_eq!(path, "/info"),
        Endpoint::RawWebSocket => assert_eq!(path, "/websocket"),
        Endpoint::Iframe => assert!(path.starts_with("/iframe") && path.ends_with(".html")),
        Endpoint::Transport { session, kind } => {
            // `/<server>/<session>/<transport>`, ids without dots.
            assert!(!session.is_empty() && !session.contains(['.', '/']));
            let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            assert_eq!(segments.len(), 3, "{path:?}");
            assert_eq!(segments[1], session);
            assert!(!segments[0].is_empty() && !segments[0].contains('.'));
            let _ = kind.name();
        }
        Endpoint::NotFound => {}
    }
});
