//! BrowserChannel v8 over real HTTP: every endpoint, every error, every bound.

use axum_channel::{
    Admit, BrowserChannelConfig, ChannelConfig, CloseReason, Message, Rejection, SendError,
};
use bytes::Bytes;
use channel_tests::{closed, parse_chunks, recv, settle, within, Streamed, TestServer};
use futures::{FutureExt, StreamExt};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::time::{advance, Instant};

const TEST_PHASE_DELAY: Duration = Duration::from_millis(300);
const MILLISECOND: Duration = Duration::from_millis(1);

fn quick() -> ChannelConfig {
    with(BrowserChannelConfig::new())
}

/// BrowserChannel under `/channel` with these settings and a quick test phase.
fn with(browserchannel: BrowserChannelConfig) -> ChannelConfig {
    ChannelConfig::new().browserchannel(
        "/channel",
        browserchannel.test_phase_delay(TEST_PHASE_DELAY),
    )
}

async fn back_channel(server: &TestServer, sid: &str, query: &str) -> Streamed {
    let path = format!("/channel/bind?VER=8&RID=rpc&SID={sid}&{query}");
    let response = server.send(Method::GET, &path, &[], Bytes::new()).await;
    Streamed::new(response)
}

fn assert_no_cache(headers: &http::HeaderMap) {
    assert_eq!(
        headers["cache-control"],
        "no-cache, no-store, max-age=0, must-revalidate"
    );
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(headers["expires"], "Fri, 01 Jan 1990 00:00:00 GMT");
    assert_eq!(headers["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn test_phase_one_answers_the_host_prefix() {
    let server = TestServer::start(quick()).await;
    let reply = server.get("/channel/test?VER=8&MODE=init&zx=abc&t=1").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "[null,null]");
    assert_eq!(
        reply.header("x-accept"),
        Some("application/json; application/x-www-form-urlencoded")
    );
    assert_no_cache(&reply.headers);

    let server =
        TestServer::start(with(BrowserChannelConfig::new().host_prefixes(["a", "b"]))).await;
    let reply = server.get("/channel/test?VER=8&MODE=init").await;
    assert!(
        reply.body == r#"["a",null]"# || reply.body == r#"["b",null]"#,
        "{}",
        reply.body
    );
}

#[tokio::test(start_paused = true)]
async fn test_phase_two_writes_11111_then_2_after_the_delay() {
    let server = TestServer::start(quick()).await;
    let start = Instant::now();
    let response = server
        .send(
            Method::GET,
            "/channel/test?VER=8&TYPE=xmlhttp",
            &[],
            Bytes::new(),
        )
        .await;
    let mut body = Streamed::new(response);
    assert_eq!(body.read_until("11111").await, "11111");
    assert_eq!(Instant::now(), start, "the first write is immediate");
    advance(TEST_PHASE_DELAY - MILLISECOND).await;
    assert!(
        body.has_nothing_new().await,
        "nothing more until the delay is over"
    );
    let rest = body.read_to_end().await;
    assert_eq!(rest, "2");
    assert_eq!(
        Instant::now(),
        start + TEST_PHASE_DELAY,
        "written at the delay"
    );
}

#[tokio::test]
async fn test_phase_two_in_html_is_a_script_page() {
    let server = TestServer::start(quick()).await;
    let reply = server
        .get("/channel/test?VER=8&TYPE=html&DOMAIN=example.com")
        .await;
    assert_eq!(reply.header("content-type"), Some("text/html"));
    let body = reply.body;
    assert!(body.starts_with(
        "<html><body><script>try{document.domain=\"example.com\";}catch(e){}</script>\n"
    ));
    let first = body.find("parent.m(\"11111\")").expect("first write");
    let second = body.find("parent.m(\"2\")").expect("second write");
    assert!(first < second);
    assert!(body.len() > 1024, "junk follows the first write");
    assert!(body.ends_with("<script>try{parent.d()}catch(e){}</script>\n"));
}

#[tokio::test]
async fn version_8_is_required() {
    let server = TestServer::start(quick()).await;
    for path in [
        "/channel/test?MODE=init",
        "/channel/test?VER=7",
        "/channel/bind?RID=1",
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(reply.body.contains("Version 8 required"), "{path}");
    }
}

#[tokio::test]
async fn opening_a_session_returns_the_c_array_and_hands_the_session_over() {
    let mut server = TestServer::start(quick()).await;
    let reply = server
        .send(
            Method::POST,
            "/channel/bind?VER=8&RID=5000&CVER=42&t=1",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", "secret=1"),
                ("x-custom", "yes"),
            ],
            "count=0",
        )
        .await;
    let reply = channel_tests::Reply::read(reply).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_no_cache(&reply.headers);
    let chunks = parse_chunks(&reply.body);
    assert_eq!(chunks.len(), 1);
    let arrays: Value = serde_json::from_str(&chunks[0]).unwrap();
    let sid = arrays[0][1][1].as_str().unwrap();
    assert_eq!(arrays, json!([[0, ["c", sid, null, 8]]]));
    assert_eq!(sid.len(), 32);
    assert!(sid.chars().all(|c| c.is_ascii_hexdigit()));

    let session = server.next_session().await;
    assert_eq!(session.id(), sid);
    assert_eq!(session.app_version(), Some("42"));
    assert_eq!(session.headers()["x-custom"], "yes");
    assert!(session.headers().get("cookie").is_none());
    assert!(session.remote_addr().unwrap().ip().is_loopback());
    assert_eq!(session.transport().to_string(), "browserchannel");
    assert_eq!(server.handle.session_count(), 1);
}

