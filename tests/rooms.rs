//! Rooms and broadcasts across every transport, typed messages, and what
//! the authorisation hook attaches to a session.

use axum_channel::{
    Admit, ChannelConfig, CloseReason, EventSourceConfig, Message, Overflow, Payload, Rejection,
    SendError, Session, SockJsConfig, Transport, WebSocketConfig,
};
use bytes::Bytes;
use channel_tests::clients::{websocket, BcClient, SockJsXhrClient, Ws};
use channel_tests::{closed, recv, within, Streamed, TestServer};
use futures::{SinkExt, StreamExt};
use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn config() -> ChannelConfig {
    ChannelConfig::new()
        .websocket("/ws", WebSocketConfig::new())
        .sockjs("/sockjs", SockJsConfig::new())
        .event_source("/events", EventSourceConfig::new())
}

async fn ws(server: &TestServer) -> Ws {
    websocket(server.addr, "/ws").await
}

async fn ws_text(socket: &mut Ws) -> String {
    within(async {
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Text(text))) => return text.as_str().to_owned(),
                Some(Ok(_)) => continue,
                other => panic!("the WebSocket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a text message arrived")
}

/// An EventSource stream past its padding.
async fn event_source(server: &TestServer) -> Streamed {
    let response = server.send(Method::GET, "/events", &[], Bytes::new()).await;
    let mut stream = Streamed::new(response);
    stream.read_until("\n").await;
    stream
}

/// One client of each transport, each in room `r` (the test's sessions are
/// returned in the same order: BrowserChannel, SockJS, WebSocket, EventSource).
struct Four {
    bc: tokio::sync::mpsc::UnboundedReceiver<Value>,
    sockjs: tokio::sync::mpsc::UnboundedReceiver<String>,
    ws: Ws,
    es: Streamed,
    sessions: Vec<Session>,
    _bc_client: BcClient,
    _sockjs_client: SockJsXhrClient,
}

async fn four(server: &mut TestServer) -> Four {
    let (bc_client, bc) = BcClient::open(server.addr).await;
    let bc_session = server.next_session().await;
    let (sockjs_client, sockjs) = SockJsXhrClient::open(server.addr, "four").await;
    let sockjs_session = server.next_session().await;
    let ws = ws(server).await;
    let ws_session = server.next_session().await;
    let es = event_source(server).await;
    let es_session = server.next_session().await;
    let sessions = vec![bc_session, sockjs_session, ws_session, es_session];
    for (session, transport) in sessions.iter().zip([
        Transport::BrowserChannel,
        Transport::SockJs,
        Transport::WebSocket,
        Transport::EventSource,
    ]) {
        assert_eq!(session.transport(), transport);
        session.join("r").await.unwrap();
    }
    Four {
        bc,
        sockjs,
        ws,
        es,
        sessions,
        _bc_client: bc_client,
        _sockjs_client: sockjs_client,
    }
}

#[tokio::test]
async fn one_broadcast_reaches_every_transport_exactly_once() {
    let mut server = TestServer::start(config()).await;
    let mut four = four(&mut server).await;
    let channels = server.handle.clone();
    assert_eq!(channels.room_count("r"), 4);

    let payload = Payload::json(json!({"type": "said", "text": "hello"})).with_event_type("said");
    let report = channels
        .broadcast_payload(payload)
        .to("r")
        .send()
        .await
        .unwrap();
    assert_eq!(report.reached, 4);
    // One encoding per wire format, not one per member.
    assert_eq!(report.encodings, 4);

    let expected = json!({"type": "said", "text": "hello"});
    let bc = within(four.bc.recv()).await.unwrap().unwrap();
    assert_eq!(bc, expected);
    let sockjs = within(four.sockjs.recv()).await.unwrap().unwrap();
    assert_eq!(serde_json::from_str::<Value>(&sockjs).unwrap(), expected);
    let ws = ws_text(&mut four.ws).await;
    assert_eq!(serde_json::from_str::<Value>(&ws).unwrap(), expected);
    let event = four.es.read_until("\n\n").await;
    assert_eq!(event, format!("event: said\ndata: {}\n\n", expected));

    // Exactly once: a second broadcast is the next thing each client sees.
    channels.broadcast("second").to("r").send().await.unwrap();
    assert_eq!(
        within(four.bc.recv()).await.unwrap().unwrap(),
        json!("second")
    );
    assert_eq!(within(four.sockjs.recv()).await.unwrap().unwrap(), "second");
    assert_eq!(ws_text(&mut four.ws).await, "second");
    assert_eq!(four.es.read_until("\n\n").await, "data: second\n\n");
    drop(four.sessions);
}

