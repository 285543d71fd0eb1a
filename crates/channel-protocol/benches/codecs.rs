//! Criterion benchmarks of the BrowserChannel codecs and state machine.

use axum_channel_protocol::browserchannel::{
    decode_forward_channel, BackChannelEncoder, ForwardBatch, ForwardMessage, Session,
    SessionConfig,
};
use axum_channel_protocol::engine::{Engine, HttpReceivers, Transmit};
use axum_channel_protocol::{json, Payload};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use std::time::Instant;

fn forward_channel(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward_channel");
    let mut form = String::from("count=10&ofs=100");
    for n in 0..10 {
        form.push_str(&format!(
            "&req{n}_JSON=%7B%22op%22%3A%22insert%22%2C%22pos%22%3A{n}%2C%22text%22%3A%22hello%20world%22%7D"
        ));
    }
    group.throughput(Throughput::Elements(10));
    group.bench_function("decode 10 url-encoded JSON maps", |b| {
        b.iter(|| decode_forward_channel(false, black_box(form.as_bytes()), 10_000).unwrap())
    });
    let body = serde_json::to_vec(&json!({
        "ofs": 100,
        "data": (0..10).map(|n| json!({"op": "insert", "pos": n, "text": "hello world"})).collect::<Vec<_>>(),
    }))
    .unwrap();
    group.bench_function("decode 10 JSON-body messages", |b| {
        b.iter(|| decode_forward_channel(true, black_box(&body), 10_000).unwrap())
    });
    group.finish();
}

fn back_channel(c: &mut Criterion) {
    let mut group = c.benchmark_group("back_channel");
    let ascii = json!({"op": "insert", "pos": 12, "text": "hello world", "ok": true});
    let unicode = json!({"op": "insert", "pos": 12, "text": "héllo wörld 日本語 😀"});
    group.bench_function("encode ASCII message", |b| {
        b.iter(|| json::to_ascii_string(black_box(&ascii)))
    });
    group.bench_function("encode non-ASCII message", |b| {
        b.iter(|| json::to_ascii_string(black_box(&unicode)))
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("queue, chunk and acknowledge 100 arrays", |b| {
        b.iter(|| {
            let now = Instant::now();
            let mut session = Session::new(now, "sid", None, Some(0), SessionConfig::default());
            let back = session
                .attach_back_channel(now, BackChannelEncoder::xmlhttp(), true, None)
                .unwrap();
            for _ in 0..100 {
                session.send(now, &Payload::json(ascii.clone())).unwrap();
            }
            let Some(Transmit::Data { bytes, .. }) = session.poll_receiver(now, back) else {
                panic!("a chunk");
            };
            session.acknowledge(now, 100);
            while session.poll_event().is_some() {}
            bytes
        })
    });
    group.finish();
}

fn ordering(c: &mut Criterion) {
    let mut group = c.benchmark_group("order_buffer");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("1000 single-map requests, reversed pairs", |b| {
        b.iter(|| {
            let now = Instant::now();
            let mut session = Session::new(now, "sid", None, Some(0), SessionConfig::default());
            let mut delivered = 0;
            for pair in 0..500u64 {
                for offset in [pair * 2 + 1, pair * 2] {
                    let batch = ForwardBatch {
                        offset,
                        messages: vec![ForwardMessage::Json(json!(offset))],
                    };
                    session.handle_forward(now, None, Some(batch)).unwrap();
                    while session.poll_event().is_some() {
                        delivered += 1;
                    }
                }
            }
            assert_eq!(delivered, 1000);
        })
    });
    group.finish();
}

criterion_group!(benches, forward_channel, back_channel, ordering);
criterion_main!(benches);
