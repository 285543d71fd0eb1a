//! Room history and recovery through the library's API: positions in
//! broadcast reports and payloads, replays paced past a session's queue,
//! and no gap or repeat where a replay meets live broadcasts.

use axum_channel::{
    ChannelConfig, EventSourceConfig, HistoryConfig, Payload, Position, WebSocketConfig,
};
use bytes::Bytes;
use channel_tests::clients::{websocket, Ws};
use channel_tests::{within, Streamed, TestServer};
use futures::StreamExt;
use http::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn config(history: HistoryConfig, websocket: WebSocketConfig) -> ChannelConfig {
    ChannelConfig::new()
        .websocket("/ws", websocket)
        .event_source("/events", EventSourceConfig::new())
        .history(history.position_field("pos"))
}

async fn next_json(socket: &mut Ws) -> Value {
    within(async {
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Text(text))) => {
                    return serde_json::from_str(text.as_str()).unwrap()
                }
                Some(Ok(_)) => continue,
                other => panic!("the WebSocket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a message arrived")
}

fn offset(message: &Value) -> u64 {
    let position: Position = message["pos"]
        .as_str()
        .expect("a position")
        .parse()
        .unwrap();
    position.offset
}

#[tokio::test]
async fn a_replay_longer_than_the_session_queue_arrives_whole_and_in_order() {
    // The recovering session's queue holds 50 messages; the replay is 999.
    let mut server = TestServer::start(config(
        HistoryConfig::new().size(2000),
        WebSocketConfig::new().max_queued_messages(50),
    ))
    .await;
    let channels = server.handle.clone();
    let mut first = None;
    for n in 0..1000 {
        let report = channels
            .broadcast(json!({"n": n}))
            .to("r")
            .send()
            .await
            .unwrap();
        assert_eq!(report.positions.len(), 1);
        first.get_or_insert(report.positions[0].1);
    }
    let mut socket = websocket(server.addr, "/ws").await;
    let session = server.next_session().await;
    let since = first.unwrap().to_string();
    let recovering = tokio::spawn(async move {
        let recovery = session
            .join_since("r", &since)
            .announce(|recovered| Payload::json(json!({"joined": recovered})))
            .await
            .expect("joined");
        (recovery, session)
    });
    assert_eq!(next_json(&mut socket).await, json!({"joined": true}));
    for n in 1..1000 {
        let message = next_json(&mut socket).await;
        assert_eq!(message["n"], n);
        assert_eq!(offset(&message), n + 1);
    }
    let (recovery, session) = recovering.await.unwrap();
    assert!(recovery.recovered);
    assert_eq!(recovery.replayed, 999);
    assert!(session.in_room("r"));
}

#[tokio::test]
async fn broadcasts_during_a_recovery_leave_no_gap_and_no_repeat() {
    let mut server = TestServer::start(config(
        HistoryConfig::new().size(5000),
        WebSocketConfig::new(),
    ))
    .await;
    let channels = server.handle.clone();
    let first = channels
        .broadcast(json!({"n": 0}))
        .to("r")
        .send()
        .await
        .unwrap();
    let since = first.positions[0].1.to_string();
    // Broadcasts go on while the session recovers.
    let broadcaster = tokio::spawn({
        let channels = channels.clone();
        async move {
            for n in 1..3000 {
                channels
                    .broadcast(json!({"n": n}))
                    .to("r")
                    .send()
                    .await
                    .unwrap();
                if n % 16 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }
    });
    let mut socket = websocket(server.addr, "/ws").await;
    let session = server.next_session().await;
    let recovery = session.join_since("r", &since).await.expect("joined");
    assert!(recovery.recovered);
    for n in 1..3000 {
        let message = next_json(&mut socket).await;
        assert_eq!(message["n"], n, "in order, nothing missing, nothing twice");
        assert_eq!(offset(&message), n + 1);
    }
    broadcaster.await.unwrap();
}

#[tokio::test]
async fn positions_reach_every_member_and_event_source_ids() {
    let mut server = TestServer::start(config(HistoryConfig::new(), WebSocketConfig::new())).await;
    let channels = server.handle.clone();
    let response = server.send(Method::GET, "/events", &[], Bytes::new()).await;
    let mut events = Streamed::new(response);
    events.read_until("\n").await;
    let listener = server.next_session().await;
    listener.join("a").await.unwrap();
    let mut socket = websocket(server.addr, "/ws").await;
    let member = server.next_session().await;
    member.join("a").await.unwrap();
    member.join("b").await.unwrap();

    let said = Payload::json(json!({"text": "hi"})).with_event_type("said");
    let report = channels
        .broadcast_payload(said)
        .to_rooms(["a", "b"])
        .send()
        .await
        .unwrap();
    // A position in each room; the member of both gets the message once.
    assert_eq!(report.reached, 2);
    // One node: no other node to miss it.
    assert!(!report.at_most_once_elsewhere);
    let rooms: Vec<&str> = report
        .positions
        .iter()
        .map(|(room, _)| room.as_str())
        .collect();
    assert_eq!(rooms, ["a", "b"]);
    let in_a = report.positions[0].1.to_string();
    assert_eq!(
        next_json(&mut socket).await,
        json!({"text": "hi", "pos": in_a})
    );
    let event = events.read_until("\n\n").await;
    assert!(
        event.ends_with(&format!(
            "event: said\nid: {in_a}\ndata: {{\"pos\":\"{in_a}\",\"text\":\"hi\"}}\n\n"
        )),
        "{event:?}"
    );
    // Rooms outside the history's choice get no position.
    let mut server = TestServer::start(config(
        HistoryConfig::new().only(|room| room != "quiet"),
        WebSocketConfig::new(),
    ))
    .await;
    let report = server
        .handle
        .broadcast(json!({}))
        .to("quiet")
        .send()
        .await
        .unwrap();
    assert!(report.positions.is_empty());
    drop(server.next_session());
}

#[tokio::test]
async fn a_member_asking_again_gets_no_replay() {
    let mut server = TestServer::start(config(HistoryConfig::new(), WebSocketConfig::new())).await;
    let channels = server.handle.clone();
    let mut socket = websocket(server.addr, "/ws").await;
    let session = server.next_session().await;
    session.join("r").await.unwrap();
    let first = channels
        .broadcast(json!({"n": 1}))
        .to("r")
        .send()
        .await
        .unwrap();
    channels
        .broadcast(json!({"n": 2}))
        .to("r")
        .send()
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["n"], 1);
    assert_eq!(next_json(&mut socket).await["n"], 2);
    // Already live: replaying would repeat what it has.
    let since = first.positions[0].1.to_string();
    let recovery = session.join_since("r", &since).await.unwrap();
    assert!(!recovery.recovered);
    channels
        .broadcast(json!({"n": 3}))
        .to("r")
        .send()
        .await
        .unwrap();
    assert_eq!(next_json(&mut socket).await["n"], 3);
}