#[tokio::test]
async fn leaving_and_closing_take_a_session_out_and_exclusions_work() {
    let mut server = TestServer::start(config()).await;
    let mut a = ws(&server).await;
    let session_a = server.next_session().await;
    let mut b = ws(&server).await;
    let session_b = server.next_session().await;
    let mut c = ws(&server).await;
    let session_c = server.next_session().await;
    for session in [&session_a, &session_b, &session_c] {
        session.join("r").await.unwrap();
    }
    session_a.join("other").await.unwrap();
    assert_eq!(session_a.rooms().len(), 2);
    let channels = session_a.channels();

    // The sender leaves itself out.
    let report = channels
        .broadcast("from a")
        .to("r")
        .except(session_a.id())
        .send()
        .await
        .unwrap();
    assert_eq!(report.reached, 2);
    assert_eq!(ws_text(&mut b).await, "from a");
    assert_eq!(ws_text(&mut c).await, "from a");

    // A session in both rooms gets a broadcast to both once.
    let report = channels
        .broadcast("both")
        .to_rooms(["r", "other"])
        .send()
        .await
        .unwrap();
    assert_eq!(report.reached, 3);
    for socket in [&mut a, &mut b, &mut c] {
        assert_eq!(ws_text(socket).await, "both");
    }

    assert!(session_b.leave("r").await);
    assert!(!session_b.leave("r").await);
    assert_eq!(channels.room_count("r"), 2);
    session_c.close("bye");
    closed(&session_c).await;
    // Leaving every room happens with the close, before `closed` resolves.
    assert_eq!(channels.room_count("r"), 1);
    assert!(!session_c.in_room("r"));

    let report = channels.broadcast("last").to("r").send().await.unwrap();
    assert_eq!(report.reached, 1);
    assert_eq!(ws_text(&mut a).await, "last");
    assert!(session_c.join("r").await.is_err());
    // An everyone broadcast reaches every open session.
    let report = channels.broadcast("all").send().await.unwrap();
    assert_eq!(report.reached, 2);
    assert_eq!(ws_text(&mut a).await, "all");
    assert_eq!(ws_text(&mut b).await, "all");
}