#[tokio::test]
async fn session_ids_are_unique() {
    let mut server = TestServer::start(quick()).await;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..50 {
        ids.insert(server.open_session().await.0);
    }
    assert_eq!(ids.len(), 50);
}

#[tokio::test]
async fn forward_channel_maps_reach_the_app_in_order() {
    let mut server = TestServer::start(quick()).await;
    let (sid, mut session) = server.open_session().await;
    let body = "count=3&ofs=0&req0_JSON=%7B%22n%22%3A%5B1%2C%22%C3%A9%22%5D%7D&req1__S=plain&req2_x=1&req2_y=two";
    let reply = server
        .post(
            &format!("/channel/bind?VER=8&SID={sid}&RID=1001&AID=0"),
            body,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    // No back channel; array 0 was sent in the opening reply and acknowledged.
    assert_eq!(parse_chunks(&reply.body), ["[0,0,0]"]);
    assert_eq!(
        recv(&mut session).await,
        Message::Json(json!({"n": [1, "é"]}))
    );
    assert_eq!(recv(&mut session).await, Message::Json(json!("plain")));
    let Message::Map(map) = recv(&mut session).await else {
        panic!("expected a raw map")
    };
    assert_eq!(map["x"], "1");
    assert_eq!(map["y"], "two");
}

#[tokio::test]
async fn json_forward_channel_bodies_are_accepted() {
    let mut server = TestServer::start(quick()).await;
    let (sid, mut session) = server.open_session().await;
    let response = server
        .send(
            Method::POST,
            &format!("/channel/bind?VER=8&SID={sid}&RID=1001"),
            &[("content-type", "application/json; charset=utf-8")],
            r#"{"ofs":0,"data":[{"a":1},[2],"three",null]}"#,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    for expected in [json!({"a": 1}), json!([2]), json!("three"), Value::Null] {
        assert_eq!(recv(&mut session).await, Message::Json(expected));
    }
}

#[tokio::test]
async fn out_of_order_and_repeated_posts_deliver_each_message_once() {
    let mut server = TestServer::start(quick()).await;
    let (sid, mut session) = server.open_session().await;
    let bind = |rid: u32| format!("/channel/bind?VER=8&SID={sid}&RID={rid}");
    server
        .post(&bind(1002), "count=1&ofs=1&req0__S=second")
        .await;
    server
        .post(&bind(1003), "count=1&ofs=2&req0__S=third")
        .await;
    server
        .post(&bind(1001), "count=1&ofs=0&req0__S=first")
        .await;
    // A retry repeats maps 1 and 2 and adds map 3.
    server
        .post(
            &bind(1003),
            "count=3&ofs=1&req0__S=second&req1__S=third&req2__S=fourth",
        )
        .await;
    for expected in ["first", "second", "third", "fourth"] {
        assert_eq!(recv(&mut session).await, Message::Json(json!(expected)));
    }
    server
        .post(&bind(1004), "count=1&ofs=0&req0__S=first")
        .await;
    // Messages reach the app in order, so the duplicate, had it been
    // delivered again, would come before the message posted after it.
    server
        .post(&bind(1005), "count=1&ofs=4&req0__S=fifth")
        .await;
    assert_eq!(
        recv(&mut session).await,
        Message::Json(json!("fifth")),
        "a duplicate was delivered again"
    );
    assert!(session.next().now_or_never().is_none(), "nothing else came");
}

#[tokio::test]
async fn back_channel_streams_arrays_and_acknowledgement_resolves_send() {
    let mut server = TestServer::start(quick()).await;
    let (sid, session) = server.open_session().await;
    let mut back = back_channel(&server, &sid, "CI=0&AID=0&TYPE=xmlhttp").await;
    assert_eq!(back.status, StatusCode::OK);
    assert_eq!(back.headers["content-type"], "text/plain");
    assert_no_cache(&back.headers);

    let delivery = session.send(json!({"hello": "wörld"}));
    let arrays = back.next_arrays().await;
    assert_eq!(arrays, json!([[1, {"hello": "wörld"}]]));
    let second = session.send("two");
    assert_eq!(back.next_arrays().await, json!([[2, "two"]]));

    // The forward channel reply reports the live back channel and what is unacknowledged.
    let reply = server
        .post(
            &format!("/channel/bind?VER=8&SID={sid}&RID=1001&AID=1"),
            "count=0",
        )
        .await;
    // Unacknowledged: array 2, whose data list `["two"]` is 7 characters.
    assert_eq!(parse_chunks(&reply.body), ["[1,2,7]"]);
    within(delivery).await.unwrap().unwrap();
    let mut second = Box::pin(second);
    settle().await;
    assert!(
        second.as_mut().now_or_never().is_none(),
        "array 2 is not acknowledged yet"
    );
    server
        .post(
            &format!("/channel/bind?VER=8&SID={sid}&RID=1002&AID=2"),
            "count=0",
        )
        .await;
    within(second).await.unwrap().unwrap();
}

#[tokio::test]
async fn non_ascii_data_keeps_length_prefixes_exact() {
    let mut server = TestServer::start(quick()).await;
    let (sid, session) = server.open_session().await;
    let mut back = back_channel(&server, &sid, "CI=0&AID=0&TYPE=xmlhttp").await;
    let text = "日本語 😀 \u{2028} </script>";
    assert!(session.send(text).refused().is_none());
    let chunk = back.next_chunk().await;
    assert!(chunk.is_ascii(), "{chunk}");
    assert_eq!(
        serde_json::from_str::<Value>(&chunk).unwrap(),
        json!([[1, text]])
    );
}

#[tokio::test]
async fn html_back_channel_wraps_chunks_in_scripts() {
    let mut server = TestServer::start(quick()).await;
    let (sid, session) = server.open_session().await;
    let mut back = back_channel(
        &server,
        &sid,
        "CI=0&AID=0&TYPE=html&DOMAIN=a%22%3C%2Fscript%3E",
    )
    .await;
    assert_eq!(back.headers["content-type"], "text/html");
    let prelude = back.read_until("</script>\n").await;
    assert_eq!(
        prelude,
        "<html><body><script>try{document.domain=\"a\\\"\\u003c/script\\u003e\";}catch(e){}</script>\n"
    );
    assert!(session.send("</script><b>").refused().is_none());
    let script = back.read_until("</script>\n").await;
    assert_eq!(
        script,
        "<script>try{parent.m(\"[[1,\\\"\\u003c/script\\u003e\\u003cb\\u003e\\\"]]\\n\")}catch(e){}</script>\n"
    );
    session.close("bye");
    let rest = back.read_to_end().await;
    assert!(rest.ends_with("<script>try{parent.d()}catch(e){}</script>\n"));
}

#[tokio::test]
async fn ci_1_closes_the_back_channel_after_each_chunk() {
    let mut server = TestServer::start(quick()).await;
    let (sid, session) = server.open_session().await;
    let mut back = back_channel(&server, &sid, "CI=1&AID=0&TYPE=xmlhttp").await;
    assert!(session.send(1).refused().is_none());
    assert_eq!(back.next_arrays().await, json!([[1, 1]]));
    assert!(back.ends().await);
    let reply = server
        .post(
            &format!("/channel/bind?VER=8&SID={sid}&RID=1001"),
            "count=0",
        )
        .await;
    assert_eq!(
        parse_chunks(&reply.body),
        ["[0,1,3]"],
        "no back channel is live"
    );
}

#[tokio::test]
async fn a_streaming_back_channel_ends_after_the_chunk_limit() {
    let mut server = TestServer::start(with(
        BrowserChannelConfig::new().back_channel_chunk_limit(100),
    ))
    .await;
    let (sid, session) = server.open_session().await;
    let mut back = back_channel(&server, &sid, "CI=0&AID=0&TYPE=xmlhttp").await;
    assert!(session.send("x".repeat(40)).refused().is_none());
    back.next_chunk().await;
    // Below the limit the back channel stays: the forward channel reply
    // reports it live (with array 1, `["x...x"]`, unacknowledged).
    let reply = server
        .post(
            &format!("/channel/bind?VER=8&SID={sid}&RID=1001"),
            "count=0",
        )
        .await;
    assert_eq!(
        parse_chunks(&reply.body),
        ["[1,1,44]"],
        "the back channel is live"
    );
    assert!(
        back.has_nothing_new().await,
        "the back channel has not ended"
    );
    assert!(session.send("y".repeat(80)).refused().is_none());
    back.next_chunk().await;
    assert!(back.ends().await);
}

#[tokio::test]
async fn a_new_back_channel_replaces_the_old_and_resends_unacknowledged_arrays() {
    let mut server = TestServer::start(quick()).await;
    let (sid, session) = server.open_session().await;
    let mut first = back_channel(&server, &sid, "CI=0&AID=0&TYPE=xmlhttp").await;
    assert!(session.send("a").refused().is_none());
    assert!(session.send("b").refused().is_none());
    // Both may leave in one chunk or two.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        for array in first.next_arrays().await.as_array().unwrap() {
            seen.push(array.clone());
        }
    }
    assert_eq!(seen, vec![json!([1, "a"]), json!([2, "b"])]);
    // The client saw array 1 only; its new back channel gets array 2 again.
    let mut second = back_channel(&server, &sid, "CI=0&AID=1&TYPE=xmlhttp").await;
    assert!(first.ends().await, "the old back channel ends");
    assert_eq!(second.next_arrays().await, json!([[2, "b"]]));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_are_noop_arrays() {
    const KEEP_ALIVE: Duration = Duration::from_millis(100);
    let mut server = TestServer::start(with(
        BrowserChannelConfig::new().keep_alive_interval(KEEP_ALIVE),
    ))
    .await;
    let (sid, _session) = server.open_session().await;
    let attached = Instant::now();
    let mut back = back_channel(&server, &sid, "CI=0&AID=0&TYPE=xmlhttp").await;
    advance(KEEP_ALIVE - MILLISECOND).await;
    assert!(
        back.has_nothing_new().await,
        "no heartbeat before the interval"
    );
    assert_eq!(back.next_arrays().await, json!([[1, ["noop"]]]));
    assert_eq!(Instant::now(), attached + KEEP_ALIVE);
    assert_eq!(back.next_arrays().await, json!([[2, ["noop"]]]));
    assert_eq!(Instant::now(), attached + 2 * KEEP_ALIVE);
}

