//! Minimal protocol clients for tests that need many messages in flight:
//! a BrowserChannel client that behaves as the Closure client does (one
//! forward POST at a time, `AID` on every request, a new back channel as
//! soon as one ends), a SockJS `xhr_streaming` client, and a WebSocket
//! connect.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

type Http = Client<HttpConnector, Full<Bytes>>;

/// A tokio-tungstenite client socket.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `path` on `addr`.
pub async fn websocket(addr: SocketAddr, path: &str) -> Ws {
    let (socket, _) = crate::within(tokio_tungstenite::connect_async(format!(
        "ws://{addr}{path}"
    )))
    .await
    .expect("the handshake finished in time")
    .expect("the server accepted the WebSocket");
    socket
}

fn http() -> Http {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build(connector)
}

async fn request(
    http: &Http,
    method: Method,
    url: String,
    body: String,
) -> hyper::Response<hyper::body::Incoming> {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    http.request(request)
        .await
        .expect("the request went through")
}

/// Splits complete length-prefixed chunks off `buffer` and returns their arrays.
fn take_arrays(buffer: &mut Vec<u8>) -> Vec<Value> {
    let mut arrays = Vec::new();
    while let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
        let length: usize = std::str::from_utf8(&buffer[..newline])
            .unwrap()
            .parse()
            .expect("a length prefix");
        if buffer.len() < newline + 1 + length {
            break;
        }
        let chunk: Value = serde_json::from_slice(&buffer[newline + 1..newline + 1 + length])
            .expect("a JSON chunk");
        buffer.drain(..newline + 1 + length);
        arrays.extend(chunk.as_array().cloned().unwrap_or_default());
    }
    arrays
}

/// A BrowserChannel client session.
pub struct BcClient {
    http: Http,
    base: String,
    sid: String,
    last_array: Arc<AtomicI64>,
    next_rid: AtomicU64,
    next_map: AtomicU64,
}

