//! The layer takes only requests under its prefix, on `Router::layer` and
//! under `Router::nest`, and serves the client library when configured.

use axum::routing::get;
use axum::Router;
use axum_channel::{BrowserChannelConfig, ChannelConfig, ChannelLayer};
use bytes::Bytes;
use channel_tests::{Reply, TestServer};
use http::{Method, StatusCode};

fn layer(
    config: ChannelConfig,
) -> (
    ChannelLayer,
    tokio::sync::mpsc::UnboundedReceiver<axum_channel::Session>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let layer = ChannelLayer::new(config.on_session(move |session| {
        let _ = tx.send(session);
        async {}
    }));
    (layer, rx)
}

#[tokio::test]
async fn other_paths_pass_through_to_the_app() {
    let server = TestServer::start(ChannelConfig::new()).await;
    let reply = server.get("/healthz").await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ok"));
    // `/channelx` is not under `/channel`.
    let reply = server.get("/channelx/test?VER=8&MODE=init").await;
    assert_eq!(reply.body, "app route");
    let reply = server.get("/channel").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(
        reply.headers.get("x-content-type-options").is_none(),
        "the app's own 404"
    );
}

#[tokio::test]
async fn a_custom_prefix_is_normalized() {
    let (layer, sessions) =
        layer(ChannelConfig::new().browserchannel("rt/bc/", BrowserChannelConfig::new()));
    let handle = layer.handle();
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .layer(layer);
    let server = TestServer::serve(app, sessions, handle).await;
    let reply = server.get("/rt/bc/test?VER=8&MODE=init").await;
    assert_eq!(reply.body, "[null,null]");
    let reply = server.get("/channel/test?VER=8&MODE=init").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_layer_works_inside_a_nested_router() {
    let (layer, sessions) = layer(ChannelConfig::new());
    let handle = layer.handle();
    // A nested router hands unmatched paths to its own fallback only when
    // it has one, so the layer goes on after the fallback.
    let inner = Router::new()
        .route("/status", get(|| async { "nested ok" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "nested fallback") })
        .layer(layer);
    let app = Router::new().nest("/api", inner);
    let mut server = TestServer::serve(app, sessions, handle).await;
    let reply = server.get("/api/status").await;
    assert_eq!(reply.body, "nested ok");
    let reply = server.get("/api/channel/test?VER=8&MODE=init").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "[null,null]");
    let reply = server
        .post("/api/channel/bind?VER=8&RID=1", "count=0")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    server.next_session().await;
    let reply = server.get("/api/other").await;
    assert_eq!(reply.body, "nested fallback");
}

#[tokio::test]
async fn the_client_library_is_served_with_etag_and_head() {
    let dir = std::env::temp_dir().join(format!("bcsocket-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bcsocket.js");
    std::fs::write(&path, "window.BCSocket = function () {};").unwrap();
    let server = TestServer::start(ChannelConfig::new().browserchannel(
        "/channel",
        BrowserChannelConfig::new().client_library(&path),
    ))
    .await;

    let reply = server.get("/channel/bcsocket.js").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "window.BCSocket = function () {};");
    assert_eq!(reply.header("content-type"), Some("application/javascript"));
    let etag = reply.header("etag").unwrap().to_owned();
    assert!(etag.starts_with("\"33-"), "{etag}");

    let head = server
        .send(Method::HEAD, "/channel/bcsocket.js", &[], Bytes::new())
        .await;
    let head = Reply::read(head).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), Some("33"));
    assert_eq!(head.body, "");

    let cached = server
        .send(
            Method::GET,
            "/channel/bcsocket.js",
            &[("if-none-match", etag.as_str())],
            Bytes::new(),
        )
        .await;
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    let unconfigured = TestServer::start(ChannelConfig::new()).await;
    assert_eq!(
        unconfigured.get("/channel/bcsocket.js").await.status,
        StatusCode::NOT_FOUND
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn allowed_origins_may_read_browserchannel_replies() {
    let server =
        TestServer::start(ChannelConfig::new().allowed_origins(["https://app.example"])).await;
    let read = |origin: &'static str| {
        let server = &server;
        async move {
            Reply::read(
                server
                    .send(
                        Method::GET,
                        "/channel/test?VER=8&MODE=init",
                        &[("origin", origin)],
                        Bytes::new(),
                    )
                    .await,
            )
            .await
        }
    };
    let allowed = read("https://app.example").await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        allowed.header("access-control-allow-credentials"),
        Some("true")
    );
    let other = read("https://evil.example").await;
    assert_eq!(other.header("access-control-allow-origin"), None);
    let refused = Reply::read(
        server
            .send(
                Method::POST,
                "/channel/bind?VER=8&RID=1",
                &[("origin", "https://evil.example")],
                "count=0",
            )
            .await,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body, "Origin not allowed");
}
