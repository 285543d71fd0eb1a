//! A client sends 10,000 messages in a burst to an app that awaits the
//! delivery of every echo before it reads the next message. Whatever the
//! transport, every message must come back, once and in order: reading
//! from the client pauses while the app's queue is full, but writes and
//! acknowledgements keep flowing.

use axum_channel::{ChannelConfig, Session, SockJsConfig, WebSocketConfig};
use channel_tests::clients::{BcClient, SockJsXhrClient};
use channel_tests::TestServer;
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const MESSAGES: usize = 10_000;

/// How long the whole burst may take before the test calls it stalled.
const STALLED: Duration = Duration::from_secs(120);

/// The app: echo each message, and wait until the echo has arrived before
/// reading on. Returns how many it echoed.
async fn echo_awaiting_each_delivery(mut session: Session) -> usize {
    let mut echoed = 0;
    while let Some(message) = session.next().await {
        let text = message.into_json().expect("a text message");
        session
            .send(text)
            .timeout(STALLED)
            .await
            .expect("the echo was delivered");
        echoed += 1;
    }
    echoed
}

fn texts() -> Vec<String> {
    (0..MESSAGES).map(|n| format!("message {n}")).collect()
}

fn config() -> ChannelConfig {
    ChannelConfig::new()
        .websocket("/ws", WebSocketConfig::new())
        .sockjs("/sockjs", SockJsConfig::new())
        // A small queue makes the app's back-pressure matter early.
        .max_incoming_messages(64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_burst_to_an_app_that_awaits_deliveries() {
    let mut server = TestServer::start(config()).await;
    let (client, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    let session = server.next_session().await;
    let app = tokio::spawn(echo_awaiting_each_delivery(session));
    let (mut writer, mut reader) = client.split();
    let sender = tokio::spawn(async move {
        for text in texts() {
            writer.feed(WsMessage::text(text)).await.unwrap();
        }
        writer.flush().await.unwrap();
        writer
    });
    let echoes = tokio::time::timeout(STALLED, async {
        let mut echoes = Vec::with_capacity(MESSAGES);
        while echoes.len() < MESSAGES {
            match reader.next().await {
                Some(Ok(WsMessage::Text(text))) => echoes.push(text.as_str().to_owned()),
                Some(Ok(_)) => {}
                other => panic!("connection ended after {} echoes: {other:?}", echoes.len()),
            }
        }
        echoes
    })
    .await
    .expect("every echo arrived");
    assert_eq!(echoes, texts());
    let mut writer = sender.await.unwrap();
    writer.close().await.unwrap();
    assert_eq!(app.await.unwrap(), MESSAGES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockjs_xhr_burst_to_an_app_that_awaits_deliveries() {
    let mut server = TestServer::start(config()).await;
    let (client, mut received) = SockJsXhrClient::open(server.addr, "burst").await;
    let session = server.next_session().await;
    tokio::spawn(echo_awaiting_each_delivery(session));
    let all = texts();
    let echoes = tokio::time::timeout(STALLED, async {
        let sending = async {
            // sockjs-client sends one xhr_send at a time.
            for batch in all.chunks(500) {
                client.send(batch).await;
            }
        };
        let receiving = async {
            let mut echoes = Vec::with_capacity(MESSAGES);
            while echoes.len() < MESSAGES {
                echoes.push(received.recv().await.expect("the session is open"));
            }
            echoes
        };
        let ((), echoes) = tokio::join!(sending, receiving);
        echoes
    })
    .await
    .expect("every echo arrived");
    assert_eq!(echoes, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockjs_websocket_burst_to_an_app_that_awaits_deliveries() {
    let mut server = TestServer::start(config()).await;
    let url = format!("ws://{}/sockjs/000/burst/websocket", server.addr);
    let (client, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (mut writer, mut reader) = client.split();
    let session = server.next_session().await;
    tokio::spawn(echo_awaiting_each_delivery(session));
    let all = texts();
    let frames = all.clone();
    tokio::spawn(async move {
        for text in frames {
            let frame = serde_json::to_string(&[text]).unwrap();
            writer.feed(WsMessage::text(frame)).await.unwrap();
        }
        writer.flush().await.unwrap();
        // Keep the connection open until the test ends.
        std::future::pending::<()>().await;
    });
    let echoes = tokio::time::timeout(STALLED, async {
        let mut echoes = Vec::with_capacity(MESSAGES);
        while echoes.len() < MESSAGES {
            match reader.next().await {
                Some(Ok(WsMessage::Text(frame))) if frame.starts_with('a') => {
                    let messages: Vec<String> = serde_json::from_str(&frame[1..]).unwrap();
                    echoes.extend(messages);
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended after {} echoes: {other:?}", echoes.len()),
            }
        }
        echoes
    })
    .await
    .expect("every echo arrived");
    assert_eq!(echoes, all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browserchannel_burst_to_an_app_that_awaits_deliveries() {
    let mut server = TestServer::start(config()).await;
    let (client, mut received) = BcClient::open(server.addr).await;
    let session = server.next_session().await;
    tokio::spawn(echo_awaiting_each_delivery(session));
    let all = texts();
    let echoes = tokio::time::timeout(STALLED, async {
        let sending = async {
            // The Closure client sends one POST at a time, at most 1,000 maps each.
            for batch in all.chunks(1000) {
                client.send(batch).await;
            }
        };
        let receiving = async {
            let mut echoes = Vec::with_capacity(MESSAGES);
            while echoes.len() < MESSAGES {
                let data = received.recv().await.expect("the session is open");
                echoes.push(data.as_str().expect("a string").to_owned());
            }
            echoes
        };
        let ((), echoes) = tokio::join!(sending, receiving);
        echoes
    })
    .await
    .expect("every echo arrived");
    assert_eq!(echoes, all);
}
