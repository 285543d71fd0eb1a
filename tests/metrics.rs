//! The layer's counters and gauges, read through a debugging recorder.

use axum::routing::get;
use axum::Router;
use axum_channel::{ChannelConfig, ChannelLayer, EventSourceConfig, SockJsConfig, WebSocketConfig};
use bytes::Bytes;
use channel_tests::{closed, recv, within, Reply, Streamed, TestServer};
use futures::SinkExt;
use http::{Method, StatusCode};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Totals of every metric across snapshots: a debugging snapshot hands
/// out what changed since the last one (gauges that only go up and down
/// by steps sum the same way).
struct Totals {
    snapshotter: Snapshotter,
    values: Vec<Total>,
}

/// A metric's name, its labels, and its total.
type Total = (String, Vec<(String, String)>, f64);

impl Totals {
    fn new(snapshotter: Snapshotter) -> Self {
        Self {
            snapshotter,
            values: Vec::new(),
        }
    }

    fn get(&mut self, name: &str, labels: &[(&str, &str)]) -> f64 {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let delta = match value {
                DebugValue::Counter(count) => count as f64,
                DebugValue::Gauge(gauge) => gauge.into_inner(),
                DebugValue::Histogram(_) => continue,
            };
            match self
                .values
                .iter_mut()
                .find(|(n, l, _)| n == key.name() && *l == labels)
            {
                Some((_, _, total)) => *total += delta,
                None => self.values.push((key.name().to_owned(), labels, delta)),
            }
        }
        self.values
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, total)| total)
            .sum()
    }
}

#[tokio::test]
async fn sessions_messages_and_bytes_are_counted() {
    let recorder = DebuggingRecorder::new();
    let mut totals = Totals::new(recorder.snapshotter());
    let (sessions_tx, sessions) = tokio::sync::mpsc::unbounded_channel();
    let config = ChannelConfig::new()
        .websocket("/ws", WebSocketConfig::new())
        .on_session(move |session| {
            let _ = sessions_tx.send(session);
            async {}
        });
    // The layer registers its metrics with the recorder installed when it is built.
    let layer = metrics::with_local_recorder(&recorder, || ChannelLayer::new(config));
    let handle = layer.handle();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .layer(layer);
    let mut server = TestServer::serve(app, sessions, handle).await;

    let (mut client, _) = within(tokio_tungstenite::connect_async(format!(
        "ws://{}/ws",
        server.addr
    )))
    .await
    .unwrap()
    .unwrap();
    let mut session = server.next_session().await;
    let open = [("transport", "websocket")];
    assert_eq!(totals.get("channel_sessions_open", &open), 1.0);
    assert_eq!(totals.get("channel_sessions_opened_total", &open), 1.0);

    client.send(WsMessage::text("in")).await.unwrap();
    recv(&mut session).await;
    session.send("out!").await.unwrap();
    assert_eq!(totals.get("channel_messages_received_total", &open), 1.0);
    assert_eq!(totals.get("channel_messages_sent_total", &open), 1.0);
    assert_eq!(totals.get("channel_bytes_sent_total", &open), 4.0);

    session.join("r").await.unwrap();
    server.handle.broadcast("b").to("r").send().await.unwrap();
    assert_eq!(totals.get("channel_broadcasts_total", &[]), 1.0);
    assert_eq!(totals.get("channel_broadcast_recipients_total", &[]), 1.0);

    client.close(None).await.unwrap();
    closed(&session).await;
    server
        .handle
        .shutdown(std::time::Duration::from_secs(5))
        .await;
    assert_eq!(totals.get("channel_sessions_open", &open), 0.0);
    assert_eq!(
        totals.get(
            "channel_sessions_closed_total",
            &[("transport", "websocket"), ("reason", "peer")]
        ),
        1.0
    );
}

/// A server whose layer records its metrics in `Totals` of its own.
async fn metered(config: ChannelConfig) -> (TestServer, Totals) {
    let recorder = DebuggingRecorder::new();
    let totals = Totals::new(recorder.snapshotter());
    let (sessions_tx, sessions) = tokio::sync::mpsc::unbounded_channel();
    let config = config.on_session(move |session| {
        let _ = sessions_tx.send(session);
        async {}
    });
    let layer = metrics::with_local_recorder(&recorder, || ChannelLayer::new(config));
    let handle = layer.handle();
    let app = Router::new().layer(layer);
    (TestServer::serve(app, sessions, handle).await, totals)
}

