//! EventSource sessions over real HTTP.

use axum_channel::{Admit, ChannelConfig, CloseReason, EventSourceConfig, Rejection, SendError};
use bytes::Bytes;
use channel_tests::{settle, within, Streamed, TestServer};
use futures::{FutureExt, StreamExt};
use http::{Method, StatusCode};
use std::time::Duration;
use tokio::time::{advance, Instant};

async fn server(event_source: EventSourceConfig) -> TestServer {
    TestServer::start(ChannelConfig::new().event_source("/events", event_source)).await
}

async fn open(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Streamed {
    let response = server.send(Method::GET, path, headers, Bytes::new()).await;
    let mut stream = Streamed::new(response);
    // The opening padding comment ends with the first newline.
    let padding = stream.read_until("\n").await;
    assert_eq!(padding.len(), 2050);
    assert!(padding.starts_with(':'));
    stream
}

#[tokio::test]
async fn events_are_written_in_the_event_stream_format() {
    let mut server = server(
        EventSourceConfig::new()
            .retry(Duration::from_millis(1500))
            .header("access-control-allow-origin", "*"),
    )
    .await;
    let mut stream = open(&server, "/events", &[("cookie", "x=1")]).await;
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    assert_eq!(stream.headers["access-control-allow-origin"], "*");
    assert_eq!(stream.read_until("\n\n").await, "retry: 1500\n\n");

    let session = server.next_session().await;
    assert_eq!(session.transport().to_string(), "eventsource");
    assert!(session.headers().get("cookie").is_none());
    let written = session.send("hello");
    assert_eq!(stream.read_until("\n\n").await, "data: hello\n\n");
    within(written).await.unwrap().unwrap();
    assert!(session
        .send_event("line one\nline two", Some("update"), Some("42"))
        .refused()
        .is_none());
    assert_eq!(
        stream.read_until("\n\n").await,
        "event: update\nid: 42\ndata: line one\ndata: line two\n\n"
    );
    assert!(session
        .send(serde_json::json!({"n": 1}))
        .refused()
        .is_none());
    assert_eq!(stream.read_until("\n\n").await, "data: {\"n\":1}\n\n");
    assert!(session.ping("").refused().is_none());
    assert_eq!(stream.read_until("\n\n").await, ":\n\n");
    assert!(session.send_binary(vec![1u8]).refused().is_some());
}

#[tokio::test(start_paused = true)]
async fn the_ping_interval_writes_comments() {
    const INTERVAL: Duration = Duration::from_millis(50);
    let server = server(EventSourceConfig::new().ping_interval(INTERVAL)).await;
    let opened = Instant::now();
    let mut stream = open(&server, "/events", &[]).await;
    advance(INTERVAL - Duration::from_millis(1)).await;
    assert!(
        stream.has_nothing_new().await,
        "no ping before the interval"
    );
    assert_eq!(stream.read_until("\n\n").await, ":\n\n");
    assert_eq!(Instant::now(), opened + INTERVAL);
    assert_eq!(stream.read_until("\n\n").await, ":\n\n");
    assert_eq!(Instant::now(), opened + 2 * INTERVAL);
}

#[tokio::test]
async fn last_event_id_comes_from_the_header_or_the_query() {
    let mut server = server(EventSourceConfig::new()).await;
    let _stream = open(&server, "/events", &[("last-event-id", "17")]).await;
    assert_eq!(server.next_session().await.last_event_id(), Some("17"));
    let _stream = open(&server, "/events?lastEventId=23", &[]).await;
    assert_eq!(server.next_session().await.last_event_id(), Some("23"));
    let _stream = open(&server, "/events", &[]).await;
    assert_eq!(server.next_session().await.last_event_id(), None);
}

#[tokio::test]
async fn receiving_yields_nothing_and_ends_at_close() {
    let mut server = server(EventSourceConfig::new()).await;
    let mut stream = open(&server, "/events", &[]).await;
    let mut session = server.next_session().await;
    settle().await;
    assert!(
        session.next().now_or_never().is_none(),
        "nothing to receive while open"
    );
    session.close("bye");
    assert!(session.next().await.is_none());
    assert!(stream.ends().await, "the response ends");
    assert_eq!(
        session.send("late").await,
        Err(SendError::Closed(CloseReason::Closed("bye".into())))
    );
    assert_eq!(server.handle.session_count(), 0);
}

#[tokio::test]
async fn a_client_that_leaves_closes_the_session() {
    let mut server = server(EventSourceConfig::new()).await;
    let stream = open(&server, "/events", &[]).await;
    let session = server.next_session().await;
    drop(stream);
    // The server notices the closed connection when it next writes, so
    // write until it does: each ping resolves once written (or refused
    // once the session has closed).
    let reason = within(async {
        loop {
            let ping = session.ping("");
            tokio::select! {
                biased;
                reason = session.closed() => break reason,
                _ = ping => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(reason, CloseReason::ConnectionLost);
}

#[tokio::test]
async fn the_event_queue_is_bounded_and_other_methods_refused() {
    let mut server = server(EventSourceConfig::new().max_queued_events(4)).await;
    let response = server.send(Method::GET, "/events", &[], Bytes::new()).await;
    let session = server.next_session().await;
    // Nobody reads the response, so events pile up until the bound.
    let refused = (0..10_000)
        .map(|n| session.send("x".repeat(1000) + &n.to_string()))
        .filter(|d| matches!(d.refused(), Some(SendError::QueueFull { limit: 4 })))
        .count();
    assert!(refused > 0);
    drop(response);
    let post = server
        .send(Method::POST, "/events", &[], Bytes::new())
        .await;
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_authorisation_hook_applies() {
    let server = TestServer::start(
        ChannelConfig::new()
            .event_source("/events", EventSourceConfig::new())
            .authorize(|request| async move {
                match request.uri().query() {
                    Some("token=ok") => Ok(Admit::new()),
                    _ => Err(Rejection::forbidden("Forbidden")),
                }
            }),
    )
    .await;
    assert_eq!(server.get("/events").await.status, StatusCode::FORBIDDEN);
    let response = server
        .send(Method::GET, "/events?token=ok", &[], Bytes::new())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_session_count_is_bounded() {
    // The same answer as the other transports once `max_sessions` are open.
    let mut server = TestServer::start(
        ChannelConfig::new()
            .max_sessions(1)
            .event_source("/events", EventSourceConfig::new()),
    )
    .await;
    let _first = open(&server, "/events", &[]).await;
    server.next_session().await;
    let reply = server.get("/events").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body, "Too many sessions");
    assert_eq!(server.handle.session_count(), 1);
    assert!(
        server.sessions.try_recv().is_err(),
        "no second session reached the app"
    );
}
