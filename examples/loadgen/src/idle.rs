//! Idle sessions: open N sessions of one transport, keep them open and
//! silent, and let the caller measure the server.

use bytes::Bytes;
use futures::{stream, StreamExt};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::net::{Ipv4Addr, SocketAddr};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;

type Error = crate::server::Error;
type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The transports an idle run can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The layer's native WebSocket (`/ws`).
    WebSocket,
    /// SockJS over its `websocket` transport.
    SockJsWebSocket,
    /// SockJS over `xhr_streaming`, the receiver held open.
    SockJsXhrStreaming,
    /// BrowserChannel with a live (streaming) back channel.
    BrowserChannel,
    /// An EventSource stream (`/events`).
    EventSource,
    /// A bare tokio-tungstenite server (the baseline), WebSocket at `/`.
    BareWebSocket,
    /// A bare axum server's streaming response (the baseline of HTTP transports).
    BareHttpStream,
    /// The same response served with hyper's HTTP/1 builder directly.
    BareHyperStream,
    /// The same response served with `axum_channel::serve`.
    BareServeStream,
}

impl Transport {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "websocket" => Transport::WebSocket,
            "sockjs-websocket" => Transport::SockJsWebSocket,
            "sockjs-xhr-streaming" => Transport::SockJsXhrStreaming,
            "browserchannel" => Transport::BrowserChannel,
            "eventsource" => Transport::EventSource,
            "bare-websocket" => Transport::BareWebSocket,
            "bare-http-stream" => Transport::BareHttpStream,
            "bare-hyper-stream" => Transport::BareHyperStream,
            "bare-serve-stream" => Transport::BareServeStream,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::SockJsWebSocket => "sockjs-websocket",
            Transport::SockJsXhrStreaming => "sockjs-xhr-streaming",
            Transport::BrowserChannel => "browserchannel",
            Transport::EventSource => "eventsource",
            Transport::BareWebSocket => "bare-websocket",
            Transport::BareHttpStream => "bare-http-stream",
            Transport::BareHyperStream => "bare-hyper-stream",
            Transport::BareServeStream => "bare-serve-stream",
        }
    }
}

/// Something that keeps one idle session open while it is alive.
pub enum Held {
    WebSocket(Box<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>>),
    /// The response body of a receiver, kept unread.
    Response {
        _body: Incoming,
    },
}

/// Connections from one source address; past it, the next loopback address
/// gives another range of ports.
const PER_SOURCE: usize = 20_000;

pub async fn tcp(server: SocketAddr, index: usize) -> Result<tokio::net::TcpStream, Error> {
    let socket = TcpSocket::new_v4()?;
    let source = Ipv4Addr::new(
        127,
        0,
        (1 + index / PER_SOURCE / 250) as u8,
        (1 + (index / PER_SOURCE) % 250) as u8,
    );
    socket.bind(SocketAddr::from((source, 0)))?;
    Ok(socket.connect(server).await?)
}

async fn websocket(server: SocketAddr, index: usize, path: String) -> Result<Held, Error> {
    let stream = tcp(server, index).await?;
    let url = format!("ws://{server}{path}");
    let (socket, _) = tokio_tungstenite::client_async(url, stream).await?;
    Ok(Held::WebSocket(Box::new(socket)))
}

async fn sockjs_websocket(server: SocketAddr, index: usize) -> Result<Held, Error> {
    let held = websocket(server, index, format!("/sockjs/000/idle{index}/websocket")).await?;
    let Held::WebSocket(mut socket) = held else {
        unreachable!()
    };
    match socket.next().await {
        Some(Ok(Message::Text(open))) if open.as_str() == "o" => Ok(Held::WebSocket(socket)),
        other => Err(format!("expected the open frame, got {other:?}").into()),
    }
}

/// Reads `response` until `needle` has arrived, and returns the rest of its body.
async fn read_until(response: hyper::Response<Incoming>, needle: &[u8]) -> Result<Incoming, Error> {
    if response.status() != StatusCode::OK {
        return Err(format!("status {}", response.status()).into());
    }
    let mut body = response.into_body();
    let mut seen = Vec::new();
    while !seen.windows(needle.len()).any(|w| w == needle) {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    seen.extend_from_slice(&data);
                }
            }
            _ => return Err("the response ended early".into()),
        }
    }
    Ok(body)
}

async fn sockjs_xhr_streaming(
    client: &HttpClient,
    base: &str,
    index: usize,
) -> Result<Held, Error> {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{base}/sockjs/000/xidle{index}/xhr_streaming"))
        .body(Full::new(Bytes::new()))?;
    let response = client.request(request).await?;
    Ok(Held::Response {
        _body: read_until(response, b"\no\n").await?,
    })
}

async fn browserchannel(client: &HttpClient, base: &str, index: usize) -> Result<Held, Error> {
    let rid = 1000 + index as u64;
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{base}/channel/bind?VER=8&RID={rid}&CVER=1"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(b"count=0")))?;
    let body = client
        .request(request)
        .await?
        .into_body()
        .collect()
        .await?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    let sid = text
        .split('"')
        .nth(3)
        .ok_or_else(|| format!("no session id in {text:?}"))?
        .to_owned();
    let request = Request::builder()
        .uri(format!(
            "{base}/channel/bind?VER=8&RID=rpc&SID={sid}&CI=0&AID=0&TYPE=xmlhttp"
        ))
        .body(Full::new(Bytes::new()))?;
    let response = client.request(request).await?;
    // The back channel is live once it answered; it carries nothing until
    // the app sends (or the next heartbeat).
    if response.status() != StatusCode::OK {
        return Err(format!("back channel answered {}", response.status()).into());
    }
    Ok(Held::Response {
        _body: response.into_body(),
    })
}

async fn event_source(client: &HttpClient, base: &str) -> Result<Held, Error> {
    let request = Request::builder()
        .uri(format!("{base}/events"))
        .body(Full::new(Bytes::new()))?;
    let response = client.request(request).await?;
    // The stream opens with 2 KiB of padding, a comment line.
    Ok(Held::Response {
        _body: read_until(response, b"\n").await?,
    })
}

async fn bare_stream(client: &HttpClient, base: &str) -> Result<Held, Error> {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{base}/stream"))
        .body(Full::new(Bytes::new()))?;
    let response = client.request(request).await?;
    Ok(Held::Response {
        _body: read_until(response, b"o\n").await?,
    })
}

/// Opens `sessions` idle sessions of `transport` on the server at `base`,
/// numbered from `first` (SockJS session ids must not repeat).
pub async fn open(
    base: &str,
    transport: Transport,
    first: usize,
    sessions: usize,
) -> Result<Vec<Held>, Error> {
    let server: SocketAddr = base
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("bad server address {base}: {e}"))?;
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http();
    let results: Vec<Result<Held, Error>> = stream::iter(first..first + sessions)
        .map(|index| {
            let client = client.clone();
            async move {
                match transport {
                    Transport::WebSocket => websocket(server, index, "/ws".into()).await,
                    Transport::BareWebSocket => websocket(server, index, "/".into()).await,
                    Transport::SockJsWebSocket => sockjs_websocket(server, index).await,
                    Transport::SockJsXhrStreaming => {
                        sockjs_xhr_streaming(&client, base, index).await
                    }
                    Transport::BrowserChannel => browserchannel(&client, base, index).await,
                    Transport::BareHttpStream
                    | Transport::BareHyperStream
                    | Transport::BareServeStream => bare_stream(&client, base).await,
                    Transport::EventSource => event_source(&client, base).await,
                }
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    results.into_iter().collect()
}
