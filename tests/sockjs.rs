//! SockJS over real HTTP and WebSocket: every endpoint, transport and error,
//! bodies byte for byte where the protocol fixes them.

use axum_channel::{ChannelConfig, CloseReason, Message, SockJsConfig};
use bytes::Bytes;
use channel_tests::{closed, recv, settle, within, Reply, Streamed, TestServer, PATIENCE};
use futures::{SinkExt, StreamExt};
use http::{Method, StatusCode};
use std::time::Duration;
use tokio::time::{advance, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const DISCONNECT_DELAY: Duration = Duration::from_millis(300);
const MILLISECOND: Duration = Duration::from_millis(1);

fn quick() -> SockJsConfig {
    SockJsConfig::new().disconnect_delay(DISCONNECT_DELAY)
}

/// A public SockJS service, as sockjs-node's protocol suite expects it:
/// pages of any origin may connect (the layer's default is its own origin).
async fn server(sockjs: SockJsConfig) -> TestServer {
    TestServer::start(ChannelConfig::new().any_origin().sockjs("/sockjs", sockjs)).await
}

async fn request(
    server: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    Reply::read(server.send(method, path, headers, body.to_owned()).await).await
}

async fn post(server: &TestServer, path: &str, body: &str) -> Reply {
    request(server, Method::POST, path, &[], body).await
}

/// Opens a streaming receiver and reads past the open frame.
async fn open_streaming(server: &TestServer, path: &str) -> Streamed {
    let response = server.send(Method::POST, path, &[], Bytes::new()).await;
    let mut stream = Streamed::new(response);
    stream.read_until("o\n").await;
    stream
}

#[tokio::test]
async fn the_greeting_answers_at_the_prefix() {
    let server = server(quick()).await;
    for path in ["/sockjs", "/sockjs/"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "Welcome to SockJS!\n");
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=UTF-8")
        );
    }
    let reply = post(&server, "/sockjs", "").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(server.get("/sockjsx").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn info_describes_the_server() {
    let server = server(quick()).await;
    let reply = server.get("/sockjs/info").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    assert_eq!(
        reply.header("cache-control"),
        Some("no-store, no-cache, no-transform, must-revalidate, max-age=0")
    );
    assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
    let info: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(info["websocket"], true);
    assert_eq!(info["cookie_needed"], false);
    assert_eq!(info["origins"], serde_json::json!(["*:*"]));
    let entropy = info["entropy"].as_u64().unwrap();
    let again: serde_json::Value =
        serde_json::from_str(&server.get("/sockjs/info").await.body).unwrap();
    assert_ne!(
        again["entropy"].as_u64().unwrap(),
        entropy,
        "entropy is random"
    );

    let reply = request(
        &server,
        Method::GET,
        "/sockjs/info",
        &[("origin", "https://a.example")],
        "",
    )
    .await;
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://a.example")
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );

    let reply = request(
        &server,
        Method::OPTIONS,
        "/sockjs/info",
        &[
            ("origin", "https://a.example"),
            ("access-control-request-headers", "x-a, x-b"),
        ],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("OPTIONS, GET")
    );
    assert_eq!(reply.header("access-control-max-age"), Some("31536000"));
    assert_eq!(
        reply.header("access-control-allow-headers"),
        Some("x-a, x-b")
    );
    assert_eq!(
        reply.header("cache-control"),
        Some("public, max-age=31536000")
    );
    assert!(reply.header("expires").is_some());
    assert_eq!(
        post(&server, "/sockjs/info", "").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn origin_null_is_echoed_with_credentials() {
    // Sandboxed pages send `Origin: null`; sockjs-node (since 0.3.16)
    // echoes it with credentials on `/info` and the xhr transports, and
    // on their preflights.
    let server = server(quick()).await;
    let null = [("origin", "null")];
    let assert_null = |what: &str, headers: &http::HeaderMap| {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(
            header("access-control-allow-origin"),
            Some("null"),
            "{what}"
        );
        assert_eq!(
            header("access-control-allow-credentials"),
            Some("true"),
            "{what}"
        );
    };
    let reply = request(&server, Method::GET, "/sockjs/info", &null, "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_null("GET /info", &reply.headers);
    for path in [
        "/sockjs/info",
        "/sockjs/000/s1/xhr",
        "/sockjs/000/s1/xhr_send",
        "/sockjs/000/s1/xhr_streaming",
    ] {
        let reply = request(&server, Method::OPTIONS, path, &null, "").await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "OPTIONS {path}");
        assert_null(&format!("OPTIONS {path}"), &reply.headers);
    }
    let reply = request(&server, Method::POST, "/sockjs/000/s1/xhr", &null, "").await;
    assert_eq!(reply.body, "o\n");
    assert_null("xhr", &reply.headers);
    let reply = request(
        &server,
        Method::POST,
        "/sockjs/000/s1/xhr_send",
        &null,
        "[\"x\"]",
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_null("xhr_send", &reply.headers);
    let response = server
        .send(
            Method::POST,
            "/sockjs/000/s2/xhr_streaming",
            &null,
            Bytes::new(),
        )
        .await;
    let mut stream = Streamed::new(response);
    assert_null("xhr_streaming", &stream.headers);
    stream.read_until("o\n").await;
}

#[tokio::test]
async fn the_iframe_page_is_cached_and_revalidated() {
    let server = server(quick().sockjs_url("https://cdn.example/sockjs.js")).await;
    let reply = server.get("/sockjs/iframe.html").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    assert!(reply
        .body
        .contains("<script src=\"https://cdn.example/sockjs.js\"></script>"));
    assert!(reply.body.contains("SockJS.bootstrap_iframe()"));
    assert_eq!(
        reply.header("cache-control"),
        Some("public, max-age=31536000")
    );
    let etag = reply.header("etag").unwrap().to_owned();
    assert_eq!(etag.len(), 34, "a quoted MD5: {etag}");
    let other = server.get("/sockjs/iframe-1.2.3_abc.html").await;
    assert_eq!(other.body, reply.body);
    let cached = request(
        &server,
        Method::GET,
        "/sockjs/iframe.html",
        &[("if-none-match", &etag)],
        "",
    )
    .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert_eq!(cached.body, "");
    assert_eq!(
        server.get("/sockjs/iframe-A.html").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn malformed_transport_urls_are_404() {
    let server = server(quick()).await;
    for path in [
        "/sockjs/000/a.b/xhr",
        "/sockjs/0.0/abc/xhr",
        "/sockjs//abc/xhr",
        "/sockjs/000//xhr",
        "/sockjs/000/abc/bogus",
        "/sockjs/000/abc/xhr/more",
    ] {
        let reply = post(&server, path, "").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    let reply = server.get("/sockjs/000/abc/xhr").await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("OPTIONS, POST"));
}

#[tokio::test]
async fn xhr_polling_opens_sends_and_receives() {
    let mut server = server(quick()).await;
    let reply = request(
        &server,
        Method::POST,
        "/sockjs/000/s1/xhr",
        &[("origin", "https://a.example"), ("cookie", "x=1")],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "o\n");
    assert_eq!(
        reply.header("content-type"),
        Some("application/javascript; charset=UTF-8")
    );
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://a.example")
    );
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert!(
        reply.header("set-cookie").is_none(),
        "jsessionid is off by default"
    );

    let mut session = server.next_session().await;
    assert_eq!(session.transport().to_string(), "sockjs");
    assert_eq!(session.protocol(), Some("xhr-polling"));
    assert_eq!(session.headers()["origin"], "https://a.example");
    assert!(session.headers().get("cookie").is_none());
    assert_eq!(session.uri().path(), "/sockjs/000/s1/xhr");

    let reply = post(&server, "/sockjs/000/s1/xhr_send", r#"["a","b\u2028c"]"#).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(recv(&mut session).await, Message::Text("a".into()));
    assert_eq!(recv(&mut session).await, Message::Text("b\u{2028}c".into()));

    let first = session.send("x\u{2028}😀");
    assert!(session
        .send(serde_json::json!({"k": 1}))
        .refused()
        .is_none());
    let reply = post(&server, "/sockjs/000/s1/xhr", "").await;
    assert_eq!(
        reply.body,
        "a[\"x\\u2028\\ud83d\\ude00\",\"{\\\"k\\\":1}\"]\n"
    );
    within(first).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_polling_request_waits_for_messages() {
    let mut server = server(quick()).await;
    post(&server, "/sockjs/000/s1/xhr", "").await;
    let session = server.next_session().await;
    let poll = server.send(Method::POST, "/sockjs/000/s1/xhr", &[], Bytes::new());
    let send = async {
        // Nothing tells the client that its request reached the server, so
        // let the runtime run until it surely has; then a second receiver,
        // turned away, proves that the first one is held open.
        settle().await;
        let second = post(&server, "/sockjs/000/s1/xhr", "").await;
        assert_eq!(
            second.body, "c[2010,\"Another connection still open\"]\n",
            "the first poll waits at the server"
        );
        assert!(session.send("late").refused().is_none());
    };
    let (response, ()) = tokio::join!(poll, send);
    assert_eq!(Reply::read(response).await.body, "a[\"late\"]\n");
}

#[tokio::test]
async fn send_errors() {
    let server = server(quick()).await;
    let reply = post(&server, "/sockjs/000/nope/xhr_send", r#"["x"]"#).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    post(&server, "/sockjs/000/s1/xhr", "").await;
    let reply = post(&server, "/sockjs/000/s1/xhr_send", "").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "Payload expected.")
    );
    let reply = post(&server, "/sockjs/000/s1/xhr_send", "[\"x").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "Broken JSON encoding.")
    );
    let reply = post(&server, "/sockjs/000/s1/xhr_send", "{}").await;
    assert_eq!(reply.body, "Payload expected.");
    let reply = request(&server, Method::OPTIONS, "/sockjs/000/s1/xhr_send", &[], "").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        reply.header("access-control-allow-methods"),
        Some("OPTIONS, POST")
    );
}

#[tokio::test]
async fn xhr_streaming_has_a_prelude_and_a_response_limit() {
    let mut server = server(quick().response_limit(4096)).await;
    let response = server
        .send(
            Method::POST,
            "/sockjs/000/s1/xhr_streaming",
            &[],
            Bytes::new(),
        )
        .await;
    let mut stream = Streamed::new(response);
    assert_eq!(
        stream.headers["content-type"],
        "application/javascript; charset=UTF-8"
    );
    let prelude = stream.read_until("\n").await;
    assert_eq!(prelude, format!("{}\n", "h".repeat(2048)));
    assert_eq!(stream.read_until("\n").await, "o\n");
    let session = server.next_session().await;
    assert_eq!(session.protocol(), Some("xhr-streaming"));
    assert!(session.send("one").refused().is_none());
    assert_eq!(stream.read_until("\n").await, "a[\"one\"]\n");
    // Past the response limit, the response ends; the session lives on.
    assert!(session.send("x".repeat(5000)).refused().is_none());
    stream.read_until("\n").await;
    assert!(stream.ends().await);
    assert!(!session.is_closed());
    assert!(session.send("after").refused().is_none());
    let reply = post(&server, "/sockjs/000/s1/xhr", "").await;
    assert_eq!(reply.body, "a[\"after\"]\n");
}

#[tokio::test]
async fn a_second_receiver_is_turned_away() {
    let mut server = server(quick()).await;
    let _stream = open_streaming(&server, "/sockjs/000/s1/xhr_streaming").await;
    let session = server.next_session().await;
    let reply = post(&server, "/sockjs/000/s1/xhr", "").await;
    assert_eq!(reply.body, "c[2010,\"Another connection still open\"]\n");
    assert!(!session.is_closed());
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_receivers_alive() {
    const HEARTBEAT: Duration = Duration::from_millis(100);
    let mut server = server(quick().heartbeat_delay(HEARTBEAT)).await;
    let opened = Instant::now();
    let mut stream = open_streaming(&server, "/sockjs/000/s1/xhr_streaming").await;
    let _session = server.next_session().await;
    advance(HEARTBEAT - MILLISECOND).await;
    assert!(
        stream.has_nothing_new().await,
        "no heartbeat before the delay"
    );
    assert_eq!(stream.read_until("\n").await, "h\n");
    assert_eq!(Instant::now(), opened + HEARTBEAT);
    assert_eq!(stream.read_until("\n").await, "h\n");
    assert_eq!(Instant::now(), opened + 2 * HEARTBEAT);
}

#[tokio::test(start_paused = true)]
async fn closing_answers_with_the_close_frame_until_the_session_is_forgotten() {
    let mut server = server(quick()).await;
    let start = Instant::now();
    let mut stream = open_streaming(&server, "/sockjs/000/s1/xhr_streaming").await;
    let mut session = server.next_session().await;
    session.close("Go away!");
    assert_eq!(stream.read_until("\n").await, "c[3000,\"Go away!\"]\n");
    assert!(stream.ends().await);
    assert!(session.next().await.is_none());
    let reply = post(&server, "/sockjs/000/s1/xhr", "").await;
    assert_eq!(reply.body, "c[3000,\"Go away!\"]\n");
    // Until it is forgotten, the closed session takes sends and drops them.
    let reply = post(&server, "/sockjs/000/s1/xhr_send", "[\"x\"]").await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(session.next().await.is_none());
    // It is forgotten one disconnect delay after its last receiver, the
    // polling request above: no time has passed since the start.
    assert_eq!(Instant::now(), start);
    advance(DISCONNECT_DELAY - MILLISECOND).await;
    settle().await;
    assert_eq!(server.handle.session_count(), 1, "not forgotten yet");
    advance(MILLISECOND).await;
    settle().await;
    assert_eq!(server.handle.session_count(), 0, "forgotten at the delay");
    // Then the id is free for a new session.
    assert_eq!(post(&server, "/sockjs/000/s1/xhr", "").await.body, "o\n");
}

#[tokio::test]
async fn the_app_chooses_the_close_code() {
    let mut server = server(quick()).await;
    post(&server, "/sockjs/000/s1/xhr", "").await;
    let session = server.next_session().await;
    session.close_with_code(3456, "custom");
    assert_eq!(
        post(&server, "/sockjs/000/s1/xhr", "").await.body,
        "c[3456,\"custom\"]\n"
    );
}

#[tokio::test]
async fn a_close_without_a_reason_is_the_normal_closure() {
    // As sockjs-node's argument-less `conn.close()`: 1000 "Normal closure",
    // on every receiver until the session is forgotten.
    let mut server = server(quick()).await;
    let mut stream = open_streaming(&server, "/sockjs/000/s1/xhr_streaming").await;
    let session = server.next_session().await;
    session.close("");
    assert_eq!(
        stream.read_until("\n").await,
        "c[1000,\"Normal closure\"]\n"
    );
    assert!(stream.ends().await);
    assert_eq!(
        post(&server, "/sockjs/000/s1/xhr", "").await.body,
        "c[1000,\"Normal closure\"]\n"
    );

    // Over the `websocket` transport the frame, then the close frame.
    let mut client = ws_connect(&server, "/sockjs/000/s2/websocket").await;
    assert_eq!(ws_text(&mut client).await, "o");
    let session = server.next_session().await;
    session.close("");
    assert_eq!(ws_text(&mut client).await, "c[1000,\"Normal closure\"]");
    assert_eq!(ws_close(&mut client).await, (1000, "Normal closure".into()));

    // The raw endpoint has no frames of its own: the close frame says it.
    let mut client = ws_connect(&server, "/sockjs/websocket").await;
    let session = server.next_session().await;
    session.close("");
    assert_eq!(ws_close(&mut client).await, (1000, "Normal closure".into()));
}

#[tokio::test(start_paused = true)]
async fn a_session_without_receiver_times_out() {
    let mut server = server(quick()).await;
    let opened = Instant::now();
    post(&server, "/sockjs/000/s1/xhr", "").await;
    let session = server.next_session().await;
    advance(DISCONNECT_DELAY - MILLISECOND).await;
    settle().await;
    assert_eq!(session.close_reason(), None, "open until the delay");
    let reason = closed(&session).await;
    assert_eq!(reason, CloseReason::TimedOut);
    assert_eq!(
        Instant::now(),
        opened + DISCONNECT_DELAY,
        "closed at the delay"
    );
    assert_eq!(server.handle.session_count(), 0);
}

#[tokio::test]
async fn a_client_that_leaves_a_streaming_receiver_ends_the_session() {
    let mut server = server(quick().heartbeat_delay(Duration::from_millis(50))).await;
    let stream = open_streaming(&server, "/sockjs/000/s1/xhr_streaming").await;
    let session = server.next_session().await;
    drop(stream);
    let reason = closed(&session).await;
    assert_eq!(reason, CloseReason::ConnectionLost);
}

#[tokio::test]
async fn eventsource_frames_are_events() {
    let mut server = server(quick()).await;
    let response = server
        .send(Method::GET, "/sockjs/000/s1/eventsource", &[], Bytes::new())
        .await;
    let mut stream = Streamed::new(response);
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    assert_eq!(stream.read_until("\r\n").await, "\r\n");
    assert_eq!(stream.read_until("\r\n\r\n").await, "data: o\r\n\r\n");
    let session = server.next_session().await;
    assert!(session.send("50%\r\n").refused().is_none());
    assert_eq!(
        stream.read_until("\r\n\r\n").await,
        "data: a[\"50%25\\r\\n\"]\r\n\r\n"
    );
}

#[tokio::test]
async fn htmlfile_needs_a_valid_callback() {
    let mut server = server(quick()).await;
    let reply = server.get("/sockjs/000/s1/htmlfile").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "\"callback\" parameter required"
        )
    );
    let reply = server.get("/sockjs/000/s1/htmlfile?c=alert(1)").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid \"callback\" parameter"
        )
    );

    let response = server
        .send(
            Method::GET,
            "/sockjs/000/s1/htmlfile?c=%63allback",
            &[],
            Bytes::new(),
        )
        .await;
    let mut stream = Streamed::new(response);
    assert_eq!(stream.headers["content-type"], "text/html; charset=UTF-8");
    let page = stream.read_until("\r\n\r\n").await;
    assert!(page.len() > 1024);
    assert!(page.contains("var c = parent.callback;"));
    assert_eq!(
        stream.read_until("</script>\r\n").await,
        "<script>\np(\"o\");\n</script>\r\n"
    );
    let session = server.next_session().await;
    assert!(session.send("</script>").refused().is_none());
    assert_eq!(
        stream.read_until("</script>\r\n").await,
        "<script>\np(\"a[\\\"\\u003c/script\\u003e\\\"]\");\n</script>\r\n"
    );
}

