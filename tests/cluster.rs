//! Two nodes joined through a real `redis-server`: rooms, broadcasts,
//! counts and lookups across them, and what happens when Redis goes away.

use axum_channel::cluster::SessionLookup;
use axum_channel::{BroadcastError, ChannelConfig, HistoryConfig, Session, WebSocketConfig};
use axum_channel_redis::{RedisAdapter, RedisConfig};
use channel_tests::clients::{websocket, Ws};
use channel_tests::redis::RedisServer;
use channel_tests::{within, TestServer};
use futures::StreamExt;
use serde_json::json;
use std::collections::HashMap;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A node of the cluster on `redis`, serving WebSocket sessions at `/ws`.
async fn node(redis: &RedisServer) -> TestServer {
    node_with(redis, ChannelConfig::new()).await
}

/// A node of the cluster on `redis` with `config`, serving WebSocket
/// sessions at `/ws`.
async fn node_with(redis: &RedisServer, config: ChannelConfig) -> TestServer {
    let adapter = RedisAdapter::connect(RedisConfig::new(redis.url()).prefix("test"))
        .await
        .expect("Redis is up");
    TestServer::start(
        config
            .websocket("/ws", WebSocketConfig::new())
            .cluster(adapter),
    )
    .await
}

/// A WebSocket client of `server` and its session there.
async fn member(server: &mut TestServer) -> (Ws, Session) {
    let socket = websocket(server.addr, "/ws").await;
    let session = server.next_session().await;
    (socket, session)
}

/// Texts `socket` receives until `fence`, each with how often it came.
async fn until(socket: &mut Ws, fence: &str) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    within(async {
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Text(text))) if text.as_str() == fence => return,
                Some(Ok(WsMessage::Text(text))) => {
                    *seen.entry(text.as_str().to_owned()).or_insert(0) += 1;
                }
                Some(Ok(_)) => {}
                other => panic!("the WebSocket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("the fence arrived");
    seen
}

fn once(texts: &[&str]) -> HashMap<String, usize> {
    texts.iter().map(|text| (text.to_string(), 1)).collect()
}

#[tokio::test]
async fn a_member_of_several_target_rooms_gets_each_broadcast_once() {
    let redis = RedisServer::start().await;
    let (mut a, mut b) = (node(&redis).await, node(&redis).await);
    let (mut a1, a1_session) = member(&mut a).await;
    let (mut b1, b1_session) = member(&mut b).await;
    let (mut b2, b2_session) = member(&mut b).await;
    let (mut b3, b3_session) = member(&mut b).await;
    for room in ["r1", "r2"] {
        a1_session.join(room).await.unwrap();
        b1_session.join(room).await.unwrap();
    }
    b2_session.join("r2").await.unwrap();
    b3_session.join("r3").await.unwrap();
    b3_session.join("fence").await.unwrap();

    let channels = a.handle.clone();
    let sent = channels
        .broadcast("both")
        .to_rooms(["r1", "r2"])
        .send()
        .await;
    // The report counts this node's members, and says the other nodes'
    // got it over pub/sub: at most once.
    let sent = sent.unwrap();
    assert_eq!(sent.reached, 1);
    assert!(sent.at_most_once_elsewhere);
    channels
        .broadcast("not b1")
        .to("r2")
        .to("r1")
        .except(b1_session.id())
        .send()
        .await
        .unwrap();
    channels.broadcast("everyone").send().await.unwrap();
    channels
        .broadcast("fence")
        .to_rooms(["r1", "r2", "fence"])
        .send()
        .await
        .unwrap();

    assert_eq!(
        until(&mut a1, "fence").await,
        once(&["both", "not b1", "everyone"])
    );
    assert_eq!(until(&mut b1, "fence").await, once(&["both", "everyone"]));
    assert_eq!(
        until(&mut b2, "fence").await,
        once(&["both", "not b1", "everyone"])
    );
    assert_eq!(until(&mut b3, "fence").await, once(&["everyone"]));
}

