//! A BrowserChannel client load: forward channel POSTs, one streaming back
//! channel per session, acknowledgements by `AID`.

use crate::report::Samples;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

type HttpClient = Client<HttpConnector, Full<Bytes>>;
type Error = crate::server::Error;

/// Opens `sessions` sessions, then has each echo `messages` messages one at a time.
pub async fn run(
    base: &str,
    sessions: usize,
    messages: usize,
    after_open: impl AsyncFnOnce(),
) -> Result<Samples, Error> {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .build_http();
    let mut open = Vec::with_capacity(sessions);
    for index in 0..sessions {
        open.push(open_session(&client, base, 1000 + index as u64 * 100_000).await?);
    }
    after_open().await;
    let started = Instant::now();
    let tasks: Vec<_> = open
        .into_iter()
        .map(|session| {
            tokio::spawn(run_session(
                client.clone(),
                base.to_owned(),
                session,
                messages,
            ))
        })
        .collect();
    crate::report::gather(tasks, started).await
}

async fn request(
    client: &HttpClient,
    method: Method,
    url: String,
    body: String,
) -> Result<hyper::Response<hyper::body::Incoming>, Error> {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))?;
    Ok(client.request(request).await?)
}

/// Splits length-prefixed chunks out of `buffer`.
fn take_chunks(buffer: &mut Vec<u8>) -> Vec<Value> {
    let mut arrays = Vec::new();
    while let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
        let length: usize = std::str::from_utf8(&buffer[..newline])
            .ok()
            .and_then(|s| s.parse().ok())
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

struct OpenSession {
    sid: String,
    last_array: Arc<AtomicI64>,
    echoes: mpsc::UnboundedReceiver<u64>,
    first_rid: u64,
}

/// Opens a session and its back channel, which reopens whenever the server
/// ends it (every ~10 KiB) and stops when the session is gone.
async fn open_session(
    client: &HttpClient,
    base: &str,
    first_rid: u64,
) -> Result<OpenSession, Error> {
    let response = request(
        client,
        Method::POST,
        format!("{base}/channel/bind?VER=8&RID={first_rid}&CVER=1"),
        "count=0".into(),
    )
    .await?;
    let mut body = response.into_body().collect().await?.to_bytes().to_vec();
    let arrays = take_chunks(&mut body);
    let sid = arrays[0][1][1].as_str().ok_or("no session id")?.to_owned();
    let last_array = Arc::new(AtomicI64::new(0));
    let (echo_tx, echoes) = mpsc::unbounded_channel();
    let (client, base, sid_bc, last) = (
        client.clone(),
        base.to_owned(),
        sid.clone(),
        last_array.clone(),
    );
    tokio::spawn(async move {
        loop {
            let url = format!(
                "{base}/channel/bind?VER=8&RID=rpc&SID={sid_bc}&CI=0&TYPE=xmlhttp&AID={}",
                last.load(Ordering::Relaxed)
            );
            let Ok(response) = request(&client, Method::GET, url, String::new()).await else {
                return;
            };
            if response.status() != StatusCode::OK {
                return;
            }
            let mut body = response.into_body();
            let mut buffer = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    buffer.extend_from_slice(&data);
                    for array in take_chunks(&mut buffer) {
                        last.store(array[0].as_i64().unwrap_or(0), Ordering::Relaxed);
                        if let Some(n) = array[1].as_u64() {
                            if echo_tx.send(n).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    });
    Ok(OpenSession {
        sid,
        last_array,
        echoes,
        first_rid,
    })
}

/// Sends `messages` echo requests one at a time; returns each round trip.
async fn run_session(
    client: HttpClient,
    base: String,
    mut session: OpenSession,
    messages: usize,
) -> Result<Vec<Duration>, Error> {
    let mut latencies = Vec::with_capacity(messages);
    for n in 0..messages as u64 {
        let started = Instant::now();
        let url = format!(
            "{base}/channel/bind?VER=8&SID={}&RID={}&AID={}",
            session.sid,
            session.first_rid + 1 + n,
            session.last_array.load(Ordering::Relaxed)
        );
        let body = format!("count=1&ofs={n}&req0_JSON={n}");
        let response = request(&client, Method::POST, url, body).await?;
        if response.status() != StatusCode::OK {
            return Err(format!("forward channel answered {}", response.status()).into());
        }
        response.into_body().collect().await?;
        loop {
            match session.echoes.recv().await {
                Some(echo) if echo == n => break,
                Some(_) => continue,
                None => return Err("back channel ended".into()),
            }
        }
        latencies.push(started.elapsed());
    }
    let url = format!(
        "{base}/channel/bind?VER=8&SID={}&RID={}&TYPE=terminate",
        session.sid,
        session.first_rid + 1 + messages as u64
    );
    let _ = request(&client, Method::GET, url, String::new()).await;
    Ok(latencies)
}
