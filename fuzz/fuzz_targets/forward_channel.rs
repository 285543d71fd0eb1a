//! `decode_forward_channel` on any body, in both modes: it never panics,
//! never returns more maps than allowed, and the bound only ever refuses a
//! request: it never changes what a request decodes to.
#![no_main]

use axum_channel_protocol::browserchannel::{decode_forward_channel, ForwardError};
use libfuzzer_sys::fuzz_target;

/// A bound no body of this target can reach (its bodies are at most a few KiB).
const UNBOUNDED: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the bound (0..=31 maps), the rest is the body.
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let max_maps = usize::from(first & 0x1F);
    for is_json in [false, true] {
        let bounded = decode_forward_channel(is_json, body, max_maps);
        match &bounded {
            Ok(Some(batch)) => {
                assert!(
                    batch.messages.len() <= max_maps,
                    "{} maps",
                    batch.messages.len()
                );
                // A form body carries maps only with a `count` of at least one.
                assert!(is_json || !batch.messages.is_empty());
            }
            Ok(None) => {}
            Err(ForwardError::TooManyMaps { limit }) => assert_eq!(*limit, max_maps),
            Err(ForwardError::BadData(_)) => {}
        }
        let unbounded = decode_forward_channel(is_json, body, UNBOUNDED);
        if bounded.is_ok() {
            assert_eq!(bounded, unbounded);
        }
        match &unbounded {
            Ok(Some(batch)) if batch.messages.len() <= max_maps => assert_eq!(bounded, unbounded),
            Ok(None) => assert_eq!(bounded, unbounded),
            _ => {}
        }
    }
});
