//! Broadcast load: N members of mixed transports in one room, each reading
//! what it receives; the server fans messages out to all of them, and the
//! members report when each message arrived.

use crate::idle::Transport;
use bytes::Bytes;
use futures::{stream, StreamExt};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

type Error = crate::server::Error;
type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A member saw the message of `round` at `at`.
pub struct Arrival {
    pub member: usize,
    pub round: u64,
    pub at: Instant,
}

/// The transports members rotate through.
pub const MIXED: [Transport; 5] = [
    Transport::WebSocket,
    Transport::SockJsWebSocket,
    Transport::SockJsXhrStreaming,
    Transport::BrowserChannel,
    Transport::EventSource,
];

/// The text of round `round`'s message: a marker every transport carries
/// verbatim (ASCII, nothing to escape), and padding.
pub fn message(round: u64, size: usize) -> String {
    let marker = format!("#R{round}#");
    format!("{marker}{}", "x".repeat(size.saturating_sub(marker.len())))
}

/// Finds the round markers in what a member received; `carry` keeps an
/// unfinished marker for the next piece.
pub fn rounds(
    member: usize,
    carry: &mut String,
    piece: &str,
    arrivals: &mpsc::UnboundedSender<Arrival>,
) {
    carry.push_str(piece);
    let at = Instant::now();
    let mut rest = carry.as_str();
    let mut consumed = 0;
    while let Some(start) = rest.find("#R") {
        let Some(end) = rest[start + 2..].find('#') else {
            break;
        };
        if let Ok(round) = rest[start + 2..start + 2 + end].parse() {
            let _ = arrivals.send(Arrival { member, round, at });
        }
        consumed += start + 2 + end + 1;
        rest = &carry[consumed..];
    }
    // Keep only what may start a marker.
    let keep = match carry[consumed..].rfind("#R") {
        Some(index) => consumed + index,
        None => carry.len().saturating_sub(1).max(consumed),
    };
    carry.drain(..keep);
}

async fn request(
    client: &HttpClient,
    method: Method,
    url: String,
    body: &'static str,
) -> Result<hyper::Response<hyper::body::Incoming>, Error> {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(body.as_bytes())))?;
    Ok(client.request(request).await?)
}

/// Reads `response`'s body, handing the markers on; returns when it ends.
async fn read_body(
    member: usize,
    response: hyper::Response<hyper::body::Incoming>,
    carry: &mut String,
    arrivals: &mpsc::UnboundedSender<Arrival>,
    mut on_piece: impl FnMut(&str),
) {
    let mut body = response.into_body();
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            let text = String::from_utf8_lossy(&data);
            on_piece(&text);
            rounds(member, carry, &text, arrivals);
        }
    }
}

