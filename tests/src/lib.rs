//! Helpers for driving a real server over real HTTP in tests.

pub mod clients;
pub mod redis;

use axum::routing::get;
use axum::Router;
use axum_channel::{ChannelConfig, ChannelHandle, ChannelLayer, CloseReason, Message, Session};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long, in real time, a test waits for something that should happen
/// at once. Only a stuck test ever waits this long: tests synchronise on
/// events, never on the clock.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// [`within`] ran out of [`PATIENCE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfPatience;

/// Waits for `future`, but at most [`PATIENCE`] of real time.
///
/// The bound runs on a runtime of its own, so it is kept in real time even
/// in tests that pause Tokio's clock. A Tokio timeout there would be one
/// more timer for the paused clock to jump to whenever the runtime has
/// nothing to do: it would cut short the wait for any session timer due
/// after it, and could fire, with no real time spent, while bytes still
/// sat in the kernel (a small write that Nagle's algorithm holds back).
pub async fn within<F: IntoFuture>(future: F) -> Result<F::Output, OutOfPatience> {
    static WATCHDOG: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let watchdog = WATCHDOG.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("patience")
            .enable_time()
            .build()
            .expect("the watchdog runtime starts")
    });
    // The sleep is made inside the task, so on the watchdog's clock.
    let alarm = watchdog.spawn(async { tokio::time::sleep(PATIENCE).await });
    struct Disarm(tokio::task::AbortHandle);
    impl Drop for Disarm {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _disarm = Disarm(alarm.abort_handle());
    tokio::select! {
        biased;
        output = future.into_future() => Ok(output),
        _ = alarm => Err(OutOfPatience),
    }
}

/// Lets every other task of the test's runtime run, and its sockets be
/// polled, many times over, without moving a paused clock: afterwards,
/// whatever was bound to happen without the clock moving has happened.
///
/// In the current-thread runtime of a test, each `yield_now` returns once
/// the runtime has run the tasks that were ready and polled its sockets
/// and timers; a request, its processing and its answer take a handful of
/// such rounds.
pub async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