/// Checks that one session of `transport` is counted, once.
fn assert_one_open(totals: &mut Totals, transport: &str) {
    let labels = [("transport", transport)];
    assert_eq!(
        totals.get("channel_sessions_open", &labels),
        1.0,
        "{transport}"
    );
    assert_eq!(
        totals.get("channel_sessions_opened_total", &labels),
        1.0,
        "{transport}"
    );
}

/// Starts a hixie-76 handshake but holds back its last 8 bytes, which the
/// server reads only after its `101` answer: the session is made only once
/// they come.
async fn hold_hixie_handshake(server: &TestServer, path: &str) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key2: 1_ tx7X d  <  nw  334J702) 7]o}}` 0\r\nUpgrade: WebSocket\r\n\
         Sec-WebSocket-Key1: 18x 6]8vM;54 *(5:  {{   U1]8  z [  8\r\n\
         Origin: http://example.com\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = within(stream.read(&mut byte)).await.unwrap().unwrap();
        assert_eq!(n, 1, "closed in the handshake");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// Sends the held-back bytes of [`hold_hixie_handshake`]; the server
/// answers the challenge and the session opens in the place its handshake
/// took.
async fn finish_hixie(mut stream: tokio::net::TcpStream) -> tokio::net::TcpStream {
    stream.write_all(b"Tm[K T2u").await.unwrap();
    let mut answer = [0u8; 16];
    within(stream.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&answer, b"fQJ,fN/4F4!~K~MH");
    stream
}

/// A WebSocket handshake to `path` that must be refused with 503, before
/// any upgrade.
async fn refused_websocket(server: &TestServer, path: &str) {
    let url = format!("ws://{}{path}", server.addr);
    match within(tokio_tungstenite::connect_async(url)).await.unwrap() {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE)
        }
        other => panic!("expected a 503, got {other:?}"),
    }
}

#[tokio::test]
async fn sessions_refused_at_the_bound_are_not_counted() {
    // BrowserChannel: the second is refused before it is made.
    let (mut server, mut totals) = metered(ChannelConfig::new().max_sessions(1)).await;
    server.open_session().await;
    let reply = server.post("/channel/bind?VER=8&RID=1", "count=0").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_one_open(&mut totals, "browserchannel");

    // EventSource: the same answer.
    let (mut server, mut totals) = metered(
        ChannelConfig::new()
            .max_sessions(1)
            .event_source("/events", EventSourceConfig::new()),
    )
    .await;
    let mut first = Streamed::new(server.send(Method::GET, "/events", &[], Bytes::new()).await);
    first.read_until("\n").await;
    server.next_session().await;
    let reply = Reply::read(server.send(Method::GET, "/events", &[], Bytes::new()).await).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body, "Too many sessions");
    assert_one_open(&mut totals, "eventsource");
    assert_eq!(server.handle.session_count(), 1);

    // WebSocket: a handshake answered takes its place at once (before its
    // session is made), so another is refused with 503, before any upgrade.
    let (mut server, mut totals) = metered(
        ChannelConfig::new()
            .max_sessions(1)
            .websocket("/ws", WebSocketConfig::new().hixie76(true)),
    )
    .await;
    let held = hold_hixie_handshake(&server, "/ws").await;
    refused_websocket(&server, "/ws").await;
    let _held = finish_hixie(held).await;
    server.next_session().await;
    assert_one_open(&mut totals, "websocket");

    // SockJS: over HTTP the second is refused before it is made; over its
    // `websocket` transport, as a WebSocket is.
    let sockjs = || {
        ChannelConfig::new()
            .max_sessions(1)
            .sockjs("/sockjs", SockJsConfig::new())
    };
    let (mut server, mut totals) = metered(sockjs()).await;
    let reply = Reply::read(
        server
            .send(Method::POST, "/sockjs/000/a/xhr", &[], Bytes::new())
            .await,
    )
    .await;
    assert_eq!(reply.body, "o\n");
    server.next_session().await;
    let reply = Reply::read(
        server
            .send(Method::POST, "/sockjs/000/b/xhr", &[], Bytes::new())
            .await,
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_one_open(&mut totals, "sockjs");

    let (mut server, mut totals) = metered(sockjs()).await;
    let held = hold_hixie_handshake(&server, "/sockjs/000/a/websocket").await;
    refused_websocket(&server, "/sockjs/000/b/websocket").await;
    let _held = finish_hixie(held).await;
    server.next_session().await;
    assert_one_open(&mut totals, "sockjs");
}