/// Opens member `index` over `transport`; it reads until the run ends.
/// With `silent`, it never reads (a WebSocket member whose queue fills up).
async fn member(
    base: String,
    client: HttpClient,
    transport: Transport,
    index: usize,
    arrivals: mpsc::UnboundedSender<Arrival>,
    opened: mpsc::UnboundedSender<()>,
    silent: bool,
) -> Result<(), Error> {
    let ws_base = base.replacen("http", "ws", 1);
    let mut carry = String::new();
    match transport {
        Transport::WebSocket | Transport::SockJsWebSocket => {
            let url = if transport == Transport::WebSocket {
                format!("{ws_base}/ws")
            } else {
                format!("{ws_base}/sockjs/000/b{index}/websocket")
            };
            let (mut socket, _) = if silent {
                // A small receive buffer, so the kernel soon stops taking
                // the member's bytes and its queue on the server fills.
                let address = base.trim_start_matches("http://").to_owned();
                let tcp = tokio::net::TcpSocket::new_v4()?;
                tcp.set_recv_buffer_size(4096)?;
                let stream = tcp.connect(address.parse()?).await?;
                tokio_tungstenite::client_async(
                    url,
                    tokio_tungstenite::MaybeTlsStream::Plain(stream),
                )
                .await?
            } else {
                tokio_tungstenite::connect_async(url).await?
            };
            if transport == Transport::SockJsWebSocket {
                socket.next().await;
            }
            let _ = opened.send(());
            if silent {
                std::future::pending::<()>().await;
            }
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message {
                    rounds(index, &mut carry, &text, &arrivals);
                }
            }
        }
        Transport::SockJsXhrStreaming => {
            let mut first = true;
            loop {
                let url = format!("{base}/sockjs/000/x{index}/xhr_streaming");
                let response = request(&client, Method::POST, url, "").await?;
                let opened = &opened;
                read_body(index, response, &mut carry, &arrivals, |piece| {
                    if first && piece.contains("o\n") {
                        first = false;
                        let _ = opened.send(());
                    }
                })
                .await;
            }
        }
        Transport::EventSource => {
            let response = request(&client, Method::GET, format!("{base}/events"), "").await?;
            let _ = opened.send(());
            read_body(index, response, &mut carry, &arrivals, |_| {}).await;
        }
        Transport::BrowserChannel => {
            let bind = format!("{base}/channel/bind?VER=8");
            let response = request(
                &client,
                Method::POST,
                format!("{bind}&RID={}", 1000 + index),
                "count=0",
            )
            .await?;
            let body = response.into_body().collect().await?.to_bytes();
            let text = String::from_utf8_lossy(&body).into_owned();
            let sid = text.split('"').nth(3).ok_or("no session id")?.to_owned();
            let _ = opened.send(());
            let mut last_array = 0i64;
            loop {
                let url = format!("{bind}&RID=rpc&SID={sid}&CI=0&TYPE=xmlhttp&AID={last_array}");
                let response = request(&client, Method::GET, url, "").await?;
                if response.status() != StatusCode::OK {
                    return Ok(());
                }
                let mut chunks = String::new();
                read_body(index, response, &mut carry, &arrivals, |piece| {
                    // Track the last array id, for the next request's AID.
                    chunks.push_str(piece);
                    while let Some(newline) = chunks.find('\n') {
                        let Ok(length) = chunks[..newline].parse::<usize>() else {
                            chunks.clear();
                            break;
                        };
                        if chunks.len() < newline + 1 + length {
                            break;
                        }
                        let chunk: serde_json::Value =
                            serde_json::from_str(&chunks[newline + 1..newline + 1 + length])
                                .unwrap_or_default();
                        if let Some(id) = chunk
                            .as_array()
                            .and_then(|arrays| arrays.last())
                            .and_then(|array| array[0].as_i64())
                        {
                            last_array = id;
                        }
                        chunks.drain(..newline + 1 + length);
                    }
                })
                .await;
            }
        }
        Transport::BareWebSocket
        | Transport::BareHttpStream
        | Transport::BareHyperStream
        | Transport::BareServeStream => return Err("not a broadcast member".into()),
    }
    Ok(())
}

/// Opens `members` members over `transports` (in turn), `silent` of them
/// WebSocket members that never read; returns the arrivals of every member.
pub async fn open(
    base: &str,
    transports: &[Transport],
    members: usize,
    silent: usize,
) -> Result<mpsc::UnboundedReceiver<Arrival>, Error> {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(HttpConnector::new());
    let (arrivals, received) = mpsc::unbounded_channel();
    let (opened_tx, mut opened) = mpsc::unbounded_channel();
    let total = members + silent;
    stream::iter(0..total)
        .for_each_concurrent(200, |index| {
            let (base, client, arrivals, opened_tx) = (
                base.to_owned(),
                client.clone(),
                arrivals.clone(),
                opened_tx.clone(),
            );
            let (transport, silent) = if index < members {
                (transports[index % transports.len()], false)
            } else {
                (Transport::WebSocket, true)
            };
            async move {
                tokio::spawn(async move {
                    if let Err(error) =
                        member(base, client, transport, index, arrivals, opened_tx, silent).await
                    {
                        eprintln!("member {index} ({}) failed: {error}", transport.name());
                    }
                });
            }
        })
        .await;
    for _ in 0..total {
        opened.recv().await.ok_or("a member failed to open")?;
    }
    Ok(received)
}

/// Asks the server to fan `text` out (`mode`: `broadcast` or `loop`).
pub async fn fanout(base: &str, mode: &str, text: String) -> Result<serde_json::Value, Error> {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{base}/fanout?mode={mode}"))
        .body(Full::new(Bytes::from(text)))?;
    let response = client.request(request).await?;
    let body = response.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&body)?)
}
