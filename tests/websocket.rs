//! Native WebSocket sessions, driven by tokio-tungstenite as the client, and
//! the hixie-76 handshake over raw TCP.

use axum_channel::{ChannelConfig, CloseReason, Message, SendError, WebSocketConfig};
use bytes::Bytes;
use channel_tests::{closed, recv, settle, within, TestServer, PATIENCE};
use futures::{SinkExt, StreamExt};
use http::{Method, StatusCode};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{advance, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn server(websocket: WebSocketConfig) -> TestServer {
    TestServer::start(ChannelConfig::new().websocket("/ws", websocket)).await
}

async fn connect(
    server: &TestServer,
    headers: &[(&'static str, &str)],
) -> (Client, http::HeaderMap) {
    let mut request = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    // With TCP_NODELAY, as the server's sockets: a small frame written
    // right after another must not wait ~40 ms for the server's delayed
    // acknowledgement, a wait in which a paused clock jumps to the next timer.
    let (client, response) = within(tokio_tungstenite::connect_async_with_config(
        request, None, true,
    ))
    .await
    .expect("handshake in time")
    .expect("handshake accepted");
    (client, response.headers().clone())
}

async fn next_frame(client: &mut Client) -> WsMessage {
    within(client.next())
        .await
        .expect("a frame in time")
        .expect("the connection is open")
        .expect("a valid frame")
}

/// Reads until the server's close frame, then lets the client answer it
/// and finish, as a real client does.
async fn close_code(client: &mut Client) -> (u16, String) {
    let code = loop {
        match next_frame(client).await {
            WsMessage::Close(Some(frame)) => break (frame.code.into(), frame.reason.to_string()),
            WsMessage::Close(None) => panic!("close without a code"),
            _ => continue,
        }
    };
    let _ = within(client.next()).await;
    code
}

#[tokio::test]
async fn text_and_binary_reach_the_app_and_come_back() {
    let mut server = server(WebSocketConfig::new()).await;
    let (mut client, _) = connect(&server, &[("cookie", "s=1"), ("x-app", "7")]).await;
    let mut session = server.next_session().await;
    assert_eq!(session.transport().to_string(), "websocket");
    assert_eq!(session.headers()["x-app"], "7");
    assert!(session.headers().get("cookie").is_none());
    assert!(session.remote_addr().is_some());

    client.send(WsMessage::text("héllo")).await.unwrap();
    client
        .send(WsMessage::binary(vec![0u8, 255, 7]))
        .await
        .unwrap();
    assert_eq!(recv(&mut session).await, Message::Text("héllo".into()));
    assert_eq!(
        recv(&mut session).await,
        Message::Binary(Bytes::from_static(&[0, 255, 7]))
    );

    let sent = session.send("plain text");
    assert_eq!(next_frame(&mut client).await, WsMessage::text("plain text"));
    within(sent).await.unwrap().unwrap();
    assert!(session
        .send(serde_json::json!({"a": 1}))
        .refused()
        .is_none());
    assert_eq!(next_frame(&mut client).await, WsMessage::text(r#"{"a":1}"#));
    assert!(session.send_binary(vec![1u8, 2, 3]).refused().is_none());
    assert_eq!(
        next_frame(&mut client).await,
        WsMessage::binary(vec![1u8, 2, 3])
    );
    assert_eq!(server.handle.session_count(), 1);
}

#[tokio::test]
async fn a_burst_longer_than_one_write_arrives_whole_and_in_order() {
    let mut server = server(WebSocketConfig::new()).await;
    let (mut client, _) = connect(&server, &[]).await;
    let session = server.next_session().await;
    // More messages than the connection gathers for one write, sent
    // without waiting for any, then payloads of every header length
    // (7-bit, 16-bit, 64-bit) and of both write paths (copied, and
    // written from where they are).
    let sizes = (0..300)
        .map(|n| 10 + n % 150)
        .chain([125, 126, 20_000, 65_535, 65_536, 300_000]);
    let texts: Vec<String> = sizes
        .enumerate()
        .map(|(n, size)| format!("{n}:{}", "x".repeat(size)))
        .collect();
    for text in &texts {
        assert!(session.send(text.as_str()).refused().is_none());
    }
    for text in &texts {
        match next_frame(&mut client).await {
            WsMessage::Text(got) => assert!(got.as_str() == text, "message {} differs", &text[..4]),
            other => panic!("expected a text, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn fragmented_messages_are_reassembled() {
    let mut server = server(WebSocketConfig::new()).await;
    let (mut client, _) = connect(&server, &[]).await;
    let mut session = server.next_session().await;
    client
        .send(WsMessage::Frame(Frame::message(
            Bytes::from_static(b"frag"),
            OpCode::Data(Data::Text),
            false,
        )))
        .await
        .unwrap();
    // A ping may come between fragments.
    client
        .send(WsMessage::Ping(Bytes::from_static(b"mid")))
        .await
        .unwrap();
    client
        .send(WsMessage::Frame(Frame::message(
            Bytes::from_static(b"ment\xc3\xa9"),
            OpCode::Data(Data::Continue),
            true,
        )))
        .await
        .unwrap();
    assert_eq!(recv(&mut session).await, Message::Text("fragmenté".into()));
    assert_eq!(
        next_frame(&mut client).await,
        WsMessage::Pong(Bytes::from_static(b"mid"))
    );
}

#[tokio::test]
async fn subprotocols_are_negotiated() {
    let mut server = server(WebSocketConfig::new().protocols(["chat.v2", "chat.v1"])).await;
    let (_client, headers) =
        connect(&server, &[("sec-websocket-protocol", "chat.v1, chat.v2")]).await;
    assert_eq!(headers["sec-websocket-protocol"], "chat.v2");
    assert_eq!(server.next_session().await.protocol(), Some("chat.v2"));

    // tokio-tungstenite refuses a server that picks none of its protocols,
    // so the no-overlap case is a plain HTTP handshake.
    let response = server
        .send(
            Method::GET,
            "/ws",
            &[
                ("connection", "Upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
                ("sec-websocket-protocol", "other"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        response.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    assert_eq!(server.next_session().await.protocol(), None);
}

#[tokio::test]
async fn ping_resolves_when_the_pong_arrives() {
    let mut server = server(WebSocketConfig::new()).await;
    let (mut client, _) = connect(&server, &[]).await;
    let session = server.next_session().await;
    let pong = session.ping(Bytes::from_static(b"p1"));
    assert_eq!(
        next_frame(&mut client).await,
        WsMessage::Ping(Bytes::from_static(b"p1"))
    );
    // The client writes its pong on its next read.
    tokio::spawn(async move { while let Some(Ok(_)) = client.next().await {} });
    within(pong).await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_stops_answering_pings_is_closed() {
    const INTERVAL: Duration = Duration::from_millis(100);
    let mut server = server(WebSocketConfig::new().ping_interval(INTERVAL)).await;
    let opened = Instant::now();
    let (_client_never_reads, _) = connect(&server, &[]).await;
    let session = server.next_session().await;
    // A ping goes out after one interval. The clock stops there exactly:
    // the engine counts the next interval from when its timer ran...
    advance(INTERVAL).await;
    settle().await;
    assert_eq!(session.close_reason(), None);
    // ...and the peer, which has not answered it, is closed when the next
    // one is due.
    advance(INTERVAL - Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(
        session.close_reason(),
        None,
        "open until the next ping is due"
    );
    let reason = closed(&session).await;
    assert_eq!(reason, CloseReason::PingTimeout);
    assert_eq!(Instant::now(), opened + 2 * INTERVAL);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_answers_pings_stays_open() {
    const INTERVAL: Duration = Duration::from_millis(50);
    let mut server = server(WebSocketConfig::new().ping_interval(INTERVAL)).await;
    let opened = Instant::now();
    let (mut client, _) = connect(&server, &[]).await;
    let session = server.next_session().await;
    // The client answers each ping as it reads on, before the next is due.
    for n in 1..=5u32 {
        assert_eq!(next_frame(&mut client).await, WsMessage::Ping(Bytes::new()));
        assert_eq!(Instant::now(), opened + n * INTERVAL, "ping {n} on time");
    }
    assert_eq!(session.close_reason(), None);
}

#[tokio::test]
async fn the_app_closes_with_a_code_and_reason() {
    let mut server = server(WebSocketConfig::new()).await;
    let (mut client, _) = connect(&server, &[]).await;
    let session = server.next_session().await;
    session.close_with_code(4001, "go away");
    assert_eq!(close_code(&mut client).await, (4001, "go away".into()));
    let reason = closed(&session).await;
    assert_eq!(
        reason,
        CloseReason::ClosedWithCode {
            code: 4001,
            reason: "go away".into()
        }
    );
    assert_eq!(session.send("late").await, Err(SendError::Closed(reason)));
}

#[tokio::test]
async fn the_peers_close_code_and_reason_reach_the_app() {
    let mut server = server(WebSocketConfig::new()).await;
    let (mut client, _) = connect(&server, &[]).await;
    let mut session = server.next_session().await;
    client
        .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: CloseCode::Library(4321),
            reason: "done".into(),
        }))
        .await
        .unwrap();
    let reason = closed(&session).await;
    assert_eq!(
        reason,
        CloseReason::Peer {
            code: Some(4321),
            reason: "done".into()
        }
    );
    assert!(session.next().await.is_none(), "the stream ends");
}

#[tokio::test]
async fn an_oversized_message_closes_with_1009() {
    let mut server = server(WebSocketConfig::new().max_message_size(1024)).await;
    let (mut client, _) = connect(&server, &[]).await;
    let mut session = server.next_session().await;
    client.send(WsMessage::text("small")).await.unwrap();
    client
        .send(WsMessage::text("x".repeat(2048)))
        .await
        .unwrap();
    assert_eq!(recv(&mut session).await, Message::Text("small".into()));
    assert_eq!(close_code(&mut client).await.0, 1009);
    let reason = closed(&session).await;
    assert!(
        matches!(reason, CloseReason::Failed { code: 1009, .. }),
        "{reason:?}"
    );
}

#[tokio::test]
async fn invalid_utf8_closes_with_1007() {
    let mut server = server(WebSocketConfig::new()).await;
    let (mut client, _) = connect(&server, &[]).await;
    let session = server.next_session().await;
    client
        .send(WsMessage::Frame(Frame::message(
            Bytes::from_static(b"\xc3\x28"),
            OpCode::Data(Data::Text),
            true,
        )))
        .await
        .unwrap();
    assert_eq!(close_code(&mut client).await.0, 1007);
    let reason = closed(&session).await;
    assert!(
        matches!(reason, CloseReason::Failed { code: 1007, .. }),
        "{reason:?}"
    );
}

#[tokio::test]
async fn a_forbidden_close_code_is_answered_with_1002() {
    let mut server = server(WebSocketConfig::new()).await;
    let (mut client, _) = connect(&server, &[]).await;
    let _session = server.next_session().await;
    // 1005 may never be sent on the wire.
    client
        .send(WsMessage::Frame(Frame::close(Some(
            tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Status,
                reason: "".into(),
            },
        ))))
        .await
        .unwrap();
    assert_eq!(close_code(&mut client).await.0, 1002);
}

#[tokio::test]
async fn handshake_headers_origins_and_errors() {
    let mut server = TestServer::start(
        ChannelConfig::new()
            .websocket(
                "/ws",
                WebSocketConfig::new().header("x-powered-by", "axum-channel"),
            )
            .allowed_origins(["https://good.example"]),
    )
    .await;
    let (_client, headers) = connect(&server, &[("origin", "https://good.example")]).await;
    assert_eq!(headers["x-powered-by"], "axum-channel");
    server.next_session().await;

    let upgrade = [
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut headers = upgrade.to_vec();
        headers.extend_from_slice(extra);
        headers
    };
    let response = server
        .send(
            Method::GET,
            "/ws",
            &with(&[("origin", "https://evil.example")]),
            Bytes::new(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = server
        .send(
            Method::GET,
            "/ws",
            &[("origin", "https://good.example")],
            Bytes::new(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let mut old = with(&[("origin", "https://good.example")]);
    old[2] = ("sec-websocket-version", "8");
    let response = server.send(Method::GET, "/ws", &old, Bytes::new()).await;
    assert_eq!(response.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    let response = server
        .send(
            Method::POST,
            "/ws",
            &with(&[("origin", "https://good.example")]),
            Bytes::new(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    // Paths beside the endpoint are the app's.
    assert_eq!(server.get("/ws/other").await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/healthz").await.body, "ok");
}

#[tokio::test]
async fn the_queue_to_a_peer_is_bounded() {
    let mut server = server(WebSocketConfig::new().max_queued_messages(2)).await;
    let (_client, _) = connect(&server, &[]).await;
    let session = server.next_session().await;
    let refused = (0..1000)
        .map(|n| session.send(n.to_string()))
        .filter(|delivery| matches!(delivery.refused(), Some(SendError::QueueFull { limit: 2 })))
        .count();
    assert!(refused > 0, "some sends were refused");
}

#[tokio::test]
async fn close_all_closes_websockets_with_1001() {
    let mut server = server(WebSocketConfig::new()).await;
    let (mut client, _) = connect(&server, &[]).await;
    let session = server.next_session().await;
    server.handle.close_all();
    assert_eq!(close_code(&mut client).await.0, 1001);
    assert_eq!(closed(&session).await, CloseReason::Shutdown);
    // The session leaves the registry once its closing handshake is done,
    // which shutdown waits for.
    server.handle.shutdown(PATIENCE).await;
    assert_eq!(server.handle.session_count(), 0);
}

/// Sends a raw hixie-76 handshake; returns the connection and the reply head.
async fn hixie_handshake(
    server: &TestServer,
    key1: &str,
    key2: &str,
) -> (tokio::net::TcpStream, String) {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key2: {key2}\r\nSec-WebSocket-Protocol: sample\r\nUpgrade: WebSocket\r\n\
         Sec-WebSocket-Key1: {key1}\r\nOrigin: http://example.com\r\n\r\nTm[K T2u"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = within(stream.read(&mut byte)).await.unwrap().unwrap();
        assert_eq!(
            n,
            1,
            "connection closed during the handshake: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    (stream, String::from_utf8(head).unwrap())
}

// The handshake example of draft-hixie-thewebsocketprotocol-76.
const KEY1: &str = "18x 6]8vM;54 *(5:  {   U1]8  z [  8";
const KEY2: &str = "1_ tx7X d  <  nw  334J702) 7]o}` 0";

#[tokio::test]
async fn hixie_76_handshake_and_framing() {
    let mut server = TestServer::start(ChannelConfig::new().websocket(
        "/ws",
        WebSocketConfig::new().hixie76(true).protocols(["sample"]),
    ))
    .await;
    let (mut stream, head) = hixie_handshake(&server, KEY1, KEY2).await;
    let head_lower = head.to_ascii_lowercase();
    assert!(
        head.starts_with("HTTP/1.1 101 WebSocket Protocol Handshake\r\n"),
        "{head}"
    );
    assert!(head_lower.contains("upgrade: websocket\r\n"));
    assert!(head_lower.contains("sec-websocket-origin: http://example.com\r\n"));
    assert!(head_lower.contains("sec-websocket-location: ws://example.com/ws\r\n"));
    assert!(head_lower.contains("sec-websocket-protocol: sample\r\n"));
    let mut answer = [0u8; 16];
    within(stream.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&answer, b"fQJ,fN/4F4!~K~MH");

    let mut session = server.next_session().await;
    stream.write_all(b"\x00h\xc3\xa9llo\xff").await.unwrap();
    assert_eq!(recv(&mut session).await, Message::Text("héllo".into()));
    assert!(session.send("back").refused().is_none());
    let mut frame = [0u8; 6];
    stream.read_exact(&mut frame).await.unwrap();
    assert_eq!(&frame, b"\x00back\xff");
    assert!(
        session.send_binary(vec![1u8]).refused().is_some(),
        "hixie has no binary frames"
    );

    stream.write_all(b"\xff\x00").await.unwrap();
    let mut closing = [0u8; 2];
    stream.read_exact(&mut closing).await.unwrap();
    assert_eq!(&closing, b"\xff\x00");
    let reason = closed(&session).await;
    assert_eq!(
        reason,
        CloseReason::Peer {
            code: None,
            reason: String::new()
        }
    );
}

#[tokio::test]
async fn hixie_keys_are_checked_and_the_handshake_is_opt_in() {
    let server = TestServer::start(
        ChannelConfig::new().websocket("/ws", WebSocketConfig::new().hixie76(true)),
    )
    .await;
    // No spaces, and a number not divisible by its spaces.
    for (key1, key2) in [("12345678", KEY2), (KEY1, "1 2 3")] {
        let (_stream, head) = hixie_handshake(&server, key1, key2).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    }
    let off =
        TestServer::start(ChannelConfig::new().websocket("/ws", WebSocketConfig::new())).await;
    let (_stream, head) = hixie_handshake(&off, KEY1, KEY2).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}