#[tokio::test]
async fn jsonp_polling_and_sending() {
    let mut server = server(quick()).await;
    let reply = server.get("/sockjs/000/s1/jsonp").await;
    assert_eq!(reply.body, "\"callback\" parameter required");
    let reply = server
        .get(&format!("/sockjs/000/s1/jsonp?c={}", "x".repeat(33)))
        .await;
    assert_eq!(reply.body, "invalid \"callback\" parameter");
    let reply = server.get("/sockjs/000/s1/jsonp?c=cb.f").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "/**/cb.f(\"o\");\r\n");
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        reply.header("content-type"),
        Some("application/javascript; charset=UTF-8")
    );
    let mut session = server.next_session().await;

    let reply = request(
        &server,
        Method::POST,
        "/sockjs/000/s1/jsonp_send",
        &[("content-type", "application/x-www-form-urlencoded")],
        "d=%5B%22form%22%5D",
    )
    .await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(reply.header("content-length"), Some("2"));
    let reply = request(
        &server,
        Method::POST,
        "/sockjs/000/s1/jsonp_send",
        &[("content-type", "text/plain")],
        r#"["raw"]"#,
    )
    .await;
    assert_eq!(reply.body, "ok");
    assert_eq!(recv(&mut session).await, Message::Text("form".into()));
    assert_eq!(recv(&mut session).await, Message::Text("raw".into()));
    let reply = request(
        &server,
        Method::POST,
        "/sockjs/000/s1/jsonp_send",
        &[("content-type", "application/x-www-form-urlencoded")],
        "d=",
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "Payload expected.")
    );
    assert!(session.send("back").refused().is_none());
    assert_eq!(
        server.get("/sockjs/000/s1/jsonp?c=cb").await.body,
        "/**/cb(\"a[\\\"back\\\"]\");\r\n"
    );
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(server: &TestServer, path: &str) -> Client {
    let url = format!("ws://{}{path}", server.addr);
    // With TCP_NODELAY, as the server's sockets: a small frame written
    // right after another must not wait ~40 ms for the server's delayed
    // acknowledgement, a wait in which a paused clock jumps to the next timer.
    within(tokio_tungstenite::connect_async_with_config(
        url, None, true,
    ))
    .await
    .unwrap()
    .unwrap()
    .0
}

