//! The bare baseline of the WebSocket fan-out benchmark: a plain
//! tokio-tungstenite server, one task per connection, each with a bounded
//! queue of pre-built messages. `POST /fanout` builds the request's body
//! into one `Message` and hands a clone (a reference count, no copy) to
//! every connection's queue; each task writes what its queue holds and
//! flushes once. No layer, no sessions, no rooms.
//!
//! Tungstenite reads into a 4 KiB buffer (`BARE_READ_BUFFER` sets another
//! size): with its default of 128 KiB, every read attempt, one per message
//! written here, costs several microseconds more, which would flatter the
//! layer. Listens on 127.0.0.1:$PORT (0 picks a free port) and prints
//! `listening on http://ADDRESS`. A connection whose first bytes are `POST` is served
//! as HTTP (the fan-out request); any other is a WebSocket. The answer is
//! the JSON the layer's `broadcast-server` gives: `reached`, `dropped` and
//! `queued_us`, the time from the request to every message queued.

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Messages one connection may have queued (the layer's default bound).
const QUEUE: usize = 4096;

#[derive(Default)]
struct Members {
    queues: Mutex<HashMap<u64, mpsc::Sender<Message>>>,
    next: AtomicU64,
}

async fn fanout(State(members): State<Arc<Members>>, body: String) -> Json<Value> {
    let started = Instant::now();
    let message = Message::Text(Utf8Bytes::from(body));
    let (mut reached, mut dropped) = (0, 0);
    for queue in members.queues.lock().unwrap().values() {
        match queue.try_send(message.clone()) {
            Ok(()) => reached += 1,
            Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
    Json(json!({
        "reached": reached,
        "dropped": dropped,
        "encodings": 1,
        "queued_us": started.elapsed().as_micros() as u64,
    }))
}

/// One member: writes what its queue holds, reads until the peer leaves.
async fn member(stream: tokio::net::TcpStream, members: Arc<Members>, config: WebSocketConfig) {
    let Ok(mut socket) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
    else {
        return;
    };
    let id = members.next.fetch_add(1, Ordering::Relaxed);
    let (queue, mut queued) = mpsc::channel(QUEUE);
    members.queues.lock().unwrap().insert(id, queue);
    loop {
        tokio::select! {
            message = queued.recv() => {
                let Some(message) = message else { break };
                if socket.feed(message).await.is_err() {
                    break;
                }
                // Whatever else waits goes out with the same flush.
                let mut failed = false;
                while let Ok(message) = queued.try_recv() {
                    if socket.feed(message).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed || socket.flush().await.is_err() {
                    break;
                }
            }
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    members.queues.lock().unwrap().remove(&id);
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let read_buffer = std::env::var("BARE_READ_BUFFER")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4096);
    let config = WebSocketConfig::default().read_buffer_size(read_buffer);
    let members = Arc::new(Members::default());
    let app = Router::new()
        .route("/fanout", post(fanout))
        .with_state(members.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let (members, app) = (members.clone(), app.clone());
        tokio::spawn(async move {
            let mut first = [0u8; 4];
            if tcp.peek(&mut first).await.is_ok() && &first == b"POST" {
                let service = TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            } else {
                member(tcp, members, config).await;
            }
        });
    }
}
