//! `axum_channel::serve`: its timeouts, upgrades, connect info, graceful
//! shutdown and connection cap, over real loopback TCP.
//!
//! Timeouts are tested on Tokio's paused clock: when every task waits, the
//! clock jumps to the next timer, so a 10 s timeout takes no real time, and
//! each test waits for the event (an end of file), never for the clock.

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use axum_channel::{serve, ChannelConfig, ChannelLayer, Message, WebSocketConfig};
use channel_tests::{settle, within};
use futures::{SinkExt, StreamExt};
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn plain_app() -> Router {
    Router::new().route("/healthz", get(|| async { "ok" }))
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp
}

/// Reads until the server closes the connection; returns what arrived.
async fn read_to_eof(tcp: &mut TcpStream) -> String {
    let mut all = Vec::new();
    within(tcp.read_to_end(&mut all))
        .await
        .expect("the server closed the connection in time")
        .expect("a clean end of file");
    String::from_utf8_lossy(&all).into_owned()
}

/// Reads one whole response to a request for `/healthz` (body `ok`).
async fn read_ok_response(tcp: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    while !(seen.ends_with(b"\r\n\r\nok")) {
        let n = within(tcp.read(&mut buffer))
            .await
            .expect("the response came in time")
            .unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(start_paused = true)]
async fn a_half_sent_request_head_is_cut_off_at_the_header_read_timeout() {
    let (listener, addr) = listener().await;
    tokio::spawn(
        serve(listener, plain_app())
            .header_read_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(60))
            .into_future(),
    );
    let start = Instant::now();
    let mut tcp = connect(addr).await;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    settle().await;
    let answer = read_to_eof(&mut tcp).await;
    let waited = start.elapsed();
    assert_eq!(answer, "", "closed without an answer");
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "closed after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_sends_nothing_is_closed_at_the_header_read_timeout() {
    let (listener, addr) = listener().await;
    tokio::spawn(serve(listener, plain_app()).into_future());
    let start = Instant::now();
    let mut tcp = connect(addr).await;
    assert_eq!(read_to_eof(&mut tcp).await, "");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "the default is 10 s; closed after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_kept_alive_connection_is_closed_at_the_idle_timeout() {
    let (listener, addr) = listener().await;
    tokio::spawn(
        serve(listener, plain_app())
            .header_read_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(30))
            .into_future(),
    );
    let mut tcp = connect(addr).await;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let response = read_ok_response(&mut tcp).await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let idle_since = Instant::now();
    // Longer than the header read timeout: the idle timeout is what applies.
    assert_eq!(read_to_eof(&mut tcp).await, "");
    let waited = idle_since.elapsed();
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "closed after {waited:?} idle"
    );
}

#[tokio::test(start_paused = true)]
async fn a_kept_alive_connection_serves_requests_until_idle_and_then_times_the_next_head() {
    let (listener, addr) = listener().await;
    tokio::spawn(
        serve(listener, plain_app())
            .header_read_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(30))
            .into_future(),
    );
    let mut tcp = connect(addr).await;
    // Three requests, 20 s apart: each is within the idle timeout of the last.
    for _ in 0..3 {
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        read_ok_response(&mut tcp).await;
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    // 20 s into the idle time, the first bytes of a head: from now on the
    // head is due within the header read timeout, past the idle deadline.
    let started = Instant::now();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    settle().await;
    assert_eq!(read_to_eof(&mut tcp).await, "");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "closed {waited:?} after the head began"
    );
}