async fn ws_text(client: &mut Client) -> String {
    loop {
        match within(client.next()).await.unwrap() {
            Some(Ok(WsMessage::Text(text))) => return text.as_str().to_owned(),
            Some(Ok(WsMessage::Close(frame))) => panic!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

async fn ws_close_code(client: &mut Client) -> u16 {
    ws_close(client).await.0
}

async fn ws_close(client: &mut Client) -> (u16, String) {
    loop {
        match within(client.next()).await.unwrap() {
            Some(Ok(WsMessage::Close(Some(frame)))) => {
                return (frame.code.into(), frame.reason.as_str().to_owned())
            }
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn websocket_transport_carries_sockjs_frames() {
    const HEARTBEAT: Duration = Duration::from_millis(200);
    let mut server = server(quick().heartbeat_delay(HEARTBEAT)).await;
    let mut client = ws_connect(&server, "/sockjs/000/s1/websocket").await;
    assert_eq!(ws_text(&mut client).await, "o");
    let mut session = server.next_session().await;
    assert_eq!(session.protocol(), Some("websocket"));
    client.send(WsMessage::text(r#"["a","b"]"#)).await.unwrap();
    client.send(WsMessage::text(r#""c""#)).await.unwrap();
    client.send(WsMessage::text("")).await.unwrap();
    for expected in ["a", "b", "c"] {
        assert_eq!(recv(&mut session).await, Message::Text(expected.into()));
    }
    assert!(session.send("back").refused().is_none());
    assert_eq!(ws_text(&mut client).await, "a[\"back\"]");
    // A heartbeat follows one delay after the last frame.
    let written = Instant::now();
    assert_eq!(ws_text(&mut client).await, "h");
    assert_eq!(Instant::now(), written + HEARTBEAT);
    session.close("bye");
    assert_eq!(ws_text(&mut client).await, "c[3000,\"bye\"]");
    assert_eq!(ws_close_code(&mut client).await, 1000);
}

#[tokio::test]
async fn websocket_broken_framing_closes_the_session() {
    let mut server = server(quick()).await;
    let mut client = ws_connect(&server, "/sockjs/000/s1/websocket").await;
    ws_text(&mut client).await;
    let session = server.next_session().await;
    client.send(WsMessage::text("[\"a")).await.unwrap();
    // As sockjs-node: one close frame, 3000 "Broken framing.", and no `c[...]` frame before it.
    match within(client.next()).await.unwrap() {
        Some(Ok(WsMessage::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 3000);
            assert_eq!(frame.reason.as_str(), "Broken framing.");
        }
        other => panic!("expected the close frame, got {other:?}"),
    }
    let reason = closed(&session).await;
    assert!(
        matches!(reason, CloseReason::Failed { code: 3000, .. }),
        "{reason:?}"
    );
}

#[tokio::test]
async fn the_peer_closing_a_websocket_ends_the_session() {
    let mut server = server(quick()).await;
    let mut client = ws_connect(&server, "/sockjs/000/s1/websocket").await;
    ws_text(&mut client).await;
    let session = server.next_session().await;
    client.close(None).await.unwrap();
    let reason = closed(&session).await;
    assert!(matches!(reason, CloseReason::Peer { .. }), "{reason:?}");
    // The session leaves the registry once its connection is done; shutdown
    // waits for that (and has nothing left to close).
    server.handle.shutdown(PATIENCE).await;
    assert_eq!(server.handle.session_count(), 0);
}

#[tokio::test]
async fn websocket_handshake_errors() {
    let server = server(quick()).await;
    let reply = server.get("/sockjs/000/s1/websocket").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "Can \"Upgrade\" only to \"WebSocket\"."
        )
    );
    let reply = request(
        &server,
        Method::GET,
        "/sockjs/000/s1/websocket",
        &[("upgrade", "websocket"), ("connection", "close")],
        "",
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            StatusCode::BAD_REQUEST,
            "\"Connection\" must be \"Upgrade\"."
        )
    );
    assert_eq!(
        post(&server, "/sockjs/000/s1/websocket", "").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn sockjs_websocket_speaks_hixie_76() {
    let mut server = server(quick()).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = "GET /sockjs/000/s1/websocket HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key2: 1_ tx7X d  <  nw  334J702) 7]o}` 0\r\nUpgrade: WebSocket\r\n\
        Sec-WebSocket-Key1: 18x 6]8vM;54 *(5:  {   U1]8  z [  8\r\nOrigin: http://example.com\r\n\r\nTm[K T2u";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 256];
    let expected_tail: &[u8] = b"fQJ,fN/4F4!~K~MH\x00o\xff";
    while !received.ends_with(expected_tail) {
        let n = within(stream.read(&mut buffer)).await.unwrap().unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buffer[..n]);
    }
    assert!(received.starts_with(b"HTTP/1.1 101 WebSocket Protocol Handshake\r\n"));
    let mut session = server.next_session().await;
    stream.write_all(b"\x00[\"hixie\"]\xff").await.unwrap();
    assert_eq!(recv(&mut session).await, Message::Text("hixie".into()));
}

#[tokio::test]
async fn raw_websocket_has_no_framing() {
    let mut server = server(quick()).await;
    let mut client = ws_connect(&server, "/sockjs/websocket").await;
    let mut session = server.next_session().await;
    assert_eq!(session.protocol(), Some("websocket-raw"));
    client.send(WsMessage::text("plain")).await.unwrap();
    assert_eq!(recv(&mut session).await, Message::Text("plain".into()));
    assert!(session.send("back").refused().is_none());
    assert_eq!(ws_text(&mut client).await, "back");
}

#[tokio::test]
async fn websockets_can_be_turned_off() {
    let server = server(quick().websocket(false)).await;
    assert_eq!(
        server.get("/sockjs/websocket").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/sockjs/000/s1/websocket").await.status,
        StatusCode::NOT_FOUND
    );
    let info: serde_json::Value =
        serde_json::from_str(&server.get("/sockjs/info").await.body).unwrap();
    assert_eq!(info["websocket"], false);
}

#[tokio::test]
async fn jsessionid_cookie_and_disabled_cors() {
    let server = server(quick().jsessionid(true).disable_cors(true)).await;
    let reply = post(&server, "/sockjs/000/s1/xhr", "").await;
    assert_eq!(reply.header("set-cookie"), Some("JSESSIONID=dummy; path=/"));
    assert!(reply.header("access-control-allow-origin").is_none());
    let reply = request(
        &server,
        Method::POST,
        "/sockjs/000/s2/xhr",
        &[("cookie", "a=b; JSESSIONID=abc")],
        "",
    )
    .await;
    assert_eq!(reply.header("set-cookie"), Some("JSESSIONID=abc; path=/"));
    let info: serde_json::Value =
        serde_json::from_str(&server.get("/sockjs/info").await.body).unwrap();
    assert_eq!(info["cookie_needed"], true);
    assert!(info.get("origins").is_none());

    let custom = TestServer::start(ChannelConfig::new().sockjs(
        "/sockjs",
        quick().jsessionid_with(|_| Some("JSESSIONID=lb7; path=/; HttpOnly".into())),
    ))
    .await;
    let reply = post(&custom, "/sockjs/000/s1/xhr", "").await;
    assert_eq!(
        reply.header("set-cookie"),
        Some("JSESSIONID=lb7; path=/; HttpOnly")
    );
}

#[tokio::test]
async fn the_message_buffer_is_bounded() {
    let mut server = server(quick().max_queued_messages(3)).await;
    post(&server, "/sockjs/000/s1/xhr", "").await;
    let session = server.next_session().await;
    for n in 0..3 {
        assert!(session.send(n.to_string()).refused().is_none());
    }
    assert!(matches!(
        session.send("3").refused(),
        Some(axum_channel::SendError::QueueFull { limit: 3 })
    ));
}

#[tokio::test]
async fn sockjs_and_browserchannel_share_one_layer() {
    let server = TestServer::start(ChannelConfig::new().sockjs("/sockjs", quick())).await;
    assert_eq!(
        server.get("/channel/test?VER=8&MODE=init").await.body,
        "[null,null]"
    );
    assert_eq!(server.get("/sockjs").await.body, "Welcome to SockJS!\n");
    assert_eq!(server.get("/healthz").await.body, "ok");
}

#[tokio::test]
async fn by_default_only_the_servers_own_pages_may_connect_or_read() {
    let server = TestServer::start(ChannelConfig::new().sockjs("/sockjs", quick())).await;
    let own = format!("http://{}", server.addr);
    let evil = [("origin", "https://evil.example")];

    // Another origin can neither read /info nor open a session.
    let reply = request(&server, Method::GET, "/sockjs/info", &evil, "").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("access-control-allow-origin").is_none());
    let reply = request(&server, Method::POST, "/sockjs/000/e/xhr", &evil, "").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body, "Origin not allowed");
    assert!(reply.header("access-control-allow-origin").is_none());
    // A script load from another site carries no Origin but says so.
    let script = [("sec-fetch-site", "cross-site")];
    let reply = request(
        &server,
        Method::GET,
        "/sockjs/000/j/jsonp?c=steal",
        &script,
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(server.handle.session_count(), 0);

    // The server's own pages, and clients without an Origin, may.
    let reply = request(
        &server,
        Method::POST,
        "/sockjs/000/a/xhr",
        &[("origin", &own)],
        "",
    )
    .await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "o\n"));
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some(own.as_str())
    );
    let reply = request(&server, Method::POST, "/sockjs/000/b/xhr", &[], "").await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "o\n"));

    // The iframe page may only be framed by the server's own pages.
    let reply = request(&server, Method::GET, "/sockjs/iframe.html", &[], "").await;
    assert_eq!(
        reply.header("content-security-policy"),
        Some("frame-ancestors 'self'")
    );
}
