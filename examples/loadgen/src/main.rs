//! End-to-end load generator for the echo example's BrowserChannel endpoint.
//!
//! It starts the echo binary (release build by default), opens N sessions the
//! way the BrowserChannel client does (forward channel POSTs, one streaming
//! back channel each, acknowledgements with `AID`), and has every session
//! send M messages one at a time, each waiting for its echo. It reports echo
//! messages per second, latency percentiles, and the echo server's resident
//! memory per open session.
//!
//! ```text
//! cargo build --release -p echo && cargo run --release -p loadgen -- --sessions 100 --messages 200
//! ```

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

type HttpClient = Client<HttpConnector, Full<Bytes>>;
type Error = Box<dyn std::error::Error + Send + Sync>;

struct Options {
    sessions: usize,
    messages: usize,
    echo_bin: String,
    url: Option<String>,
}

fn parse_options() -> Options {
    let mut options = Options {
        sessions: 100,
        messages: 200,
        echo_bin: "target/release/echo".into(),
        url: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--sessions" => options.sessions = value().parse().expect("--sessions N"),
            "--messages" => options.messages = value().parse().expect("--messages N"),
            "--echo-bin" => options.echo_bin = value(),
            "--url" => options.url = Some(value()),
            other => panic!("unknown flag {other}; use --sessions, --messages, --echo-bin, --url"),
        }
    }
    options
}

/// Starts the echo server on a free port; returns its base URL and the child.
async fn start_echo(binary: &str) -> Result<(String, tokio::process::Child), Error> {
    let mut child = tokio::process::Command::new(binary)
        .env("PORT", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!("cannot start {binary}: {e} (build it with cargo build --release -p echo)")
        })?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(url) = line.strip_prefix("listening on ") {
            return Ok((url.to_owned(), child));
        }
    }
    Err("the echo server exited before listening".into())
}

/// Resident memory of a process, from /proc, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let options = parse_options();
    let (base, child) = match &options.url {
        Some(url) => (url.trim_end_matches('/').to_owned(), None),
        None => {
            let (url, child) = start_echo(&options.echo_bin).await?;
            (url, Some(child))
        }
    };
    let pid = child.as_ref().and_then(|c| c.id());
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(usize::MAX)
        .build_http();
    // Warm the server up before measuring memory.
    drop(
        client
            .request(Request::get(format!("{base}/healthz")).body(Full::new(Bytes::new()))?)
            .await?,
    );
    let rss_before = pid.and_then(rss_kib);

    let mut sessions = Vec::with_capacity(options.sessions);
    for index in 0..options.sessions {
        sessions.push(open_session(&client, &base, 1000 + index as u64 * 100_000).await?);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_open = pid.and_then(rss_kib);

    let started = Instant::now();
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|session| {
            tokio::spawn(run_session(
                client.clone(),
                base.clone(),
                session,
                options.messages,
            ))
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();

    println!(
        "BrowserChannel echo, {} sessions x {} messages (one in flight per session)",
        options.sessions, options.messages
    );
    println!("  messages echoed: {}", latencies.len());
    println!("  duration:        {:.2} s", elapsed.as_secs_f64());
    println!(
        "  throughput:      {:.0} echoes/s",
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  latency p50:     {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3
    );
    println!(
        "  latency p99:     {:.2} ms",
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "  latency max:     {:.2} ms",
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    if let (Some(before), Some(open)) = (rss_before, rss_open) {
        println!(
            "  server RSS:      {before} KiB idle, {open} KiB with {} sessions open (~{:.1} KiB per session)",
            options.sessions,
            (open.saturating_sub(before)) as f64 / options.sessions as f64
        );
    }
    Ok(())
}
