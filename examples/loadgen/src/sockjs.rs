//! SockJS client loads: the `websocket` transport, and `xhr_streaming` with
//! `xhr_send`. Every session sends a message and waits for its echo.

use crate::report::Samples;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

type Error = crate::server::Error;
type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The SockJS frame that carries one message back.
fn echo_frame(text: &str) -> String {
    format!("a[{}]", serde_json::to_string(text).expect("a string"))
}

/// Over the `websocket` transport.
pub async fn websocket(base: &str, sessions: usize, messages: usize) -> Result<Samples, Error> {
    let ws_base = base.replacen("http", "ws", 1);
    let mut sockets = Vec::with_capacity(sessions);
    for n in 0..sessions {
        let url = format!("{ws_base}/sockjs/000/load{n}/websocket");
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
        match socket.next().await {
            Some(Ok(Message::Text(open))) if open.as_str() == "o" => {}
            other => return Err(format!("expected the open frame, got {other:?}").into()),
        }
        sockets.push(socket);
    }
    let started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(messages);
                for n in 0..messages {
                    let text = format!("message {n}");
                    let expected = echo_frame(&text);
                    let sent = Instant::now();
                    socket
                        .send(Message::text(serde_json::to_string(&[&text])?))
                        .await?;
                    loop {
                        match socket.next().await {
                            Some(Ok(Message::Text(frame))) if frame.as_str() == expected => break,
                            Some(Ok(_)) => continue,
                            Some(Err(error)) => return Err(Error::from(error)),
                            None => return Err("connection closed".into()),
                        }
                    }
                    latencies.push(sent.elapsed());
                }
                let _ = socket.close(None).await;
                Ok::<_, Error>(latencies)
            })
        })
        .collect();
    crate::report::gather(tasks, started).await
}

/// Keeps an `xhr_streaming` receiver open for one session, reopening it when
/// the server ends it at the response limit; every frame goes to `frames`.
async fn stream_frames(client: HttpClient, url: String, frames: mpsc::UnboundedSender<String>) {
    loop {
        let request = Request::builder()
            .method(Method::POST)
            .uri(&url)
            .body(Full::new(Bytes::new()))
            .expect("a valid request");
        let Ok(response) = client.request(request).await else {
            return;
        };
        let mut body = response.into_body();
        let mut buffer = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buffer.extend_from_slice(&data);
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&buffer[..end]).into_owned();
                buffer.drain(..=end);
                if frames.send(line).is_err() {
                    return;
                }
            }
        }
    }
}

/// Over `xhr_streaming` for frames and `xhr_send` for messages.
pub async fn xhr_streaming(base: &str, sessions: usize, messages: usize) -> Result<Samples, Error> {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .build_http();
    let mut open = Vec::with_capacity(sessions);
    for n in 0..sessions {
        let session_url = format!("{base}/sockjs/000/xload{n}");
        let (tx, mut frames) = mpsc::unbounded_channel();
        tokio::spawn(stream_frames(
            client.clone(),
            format!("{session_url}/xhr_streaming"),
            tx,
        ));
        loop {
            match frames.recv().await.as_deref() {
                Some("o") => break,
                Some(_) => continue,
                None => return Err("the streaming request failed".into()),
            }
        }
        open.push((session_url, frames));
    }
    let started = Instant::now();
    let tasks: Vec<_> = open
        .into_iter()
        .map(|(session_url, mut frames)| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(messages);
                for n in 0..messages {
                    let text = format!("message {n}");
                    let expected = echo_frame(&text);
                    let sent = Instant::now();
                    let request = Request::builder()
                        .method(Method::POST)
                        .uri(format!("{session_url}/xhr_send"))
                        .body(Full::new(Bytes::from(serde_json::to_string(&[&text])?)))?;
                    let response = client.request(request).await?;
                    if response.status() != StatusCode::NO_CONTENT {
                        return Err(format!("xhr_send answered {}", response.status()).into());
                    }
                    response.into_body().collect().await?;
                    loop {
                        match frames.recv().await {
                            Some(frame) if frame == expected => break,
                            Some(_) => continue,
                            None => return Err(Error::from("the stream ended")),
                        }
                    }
                    latencies.push(sent.elapsed());
                }
                Ok::<_, Error>(latencies)
            })
        })
        .collect();
    crate::report::gather(tasks, started).await
}
