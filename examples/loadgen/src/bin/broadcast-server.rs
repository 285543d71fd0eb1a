//! The server of the broadcast benchmark: every session of every transport
//! joins the room `bench`, and `POST /fanout?mode=broadcast|loop` sends the
//! request's body to the room, either as one broadcast (one encoding per
//! wire format) or as a loop of `send` calls (an encoding per member). It
//! answers with what the fan-out did, as JSON. Listens on 127.0.0.1:$PORT
//! (0 picks a free port) and prints `listening on http://ADDRESS`;
//! `MAX_QUEUED_MESSAGES` bounds each WebSocket session's queue;
//! `DEFLATE=on` negotiates permessage-deflate on `/ws` (the chat example's
//! settings: messages from 32 bytes up compressed, each on its own),
//! `DEFLATE=takeover` the same with the server's context takeover; with
//! `REDIS_URL` the node joins the cluster of every node on that Redis; with
//! `HISTORY=1` the room keeps a history (positions, kept broadcasts).

use axum::extract::{Query, State};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use axum_channel::{
    ChannelConfig, ChannelHandle, ChannelLayer, DeflateConfig, EventSourceConfig, HistoryConfig,
    Payload, SockJsConfig, WebSocketConfig,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Instant;

async fn fanout(
    State(channels): State<ChannelHandle>,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> Json<Value> {
    let started = Instant::now();
    let answer = if query.get("mode").map(String::as_str) == Some("loop") {
        // What an app without broadcasts writes: a send per member, each
        // encoding the message for itself.
        let mut reached = 0;
        let mut encoded_bytes = 0;
        for member in channels.sessions() {
            let payload = Payload::text(body.clone());
            if member.send_payload(&payload).refused().is_none() {
                reached += 1;
            }
            encoded_bytes += payload.encoded_bytes();
        }
        json!({"reached": reached, "encodings": reached, "encoded_bytes": encoded_bytes})
    } else {
        let report = match channels
            .broadcast_payload(Payload::text(body))
            .to("bench")
            .send()
            .await
        {
            Ok(report) => report,
            Err(error) => return Json(json!({"error": error.to_string()})),
        };
        json!({
            "reached": report.reached,
            "dropped": report.dropped,
            "encodings": report.encodings,
            "encoded_bytes": report.encoded_bytes,
            "deflated_encodings": report.deflated_encodings,
            "member_deflates": report.member_deflates,
        })
    };
    let mut answer = answer;
    answer["queued_us"] = json!(started.elapsed().as_micros() as u64);
    Json(answer)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let max_queued_messages = std::env::var("MAX_QUEUED_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4096);
    let mut config = ChannelConfig::new();
    if let Ok(url) = std::env::var("REDIS_URL") {
        let adapter = axum_channel_redis::RedisAdapter::connect(
            axum_channel_redis::RedisConfig::new(url).prefix("bench"),
        )
        .await
        .map_err(std::io::Error::other)?;
        config = config.cluster(adapter);
    }
    if std::env::var("HISTORY").is_ok_and(|v| v == "1") {
        config = config.history(HistoryConfig::new());
    }
    let mut websocket = WebSocketConfig::new().max_queued_messages(max_queued_messages);
    let deflate = std::env::var("DEFLATE");
    if matches!(deflate.as_deref(), Ok("on" | "takeover")) {
        websocket = websocket.permessage_deflate(DeflateConfig {
            min_size: 32,
            server_no_context_takeover: deflate.as_deref() == Ok("on"),
            ..DeflateConfig::default()
        });
    }
    let layer = ChannelLayer::new(
        config
            .sockjs("/sockjs", SockJsConfig::new())
            .websocket("/ws", websocket)
            .event_source("/events", EventSourceConfig::new())
            .max_sessions(200_000)
            .on_session(|session| async move {
                let _ = session.join("bench").await;
                session.closed().await;
            }),
    );
    let app = Router::new()
        .route("/fanout", post(fanout))
        .with_state(layer.handle())
        .layer(layer);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