#[tokio::test(start_paused = true)]
async fn sessions_without_a_back_channel_time_out() {
    const TIMEOUT: Duration = Duration::from_millis(200);
    let mut server =
        TestServer::start(with(BrowserChannelConfig::new().session_timeout(TIMEOUT))).await;
    let opened = Instant::now();
    let (sid, session) = server.open_session().await;
    advance(TIMEOUT - MILLISECOND).await;
    settle().await;
    assert_eq!(session.close_reason(), None, "open until the timeout");
    let reason = closed(&session).await;
    assert_eq!(reason, CloseReason::TimedOut);
    assert_eq!(Instant::now(), opened + TIMEOUT, "closed at the timeout");
    let reply = server
        .post(
            &format!("/channel/bind?VER=8&SID={sid}&RID=1001"),
            "count=0",
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("Unknown SID"));
    assert_eq!(server.handle.session_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_open_back_channel_keeps_the_session_alive() {
    const TIMEOUT: Duration = Duration::from_millis(150);
    let mut server = TestServer::start(with(
        BrowserChannelConfig::new()
            .session_timeout(TIMEOUT)
            .keep_alive_interval(Duration::from_secs(60)),
    ))
    .await;
    let (sid, session) = server.open_session().await;
    let back = back_channel(&server, &sid, "CI=0&AID=0&TYPE=xmlhttp").await;
    // Well past the session timeout, the open back channel keeps it.
    advance(Duration::from_millis(500)).await;
    settle().await;
    assert_eq!(session.close_reason(), None);
    // Once the client leaves, the timeout starts.
    drop(back);
    let left = Instant::now();
    settle().await;
    advance(TIMEOUT - MILLISECOND).await;
    settle().await;
    assert_eq!(session.close_reason(), None, "open until the timeout");
    let reason = closed(&session).await;
    assert_eq!(reason, CloseReason::TimedOut);
    assert_eq!(Instant::now(), left + TIMEOUT, "closed at the timeout");
}

#[tokio::test]
async fn reconnecting_with_osid_acknowledges_and_closes_the_old_session() {
    let mut server = TestServer::start(quick()).await;
    let (old_sid, old) = server.open_session().await;
    let mut back = back_channel(&server, &old_sid, "CI=0&AID=0&TYPE=xmlhttp").await;
    let acknowledged = old.send("seen");
    let lost = old.send("lost");
    let mut received = 0;
    while received < 2 {
        received += back.next_arrays().await.as_array().unwrap().len();
    }
    let reply = server
        .post(
            &format!("/channel/bind?VER=8&RID=2000&OSID={old_sid}&OAID=1"),
            "count=0",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let new = server.next_session().await;
    assert_ne!(new.id(), old_sid);
    within(acknowledged).await.unwrap().unwrap();
    assert_eq!(
        within(lost).await.unwrap(),
        Err(SendError::Closed(CloseReason::Reconnected))
    );
    assert_eq!(old.close_reason(), Some(CloseReason::Reconnected));
}

#[tokio::test]
async fn terminate_closes_the_session_once_earlier_requests_arrived() {
    let mut server = TestServer::start(quick()).await;
    let (sid, mut session) = server.open_session().await;
    // Terminate at RID 1002 arrives before forward request 1001.
    let reply = server
        .get(&format!(
            "/channel/bind?VER=8&SID={sid}&RID=1002&TYPE=terminate"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "");
    assert!(!session.is_closed());
    server
        .post(
            &format!("/channel/bind?VER=8&SID={sid}&RID=1001"),
            "count=1&ofs=0&req0__S=last+words",
        )
        .await;
    assert_eq!(recv(&mut session).await, Message::Json(json!("last words")));
    let reason = closed(&session).await;
    assert_eq!(reason, CloseReason::Disconnected);
    assert!(session.next().await.is_none(), "the stream ends");
}

#[tokio::test]
async fn stop_sends_the_stop_array() {
    let mut server = TestServer::start(quick()).await;
    let (sid, session) = server.open_session().await;
    let mut back = back_channel(&server, &sid, "CI=0&AID=0&TYPE=xmlhttp").await;
    session.stop();
    assert_eq!(back.next_arrays().await, json!([[1, ["stop"]]]));
    assert!(!session.is_closed());
}

#[tokio::test]
async fn close_fails_pending_sends_and_ends_the_back_channel() {
    let mut server = TestServer::start(quick()).await;
    let (sid, session) = server.open_session().await;
    let mut back = back_channel(&server, &sid, "CI=0&AID=0&TYPE=xmlhttp").await;
    let pending = session.send("unacknowledged");
    session.close("done here");
    // Arrays queued before the close are still flushed.
    assert_eq!(back.next_arrays().await, json!([[1, "unacknowledged"]]));
    assert!(back.ends().await);
    let error = within(pending).await.unwrap().unwrap_err();
    assert_eq!(
        error,
        SendError::Closed(CloseReason::Closed("done here".into()))
    );
    assert_eq!(
        session.send("late").await,
        Err(SendError::Closed(CloseReason::Closed("done here".into())))
    );
}

#[tokio::test]
async fn bad_data_is_refused_and_the_session_survives() {
    let mut server = TestServer::start(quick()).await;
    let (sid, mut session) = server.open_session().await;
    let bind = |rid: u32| format!("/channel/bind?VER=8&SID={sid}&RID={rid}");
    server.post(&bind(1001), "count=1&ofs=0&req0__S=kept").await;
    for body in [
        "count=1&ofs=1&req0_JSON=%7Bbroken",
        "count=two",
        "count=1&req0__S=x",
    ] {
        let reply = server.post(&bind(1002), body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.body.contains("Bad data"));
    }
    let response = server
        .send(
            Method::POST,
            &bind(1002),
            &[("content-type", "application/json")],
            "{not json",
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    server
        .post(&bind(1002), "count=1&ofs=1&req0__S=after")
        .await;
    assert_eq!(recv(&mut session).await, Message::Json(json!("kept")));
    assert_eq!(recv(&mut session).await, Message::Json(json!("after")));
    assert!(!session.is_closed());
}

#[tokio::test]
async fn bounds_give_clear_errors() {
    let mut server = TestServer::start(
        with(
            BrowserChannelConfig::new()
                .max_held_maps(2)
                .max_outgoing_arrays(3)
                .max_maps_per_request(50),
        )
        .max_request_body(1000),
    )
    .await;
    let (sid, mut session) = server.open_session().await;
    let bind = |rid: u32| format!("/channel/bind?VER=8&SID={sid}&RID={rid}");

    let big = format!("count=1&ofs=0&req0__S={}", "x".repeat(2000));
    let reply = server.post(&bind(1001), &big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    let reply = server
        .post(&bind(1001), "count=3&ofs=10&req0__S=a&req1__S=b&req2__S=c")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("out-of-order"), "{}", reply.body);

    let reply = server.post(&bind(1001), "count=51&ofs=0").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    for n in 0..3 {
        assert!(session.send(n).refused().is_none());
    }
    assert_eq!(
        session.send(3).await,
        Err(SendError::QueueFull { limit: 3 })
    );

    server.post(&bind(1001), "count=1&ofs=0&req0__S=fine").await;
    assert_eq!(recv(&mut session).await, Message::Json(json!("fine")));
}

#[tokio::test]
async fn the_session_count_is_bounded() {
    let mut server = TestServer::start(quick().max_sessions(2)).await;
    server.open_session().await;
    server.open_session().await;
    let reply = server.post("/channel/bind?VER=8&RID=1", "count=0").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.body.contains("Too many sessions"));
}

#[tokio::test]
async fn the_authorisation_hook_can_refuse_sessions() {
    let server = TestServer::start(quick().authorize(|request| async move {
        match request.headers().get("authorization") {
            Some(_) => Ok(Admit::new()),
            None => Err(Rejection::forbidden("Forbidden")),
        }
    }))
    .await;
    let refused = server.post("/channel/bind?VER=8&RID=1", "count=0").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(server.handle.session_count(), 0);
    let accepted = server
        .send(
            Method::POST,
            "/channel/bind?VER=8&RID=1",
            &[("authorization", "Bearer x")],
            "count=0",
        )
        .await;
    assert_eq!(accepted.status(), StatusCode::OK);
}

#[tokio::test]
async fn closing_in_the_callback_refuses_with_403() {
    let config = quick().on_session(|session| async move {
        if session.headers().get("x-banned").is_some() {
            session.close("banned");
        }
        let _keep_open = session;
        std::future::pending::<()>().await;
    });
    let layer = axum_channel::ChannelLayer::new(config);
    let handle = layer.handle();
    let app = axum::Router::new().layer(layer);
    let (_tx, sessions) = tokio::sync::mpsc::unbounded_channel();
    let server = TestServer::serve(app, sessions, handle).await;
    let refused = server
        .send(
            Method::POST,
            "/channel/bind?VER=8&RID=1",
            &[("x-banned", "1")],
            "count=0",
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let accepted = server.post("/channel/bind?VER=8&RID=1", "count=0").await;
    assert_eq!(accepted.status, StatusCode::OK);
    assert_eq!(server.handle.session_count(), 1);
}

#[tokio::test]
async fn unknown_sessions_methods_and_paths_are_errors() {
    let mut server = TestServer::start(quick()).await;
    let reply = server
        .get("/channel/bind?VER=8&SID=nope&RID=rpc&TYPE=xmlhttp&CI=0")
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("Unknown SID"));
    let reply = server
        .post("/channel/bind?VER=8&SID=nope&RID=5", "count=0")
        .await;
    assert!(reply.body.contains("Unknown SID"));
    let reply = server.get("/channel/bind?VER=8&RID=rpc&TYPE=xmlhttp").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let (sid, _session) = server.open_session().await;
    let reply = server
        .get(&format!("/channel/bind?VER=8&SID={sid}&RID=7&TYPE=xmlhttp"))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("Expected RPC"));
    let reply = server
        .get(&format!("/channel/bind?VER=8&SID={sid}&RID=rpc&TYPE=bogus"))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let response = server
        .send(Method::PUT, "/channel/bind?VER=8", &[], Bytes::new())
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = server
        .send(Method::POST, "/channel/test?VER=8", &[], Bytes::new())
        .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let reply = server.get("/channel/elsewhere").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_no_cache(&reply.headers);
}

#[tokio::test]
async fn close_all_ends_every_session() {
    let mut server = TestServer::start(quick()).await;
    let (sid, session) = server.open_session().await;
    let mut back = back_channel(&server, &sid, "CI=0&AID=0&TYPE=xmlhttp").await;
    server.handle.close_all();
    assert!(back.ends().await);
    assert_eq!(session.close_reason(), Some(CloseReason::Shutdown));
    assert_eq!(server.handle.session_count(), 0);
    // Clients reconnecting while the server drains are refused.
    let reply = server.post("/channel/bind?VER=8&RID=1", "count=0").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.handle.session_count(), 0);
    assert_eq!(
        server.get("/healthz").await.body,
        "ok",
        "the app's routes still answer"
    );
}

#[tokio::test]
async fn a_slow_reader_slows_the_client_but_loses_nothing() {
    let mut server = TestServer::start(quick().max_incoming_messages(2)).await;
    let (sid, mut session) = server.open_session().await;
    let body: String = std::iter::once("count=20&ofs=0".to_owned())
        .chain((0..20).map(|n| format!("&req{n}__S=m{n}")))
        .collect();
    let path = format!("/channel/bind?VER=8&SID={sid}&RID=1001");
    let post = server.post(&path, &body);
    let read = async {
        let mut got = Vec::new();
        for _ in 0..20 {
            got.push(recv(&mut session).await);
        }
        got
    };
    let (reply, got) = tokio::join!(post, read);
    assert_eq!(reply.status, StatusCode::OK);
    let expected: Vec<Message> = (0..20)
        .map(|n| Message::Json(json!(format!("m{n}"))))
        .collect();
    assert_eq!(got, expected);
}