impl BcClient {
    /// Opens a session on the server at `addr` and starts its back channel;
    /// the receiver yields the data of every array the app sent, in order.
    pub async fn open(addr: SocketAddr) -> (Self, mpsc::UnboundedReceiver<Value>) {
        let http = http();
        let base = format!("http://{addr}/channel/bind?VER=8");
        let response = request(
            &http,
            Method::POST,
            format!("{base}&RID=1000&CVER=1"),
            "count=0".into(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        let arrays = take_arrays(&mut body);
        let sid = arrays[0][1][1].as_str().unwrap().to_owned();
        let last = arrays.last().and_then(|a| a[0].as_i64()).unwrap_or(0);
        let last_array = Arc::new(AtomicI64::new(last));
        let (arrived, received) = mpsc::unbounded_channel();
        tokio::spawn(back_channel(
            http.clone(),
            format!("{base}&SID={sid}&RID=rpc&CI=0&TYPE=xmlhttp"),
            last_array.clone(),
            arrived,
        ));
        let client = Self {
            http,
            base,
            sid,
            last_array,
            next_rid: AtomicU64::new(1001),
            next_map: AtomicU64::new(0),
        };
        (client, received)
    }

    /// Sends strings as one forward channel POST and waits for its answer.
    pub async fn send(&self, texts: &[String]) {
        let maps = texts.iter().map(|text| ("_S", text.clone())).collect();
        self.post_maps(maps).await;
    }

    /// Sends JSON values as `JSON` maps in one forward channel POST.
    pub async fn send_json(&self, values: &[Value]) {
        let maps = values.iter().map(|v| ("JSON", v.to_string())).collect();
        self.post_maps(maps).await;
    }

    async fn post_maps(&self, maps: Vec<(&str, String)>) {
        let offset = self
            .next_map
            .fetch_add(maps.len() as u64, Ordering::Relaxed);
        let mut body = format!("count={}&ofs={offset}", maps.len());
        for (index, (key, value)) in maps.iter().enumerate() {
            let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            body.push_str(&format!("&req{index}_{key}={encoded}"));
        }
        let rid = self.next_rid.fetch_add(1, Ordering::Relaxed);
        let url = format!(
            "{}&SID={}&RID={rid}&AID={}",
            self.base,
            self.sid,
            self.last_array.load(Ordering::Relaxed)
        );
        let response = request(&self.http, Method::POST, url, body).await;
        assert_eq!(response.status(), StatusCode::OK, "forward channel refused");
        response.into_body().collect().await.unwrap();
    }
}

/// Reads back channels one after the other, each asking with the last
/// array id received, until the session is gone.
async fn back_channel(
    http: Http,
    url: String,
    last_array: Arc<AtomicI64>,
    arrived: mpsc::UnboundedSender<Value>,
) {
    loop {
        let aid = last_array.load(Ordering::Relaxed);
        let response = request(
            &http,
            Method::GET,
            format!("{url}&AID={aid}"),
            String::new(),
        )
        .await;
        if response.status() != StatusCode::OK {
            return;
        }
        let mut body = response.into_body();
        let mut buffer = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buffer.extend_from_slice(&data);
            for array in take_arrays(&mut buffer) {
                let id = array[0].as_i64().unwrap();
                // A new back channel may resend what the last one carried.
                if id <= last_array.load(Ordering::Relaxed) {
                    continue;
                }
                last_array.store(id, Ordering::Relaxed);
                let data = array[1].clone();
                if data == Value::from(vec!["noop"]) {
                    continue;
                }
                if arrived.send(data).is_err() {
                    return;
                }
            }
        }
    }
}

/// A SockJS session over `xhr_streaming`, sending with `xhr_send`.
pub struct SockJsXhrClient {
    http: Http,
    base: String,
}

impl SockJsXhrClient {
    /// Opens session `id` under `/sockjs` and keeps a streaming receiver
    /// attached, opening a new one whenever one ends; the receiver yields
    /// every message the app sent, in order.
    pub async fn open(addr: SocketAddr, id: &str) -> (Self, mpsc::UnboundedReceiver<String>) {
        let http = http();
        let base = format!("http://{addr}/sockjs/000/{id}");
        let (arrived, received) = mpsc::unbounded_channel();
        let (opened, is_open) = tokio::sync::oneshot::channel();
        tokio::spawn(streaming(http.clone(), base.clone(), arrived, opened));
        is_open.await.expect("the session opened");
        (Self { http, base }, received)
    }

    /// Sends messages as one `xhr_send` and waits for its answer.
    pub async fn send(&self, messages: &[String]) {
        let body = serde_json::to_string(messages).unwrap();
        let response = request(
            &self.http,
            Method::POST,
            format!("{}/xhr_send", self.base),
            body,
        )
        .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        response.into_body().collect().await.unwrap();
    }
}

async fn streaming(
    http: Http,
    base: String,
    arrived: mpsc::UnboundedSender<String>,
    opened: tokio::sync::oneshot::Sender<()>,
) {
    let mut opened = Some(opened);
    loop {
        let response = request(
            &http,
            Method::POST,
            format!("{base}/xhr_streaming"),
            String::new(),
        )
        .await;
        let mut body = response.into_body();
        let mut buffer = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buffer.extend_from_slice(&data);
            while let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=newline).collect();
                let line = std::str::from_utf8(&line[..line.len() - 1]).unwrap();
                match line.as_bytes().first() {
                    Some(b'o') => {
                        if let Some(opened) = opened.take() {
                            let _ = opened.send(());
                        }
                    }
                    Some(b'a') => {
                        let messages: Vec<String> = serde_json::from_str(&line[1..]).unwrap();
                        for message in messages {
                            if arrived.send(message).is_err() {
                                return;
                            }
                        }
                    }
                    Some(b'c') => return,
                    _ => {}
                }
            }
        }
    }
}
