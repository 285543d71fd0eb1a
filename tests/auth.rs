//! The authorisation hook behind an axum middleware: it reads what the
//! middleware put in the request's extensions, refuses with the status and
//! reason the client sees, and names the user in the session's span.

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use axum_channel::{
    Admit, ChannelConfig, ChannelLayer, EventSourceConfig, Rejection, SessionRequest,
};
use bytes::Bytes;
use channel_tests::{Reply, TestServer};
use http::{Method, StatusCode};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// Who the app's auth middleware found.
#[derive(Clone, Debug, PartialEq)]
struct CurrentUser {
    id: u64,
    name: String,
}

/// An auth middleware as an app would have one: `Authorization: Bearer
/// <name>` becomes a `CurrentUser` in the request's extensions.
async fn authenticate(mut request: Request, next: Next) -> Response {
    let user = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|name| CurrentUser {
            id: 7,
            name: name.to_owned(),
        });
    if let Some(user) = user {
        request.extensions_mut().insert(user);
    }
    next.run(request).await
}

async fn hook(request: SessionRequest) -> Result<Admit, Rejection> {
    let user = request
        .extensions()
        .get::<CurrentUser>()
        .cloned()
        .ok_or_else(|| Rejection::unauthorized("log in first"))?;
    Ok(Admit::new().user_id(user.id.to_string()).with(user))
}

/// The values recorded for the `user` field of spans named `session`.
#[derive(Clone, Default)]
struct UserFields(Arc<Mutex<Vec<String>>>);

struct UserVisitor<'a>(&'a mut Vec<String>);

impl Visit for UserVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "user" {
            self.0.push(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "user" {
            self.0.push(format!("{value:?}"));
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for UserFields {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        if attrs.metadata().name() == "session" {
            attrs.record(&mut UserVisitor(&mut self.0.lock().unwrap()));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if ctx.span(id).is_some_and(|span| span.name() == "session") {
            values.record(&mut UserVisitor(&mut self.0.lock().unwrap()));
        }
    }
}

/// The `user` fields recorded in this test process. The subscriber is the
/// process's global one, installed before any test of it opens a session:
/// tracing caches whether a span is wanted when it first meets it, for
/// every thread.
fn recorded_users() -> &'static UserFields {
    static USERS: std::sync::OnceLock<UserFields> = std::sync::OnceLock::new();
    USERS.get_or_init(|| {
        let users = UserFields::default();
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(users.clone()))
            .expect("the only global subscriber of this test process");
        users
    })
}

#[tokio::test]
async fn the_hook_reads_the_middlewares_user_and_refuses_with_a_reason() {
    let users = recorded_users();

    let (tx, sessions) = mpsc::unbounded_channel();
    let layer = ChannelLayer::new(
        ChannelConfig::new()
            .event_source("/events", EventSourceConfig::new())
            .authorize(hook)
            .on_session(move |session| {
                let _ = tx.send(session);
                async {}
            }),
    );
    let handle = layer.handle();
    // The middleware runs before the layer: it wraps it.
    let app = Router::new()
        .layer(layer)
        .layer(middleware::from_fn(authenticate));
    let mut server = TestServer::serve(app, sessions, handle).await;

    let refused = Reply::read(server.send(Method::GET, "/events", &[], Bytes::new()).await).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body, "log in first");
    assert_eq!(server.handle.session_count(), 0);

    let response = server
        .send(
            Method::GET,
            "/events",
            &[("authorization", "Bearer ada")],
            Bytes::new(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = server.next_session().await;
    assert_eq!(
        session.extensions().get::<CurrentUser>(),
        Some(&CurrentUser {
            id: 7,
            name: "ada".into()
        })
    );
    // No other session of this process has a user.
    // No other session of this process has a user.
    assert_eq!(*users.0.lock().unwrap(), ["7"], "the span names the user");
}

#[test]
fn apps_can_build_session_requests_for_their_own_tests() {
    let (mut parts, ()) = http::Request::get("/ws").body(()).unwrap().into_parts();
    parts.extensions.insert(CurrentUser {
        id: 1,
        name: "grace".into(),
    });
    let request = SessionRequest::new(parts, axum_channel::Transport::WebSocket)
        .with_remote_addr("192.0.2.1:4000".parse().unwrap());
    assert!(futures::executor::block_on(hook(request)).is_ok());
    let (parts, ()) = http::Request::get("/ws").body(()).unwrap().into_parts();
    let refused = futures::executor::block_on(hook(SessionRequest::new(
        parts,
        axum_channel::Transport::WebSocket,
    )));
    assert_eq!(refused.unwrap_err().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(start_paused = true)]
async fn one_address_gets_its_share_of_sessions_and_no_more_often_than_its_rate() {
    // Sessions of this process open only once the subscriber is in place.
    recorded_users();
    let mut server = TestServer::start(
        ChannelConfig::new()
            .event_source("/events", EventSourceConfig::new())
            .max_sessions_per_address(2)
            .session_rate_per_address(1.0, 4),
    )
    .await;
    async fn open(server: &TestServer) -> hyper::Response<hyper::body::Incoming> {
        server.send(Method::GET, "/events", &[], Bytes::new()).await
    }
    // Two streams from 127.0.0.1: its share.
    let first = open(&server).await;
    let second = open(&server).await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let first_session = server.next_session().await;
    let second_session = server.next_session().await;
    let crowded = Reply::read(open(&server).await).await;
    assert_eq!(crowded.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(crowded.body, "Too many sessions from this address");

    // One stream ends: its place comes back (the fourth token of the burst).
    drop(first);
    first_session.closed().await;
    let third = open(&server).await;
    assert_eq!(third.status(), StatusCode::OK);
    let third_session = server.next_session().await;
    drop((second, third));
    second_session.closed().await;
    third_session.closed().await;

    // Places are free, but the burst is spent (the crowded request took a
    // token too): the next waits for the rate.
    let early = Reply::read(open(&server).await).await;
    assert_eq!(early.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(early.body, "Too many new sessions from this address");
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    let refilled = open(&server).await;
    assert_eq!(refilled.status(), StatusCode::OK);
}