/// A server on a free loopback port, with the channel layer and a `/healthz` route.
pub struct TestServer {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// Every session the layer opened, in order.
    pub sessions: mpsc::UnboundedReceiver<Session>,
    /// The layer's handle.
    pub handle: ChannelHandle,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl TestServer {
    /// Starts a server whose sessions are handed to the test.
    pub async fn start(config: ChannelConfig) -> Self {
        let (tx, sessions) = mpsc::unbounded_channel();
        let config = config.on_session(move |session| {
            let _ = tx.send(session);
            async {}
        });
        let layer = ChannelLayer::new(config);
        let handle = layer.handle();
        let app = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/channelx/test", get(|| async { "app route" }))
            .layer(layer);
        Self::serve(app, sessions, handle).await
    }

    /// Serves any router; `sessions` and `handle` belong to its layer.
    pub async fn serve(
        app: Router,
        sessions: mpsc::UnboundedReceiver<Session>,
        handle: ChannelHandle,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // As every app should: small writes go out at once, not after the
        // peer's delayed acknowledgement.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        // The client too: a request written in pieces must not wait for
        // the server's delayed acknowledgement, a wait of ~40 ms in which a
        // paused clock would jump to the next timer.
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            addr,
            sessions,
            handle,
            client,
        }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request and returns the response with its body unread.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> hyper::Response<Incoming> {
        let mut request = Request::builder().method(method).uri(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).unwrap();
        within(self.client.request(request))
            .await
            .expect("the server answered in time")
            .expect("the request went through")
    }

    /// A GET whose whole body is read.
    pub async fn get(&self, path: &str) -> Reply {
        let response = self.send(Method::GET, path, &[], Bytes::new()).await;
        Reply::read(response).await
    }

    /// A url-encoded POST whose whole body is read.
    pub async fn post(&self, path: &str, body: &str) -> Reply {
        let response = self
            .send(
                Method::POST,
                path,
                &[("content-type", "application/x-www-form-urlencoded")],
                body.to_owned(),
            )
            .await;
        Reply::read(response).await
    }

    /// The next session the layer opened.
    pub async fn next_session(&mut self) -> Session {
        within(self.sessions.recv())
            .await
            .expect("a session opened in time")
            .expect("the layer is alive")
    }

    /// Opens a BrowserChannel session; returns its id and the app's `Session`.
    pub async fn open_session(&mut self) -> (String, Session) {
        let reply = self
            .post("/channel/bind?VER=8&RID=1000&CVER=7", "count=0")
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let chunks = parse_chunks(&reply.body);
        let arrays: serde_json::Value = serde_json::from_str(&chunks[0]).unwrap();
        let sid = arrays[0][1][1].as_str().unwrap().to_owned();
        let session = self.next_session().await;
        assert_eq!(session.id(), sid);
        (sid, session)
    }
}

/// A response whose body has been read whole.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// Reads the whole body of `response`.
    pub async fn read(response: hyper::Response<Incoming>) -> Self {
        let (parts, body) = response.into_parts();
        let bytes = within(body.collect())
            .await
            .expect("the body ended in time")
            .unwrap()
            .to_bytes();
        Self {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A streamed response read piece by piece, as a back channel client does.
pub struct Streamed {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    body: Incoming,
    buffer: String,
}

impl Streamed {
    /// Starts reading `response`.
    pub fn new(response: hyper::Response<Incoming>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status,
            headers: parts.headers,
            body,
            buffer: String::new(),
        }
    }

    /// Reads until the buffer holds `needle`; returns everything up to and
    /// including it and keeps the rest.
    pub async fn read_until(&mut self, needle: &str) -> String {
        within(async {
            loop {
                if let Some(index) = self.buffer.find(needle) {
                    let rest = self.buffer.split_off(index + needle.len());
                    return std::mem::replace(&mut self.buffer, rest);
                }
                match self.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                        }
                    }
                    other => panic!(
                        "body ended before {needle:?} (have {:?}, got {other:?})",
                        self.buffer
                    ),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{needle:?} never arrived; have {:?}", self.buffer))
    }

    /// Reads one length-prefixed chunk.
    pub async fn next_chunk(&mut self) -> String {
        let length = self.read_until("\n").await;
        let length: usize = length.trim_end().parse().expect("a length prefix");
        within(async {
            while self.buffer.len() < length {
                match self.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                        }
                    }
                    other => panic!("body ended inside a chunk: {other:?}"),
                }
            }
        })
        .await
        .expect("the chunk arrived in time");
        let rest = self.buffer.split_off(length);
        std::mem::replace(&mut self.buffer, rest)
    }

    /// Reads one chunk of arrays as JSON.
    pub async fn next_arrays(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.next_chunk().await).unwrap()
    }

    /// Reads to the end; returns what was left.
    pub async fn read_to_end(mut self) -> String {
        let rest = within(self.body.collect())
            .await
            .expect("the body ended in time")
            .unwrap()
            .to_bytes();
        self.buffer.push_str(std::str::from_utf8(&rest).unwrap());
        self.buffer
    }

    /// Waits for the body to end; true when it ends with nothing more in it.
    pub async fn ends(&mut self) -> bool {
        matches!(within(self.body.frame()).await, Ok(None))
    }

    /// True when nothing more has arrived, not even the end of the body,
    /// once the runtime has [`settle`]d. Whatever did arrive is kept.
    ///
    /// This is a snapshot, not a wait: to show that nothing comes before
    /// a deadline, pause the clock, advance it to just before the deadline
    /// and call this, then advance past the deadline and see it come.
    pub async fn has_nothing_new(&mut self) -> bool {
        settle().await;
        if !self.buffer.is_empty() {
            return false;
        }
        match self.body.frame().now_or_never() {
            None => true,
            Some(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                }
                false
            }
            Some(_) => false,
        }
    }
}

/// The session's next message; fails the test if none comes in time.
pub async fn recv(session: &mut Session) -> Message {
    within(session.next())
        .await
        .expect("a message arrived in time")
        .expect("the session is open")
}

/// Why the session closed; fails the test if it does not close in time.
pub async fn closed(session: &Session) -> CloseReason {
    within(session.closed())
        .await
        .expect("the session closed in time")
}

/// Splits a body of length-prefixed chunks (`len\npayload...`).
pub fn parse_chunks(body: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (length, tail) = rest.split_once('\n').expect("a length line");
        let length: usize = length.parse().expect("a numeric length");
        chunks.push(tail[..length].to_owned());
        rest = &tail[length..];
    }
    chunks
}
