//! Helpers for driving a real server over real HTTP in tests.

pub mod clients;

use axum::routing::get;
use axum::Router;
use axum_channel::{ChannelConfig, ChannelHandle, ChannelLayer, CloseReason, Message, Session};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a test waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A server on a free loopback port, with the channel layer and a `/healthz` route.
pub struct TestServer {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// Every session the layer opened, in order.
    pub sessions: mpsc::UnboundedReceiver<Session>,
    /// The layer's handle.
    pub handle: ChannelHandle,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
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
        let client = Client::builder(TokioExecutor::new()).build_http();
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
        tokio::time::timeout(PATIENCE, self.client.request(request))
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
        tokio::time::timeout(PATIENCE, self.sessions.recv())
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
        let bytes = tokio::time::timeout(PATIENCE, body.collect())
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
        tokio::time::timeout(PATIENCE, async {
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
        tokio::time::timeout(PATIENCE, async {
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
        let rest = tokio::time::timeout(PATIENCE, self.body.collect())
            .await
            .expect("the body ended in time")
            .unwrap()
            .to_bytes();
        self.buffer.push_str(std::str::from_utf8(&rest).unwrap());
        self.buffer
    }

    /// True when the body ends within `wait` with nothing more in it.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        matches!(
            tokio::time::timeout(wait, self.body.frame()).await,
            Ok(None)
        )
    }
}

/// The session's next message; fails the test if none comes in time.
pub async fn recv(session: &mut Session) -> Message {
    tokio::time::timeout(PATIENCE, session.next())
        .await
        .expect("a message arrived in time")
        .expect("the session is open")
}

/// Why the session closed; fails the test if it does not close in time.
pub async fn closed(session: &Session) -> CloseReason {
    tokio::time::timeout(PATIENCE, session.closed())
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