#[tokio::test]
async fn broadcast_with_acks_reports_each_delivery() {
    let mut server = TestServer::start(config()).await;
    let mut a = ws(&server).await;
    let session_a = server.next_session().await;
    let (bc_client, mut bc) = BcClient::open(server.addr).await;
    let session_b = server.next_session().await;
    session_a.join("r").await.unwrap();
    session_b.join("r").await.unwrap();
    let (report, acks) = server
        .handle
        .broadcast("ack me")
        .to("r")
        .send_with_acks(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(report.reached, 2);
    assert_eq!(ws_text(&mut a).await, "ack me");
    assert_eq!(within(bc.recv()).await.unwrap().unwrap(), json!("ack me"));
    let mut acks: Vec<(String, Result<(), SendError>)> =
        within(acks.collect::<Vec<_>>()).await.unwrap();
    acks.sort_by(|a, b| a.0.cmp(&b.0));
    let mut ids = vec![session_a.id().to_owned(), session_b.id().to_owned()];
    ids.sort();
    assert_eq!(
        acks.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        ids
    );
    // The BrowserChannel client acknowledges on its next request: the
    // layer asks for it by ending the back channel after a second.
    assert!(acks.iter().all(|(_, result)| result.is_ok()), "{acks:?}");
    drop(bc_client);
}

#[tokio::test]
async fn a_member_with_a_full_queue_gets_the_overflow_policy() {
    for overflow in [Overflow::Drop, Overflow::Close] {
        let mut server = TestServer::start(
            ChannelConfig::new()
                .event_source("/events", EventSourceConfig::new().max_queued_events(1))
                .overflow(overflow),
        )
        .await;
        // A member that has not taken its first event when the second comes.
        let response = server.send(Method::GET, "/events", &[], Bytes::new()).await;
        let session = server.next_session().await;
        session.join("r").await.unwrap();
        let channels = server.handle.clone();
        let first = channels.broadcast("1").to("r").send().await.unwrap();
        let second = channels.broadcast("2").to("r").send().await.unwrap();
        assert_eq!(first.reached, 1);
        match overflow {
            Overflow::Drop => {
                assert_eq!(second.dropped, 1);
                assert!(session.close_reason().is_none());
            }
            _ => {
                assert_eq!(second.closed, 1);
                assert_eq!(closed(&session).await, CloseReason::Lagging);
            }
        }
        drop(response);
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Say {
    room: String,
    text: String,
}

#[tokio::test]
async fn typed_messages_mean_the_same_on_every_transport() {
    let mut server = TestServer::start(config()).await;
    let mut socket = ws(&server).await;
    let mut ws_session = server.next_session().await;
    let (bc_client, mut bc) = BcClient::open(server.addr).await;
    let mut bc_session = server.next_session().await;

    let say = Say {
        room: "r".into(),
        text: "hi".into(),
    };
    socket
        .send(WsMessage::text(serde_json::to_string(&say).unwrap()))
        .await
        .unwrap();
    bc_client
        .send_json(&[serde_json::to_value(&say).unwrap()])
        .await;
    let over_ws = recv(&mut ws_session).await;
    let over_bc = recv(&mut bc_session).await;
    assert!(matches!(over_ws, Message::Text(_)));
    assert!(matches!(over_bc, Message::Json(_)));
    assert_eq!(over_ws.json::<Say>().unwrap(), say);
    assert_eq!(over_bc.json::<Say>().unwrap(), say);

    ws_session.send_json(&say).await.unwrap();
    assert_eq!(
        serde_json::from_str::<Say>(&ws_text(&mut socket).await).unwrap(),
        say
    );
    let _delivery = bc_session.send_json(&say);
    let arrived = within(bc.recv()).await.unwrap().unwrap();
    assert_eq!(serde_json::from_value::<Say>(arrived).unwrap(), say);
}

#[derive(Clone, Debug, PartialEq)]
struct User(String);

#[tokio::test]
async fn the_authorisation_hook_sees_cookies_and_attaches_data() {
    let mut server = TestServer::start(config().authorize(|request| async move {
        let name = request
            .headers()
            .get("cookie")
            .and_then(|cookie| cookie.to_str().ok())
            .and_then(|cookie| cookie.strip_prefix("user="))
            .ok_or_else(|| Rejection::forbidden("Forbidden"))?;
        Ok(Admit::new().with(User(name.to_owned())))
    }))
    .await;
    let refused = server.send(Method::GET, "/events", &[], Bytes::new()).await;
    assert_eq!(refused.status(), http::StatusCode::FORBIDDEN);
    let response = server
        .send(
            Method::GET,
            "/events",
            &[("cookie", "user=ada")],
            Bytes::new(),
        )
        .await;
    assert_eq!(response.status(), http::StatusCode::OK);
    let session = server.next_session().await;
    assert_eq!(
        session.extensions().get::<User>(),
        Some(&User("ada".into()))
    );
    assert!(session.headers().get("cookie").is_none());
}