#[tokio::test]
async fn the_handler_sees_the_peer_address_as_connect_info() {
    let (listener, addr) = listener().await;
    let app = Router::new().route(
        "/peer",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
    );
    tokio::spawn(serve(listener, app).into_future());
    let mut tcp = connect(addr).await;
    let me = tcp.local_addr().unwrap();
    tcp.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let response = read_to_eof(&mut tcp).await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.ends_with(&format!("\r\n\r\n{me}")),
        "expected {me}: {response}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_websocket_upgrade_through_serve_reaches_the_layer_and_echoes() {
    let (listener, addr) = listener().await;
    let peers = Arc::new(Mutex::new(Vec::new()));
    let seen = peers.clone();
    let config = ChannelConfig::new()
        .websocket("/ws", WebSocketConfig::new())
        .on_session(move |mut session| {
            seen.lock().unwrap().push(session.remote_addr());
            async move {
                while let Some(message) = session.next().await {
                    if let Message::Text(text) = message {
                        drop(session.send(text));
                    }
                }
            }
        });
    let app = plain_app().layer(ChannelLayer::new(config));
    tokio::spawn(
        serve(listener, app)
            // The upgraded connection is outside the HTTP timeouts.
            .header_read_timeout(Duration::from_millis(200))
            .idle_timeout(Duration::from_millis(200))
            .into_future(),
    );
    let tcp = connect(addr).await;
    let me = tcp.local_addr().unwrap();
    let (mut socket, response) = within(tokio_tungstenite::client_async(
        format!("ws://{addr}/ws"),
        tcp,
    ))
    .await
    .expect("the handshake finished in time")
    .expect("the server accepted the WebSocket");
    assert_eq!(response.status(), 101);
    for text in ["hello", "again"] {
        // Well past both HTTP timeouts: they no longer apply.
        tokio::time::sleep(Duration::from_secs(1)).await;
        socket.send(tungstenite::Message::text(text)).await.unwrap();
        let echo = within(socket.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(echo, tungstenite::Message::text(text));
    }
    assert_eq!(*peers.lock().unwrap(), vec![Some(me)]);
}

#[tokio::test]
async fn graceful_shutdown_lets_a_request_in_flight_finish() {
    let (listener, addr) = listener().await;
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let (release_tx, release) = oneshot::channel::<()>();
    let release = Arc::new(Mutex::new(Some(release)));
    let app = plain_app().route(
        "/slow",
        get(move || {
            let started = started_tx.clone();
            let release = release.lock().unwrap().take().expect("one slow request");
            async move {
                let _ = started.send(());
                let _ = release.await;
                "finished"
            }
        }),
    );
    let (stop_tx, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(
        serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.await;
            })
            .into_future(),
    );
    // An idle kept-alive connection, and one with a request in flight.
    let mut idle = connect(addr).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_ok_response(&mut idle).await;
    let mut busy = connect(addr).await;
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    within(started.recv()).await.unwrap().unwrap();
    // And one that sent half a request head (no request in flight yet).
    let mut partial = connect(addr).await;
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    settle().await;

    stop_tx.send(()).unwrap();
    // The idle and partial connections are closed at once; the server
    // waits for the request in flight.
    assert_eq!(read_to_eof(&mut idle).await, "");
    assert_eq!(read_to_eof(&mut partial).await, "");
    settle().await;
    assert!(!server.is_finished(), "the request in flight is awaited");
    // No new connection is served any more.
    let refused = TcpStream::connect(addr).await;
    assert!(refused.is_err(), "the listener is closed");

    release_tx.send(()).unwrap();
    let response = read_to_eof(&mut busy).await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nfinished"), "{response}");
    within(server)
        .await
        .expect("the server finished in time")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn past_the_connection_cap_the_next_connection_waits_for_a_slot() {
    let (listener, addr) = listener().await;
    tokio::spawn(
        serve(listener, plain_app())
            .max_connections(1)
            .into_future(),
    );
    let mut first = connect(addr).await;
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_ok_response(&mut first).await;
    // The kernel completes the handshake (the backlog), but the server
    // does not accept it while the first connection is open.
    let mut second = connect(addr).await;
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // Whatever the server would do without the clock moving, it has done.
    settle().await;
    let mut byte = [0u8; 1];
    let early = futures::FutureExt::now_or_never(second.read(&mut byte));
    assert!(early.is_none(), "no answer while at the cap: {early:?}");
    drop(first);
    let response = read_to_eof(&mut second).await;
    assert!(response.ends_with("\r\n\r\nok"), "{response}");
}

#[tokio::test(start_paused = true)]
async fn a_long_streaming_response_outlives_both_timeouts() {
    let (listener, addr) = listener().await;
    let app = plain_app().route(
        "/stream",
        get(|| async {
            let opening = futures::stream::once(async {
                Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(b"o\n"))
            });
            axum::body::Body::from_stream(opening.chain(futures::stream::pending()))
        }),
    );
    tokio::spawn(
        serve(listener, app)
            .header_read_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(30))
            .into_future(),
    );
    let mut tcp = connect(addr).await;
    tcp.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 1024];
    while !seen.ends_with(b"o\n\r\n") {
        let n = within(tcp.read(&mut buffer)).await.unwrap().unwrap();
        assert!(n > 0, "closed early");
        seen.extend_from_slice(&buffer[..n]);
    }
    tokio::time::sleep(Duration::from_secs(600)).await;
    settle().await;
    match tcp.try_read(&mut buffer) {
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the stream should still be open and silent: {other:?}"),
    }
}