#[tokio::test]
async fn counts_and_lookups_answer_for_the_whole_cluster() {
    let redis = RedisServer::start().await;
    let (mut a, mut b) = (node(&redis).await, node(&redis).await);
    let (_a1, a1_session) = member(&mut a).await;
    let (mut b1, b1_session) = member(&mut b).await;
    let (_b2, b2_session) = member(&mut b).await;
    for session in [&a1_session, &b1_session, &b2_session] {
        session.join("lobby").await.unwrap();
    }
    let count = a.handle.room_members("lobby").await;
    assert_eq!((count.members, count.complete), (3, true));
    assert_eq!(a.handle.room_count("lobby"), 1);
    let sessions = b.handle.count_sessions().await;
    assert_eq!((sessions.members, sessions.complete), (3, true));

    match a.handle.find_session(b1_session.id()).await {
        SessionLookup::Elsewhere(remote) => {
            assert_eq!(Some(remote.node()), b.handle.node_id());
            remote.send("found you").await.unwrap();
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(until(&mut b1, "found you").await, HashMap::new());
    assert!(matches!(
        a.handle.find_session(a1_session.id()).await,
        SessionLookup::Here(_)
    ));
    assert!(matches!(
        a.handle
            .find_session("0123456789abcdef0123456789abcdef")
            .await,
        SessionLookup::Nowhere { complete: true }
    ));

    // Leaving and closing take sessions out of the cluster's counts.
    b2_session.leave("lobby").await;
    b1_session.close("bye");
    let count = within(async {
        loop {
            let count = a.handle.room_members("lobby").await;
            if count.members == 1 {
                return count;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the count came down");
    assert!(count.complete);
}

#[tokio::test]
async fn broadcasts_fail_visibly_while_redis_is_down_and_still_reach_local_members() {
    let mut redis = RedisServer::start().await;
    let (mut a, mut b) = (node(&redis).await, node(&redis).await);
    let (mut a1, a1_session) = member(&mut a).await;
    let (mut b1, b1_session) = member(&mut b).await;
    a1_session.join("r").await.unwrap();
    b1_session.join("r").await.unwrap();

    redis.kill().await;
    match a.handle.broadcast("while down").to("r").send().await {
        Err(BroadcastError::Cluster { local, .. }) => assert_eq!(local.reached, 1),
        other => panic!("{other:?}"),
    }
    assert_eq!(until(&mut a1, "while down").await, HashMap::new());
    let count = a.handle.room_members("r").await;
    assert_eq!((count.members, count.complete), (1, false));

    redis.restart().await;
    // Each node subscribes again by itself; a join waits for its room.
    let (mut b2, b2_session) = member(&mut b).await;
    within(async {
        while b2_session.join("r2").await.is_err() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the join went through once Redis was back");
    let delivered = within(async {
        loop {
            if a.handle
                .broadcast("back")
                .to_rooms(["r", "r2"])
                .send()
                .await
                .is_ok()
            {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(delivered.is_ok(), "broadcasts did not flow again");
    let b1_heard = until(&mut b1, "back").await;
    assert!(b1_heard.is_empty(), "{b1_heard:?}");
    assert_eq!(until(&mut b2, "back").await, HashMap::new());
}

/// A node of the cluster on `redis` that keeps every room's history in
/// Redis, stamping positions as `pos`.
async fn history_node(redis: &RedisServer) -> TestServer {
    let history = HistoryConfig::new().position_field("pos");
    node_with(redis, ChannelConfig::new().history(history)).await
}

/// The next text message of `socket`, as JSON.
async fn next_json(socket: &mut Ws) -> serde_json::Value {
    within(async {
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Text(text))) => {
                    return serde_json::from_str(text.as_str()).expect("JSON")
                }
                Some(Ok(_)) => continue,
                other => panic!("the WebSocket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a message arrived")
}

#[tokio::test]
async fn a_node_whose_room_emptied_recovers_what_other_nodes_said_meanwhile() {
    let redis = RedisServer::start().await;
    let mut a = history_node(&redis).await;
    let mut b = history_node(&redis).await;
    let (mut left, leaving) = member(&mut a).await;
    leaving.join("r").await.expect("joined");
    let (_stays, staying) = member(&mut b).await;
    staying.join("r").await.expect("joined");

    b.handle
        .broadcast(json!({"n": 1}))
        .to("r")
        .send()
        .await
        .unwrap();
    let first = next_json(&mut left).await;
    assert_eq!(first["n"], 1);
    let since = first["pos"].as_str().expect("a position").to_owned();
    // Node A's last member leaves: A stops hearing the room, and what it
    // kept of it is no longer kept up to date.
    assert!(leaving.leave("r").await);
    for n in 2..=3 {
        b.handle
            .broadcast(json!({"n": n}))
            .to("r")
            .send()
            .await
            .unwrap();
    }

    // The client comes back to node A, naming the last message it saw.
    let (mut back, session) = member(&mut a).await;
    let recovering = tokio::spawn(async move {
        let recovery = session.join_since("r", &since).await.expect("joined");
        (recovery, session)
    });
    for n in 2..=3 {
        assert_eq!(
            next_json(&mut back).await["n"],
            n,
            "what was said meanwhile, in order"
        );
    }
    let (recovery, _session) = within(recovering).await.expect("recovered").unwrap();
    assert!(recovery.recovered);
    assert_eq!(recovery.replayed, 2);
    // And it is live in the room afterwards, with nothing twice.
    b.handle
        .broadcast(json!({"n": 4}))
        .to("r")
        .send()
        .await
        .unwrap();
    assert_eq!(next_json(&mut back).await["n"], 4);
}
