//! WebSocket fan-out against bare servers: N WebSocket members on each
//! server, one message to all of them per round, the servers alternated
//! round by round.
//!
//! Each server's members live in a process of their own (this binary in
//! `--mode fanout-members`), so that 10,000 members per server fit under
//! the per-process limit of open files. That process makes each round's
//! fan-out request itself, times every member's arrival from just before
//! the request, and answers with one JSON line per round. This process
//! reads each server's CPU time (to the nanosecond, from the scheduler)
//! around every round and divides it by the members reached.

use crate::broadcast;
use crate::options::Options;
use crate::proc_stats;
use crate::server::{start_command, Error};
use bytes::Bytes;
use futures::{stream, StreamExt};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// One server under test, with its members' process.
struct Server {
    label: String,
    pid: Option<u32>,
    _server: Child,
    _members: Child,
    commands: ChildStdin,
    answers: Lines<BufReader<ChildStdout>>,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    /// Per round: server CPU seconds and members reached.
    rounds: Vec<(f64, u64)>,
    last: Vec<f64>,
    latencies: Vec<f64>,
    queued_ms: Vec<f64>,
    dropped: u64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

impl Stats {
    /// CPU per delivery over all rounds, in microseconds.
    fn per_delivery(&self) -> f64 {
        let cpu: f64 = self.rounds.iter().map(|r| r.0).sum();
        let reached: u64 = self.rounds.iter().map(|r| r.1).sum();
        cpu * 1e6 / reached.max(1) as f64
    }

    fn sort(&mut self) {
        for v in [&mut self.last, &mut self.latencies, &mut self.queued_ms] {
            v.sort_by(f64::total_cmp);
        }
    }
}

/// What a label names: the program, its arguments and environment, the
/// members' path and the fan-out request's `mode`.
struct Kind {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    path: &'static str,
    mode: &'static str,
}

fn kind(label: &str, options: &Options) -> Result<Kind, Error> {
    let node = |mode: &'static str| Kind {
        program: "node".into(),
        args: vec![options.node_fanout_script.clone()],
        env: vec![("NODE_PATH".into(), options.node_path.clone())],
        path: "/ws",
        mode,
    };
    Ok(match label {
        "layer" => Kind {
            program: options.broadcast_bin.clone(),
            args: vec![],
            env: vec![],
            path: "/ws",
            mode: "broadcast",
        },
        // The same server, its room keeping a history.
        "layer-history" => Kind {
            program: options.broadcast_bin.clone(),
            args: vec![],
            env: vec![("HISTORY".into(), "1".into())],
            path: "/ws",
            mode: "broadcast",
        },
        "bare" => Kind {
            program: options.bare_fanout_bin.clone(),
            args: vec![],
            env: vec![],
            path: "/",
            mode: "broadcast",
        },
        "node-preframed" => node("preframed"),
        "node-send" => node("send"),
        // Another build of the layer's server, to compare two builds.
        other if other.contains('=') => Kind {
            program: other
                .split_once('=')
                .map(|(_, path)| path.to_owned())
                .unwrap_or_default(),
            args: vec![],
            env: vec![],
            path: "/ws",
            mode: "broadcast",
        },
        other => {
            return Err(format!(
                "unknown fan-out server {other}; use layer, layer-history, bare, node-preframed, node-send \
                 or NAME=PATH (another broadcast-server build)"
            )
            .into())
        }
    })
}

/// `index` numbers the server: its members connect from loopback addresses
/// of their own (20,000 members a source address), so no two servers'
/// members compete for one address's ports.
async fn start(label: &str, index: usize, options: &Options) -> Result<Server, Error> {
    let kind = kind(label, options)?;
    let args: Vec<&str> = kind.args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = kind
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (base, server) = start_command(&kind.program, &args, &env).await?;
    let sessions = options.sessions.to_string();
    let first = (index * options.sessions.div_ceil(20_000) * 20_000).to_string();
    let mut members = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--mode", "fanout-members", "--server", &base])
        .args(["--sessions", &sessions, "--ws-path", kind.path])
        .args(["--fanout-mode", kind.mode, "--first-member", &first])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let commands = members.stdin.take().ok_or("no stdin")?;
    let mut answers = BufReader::new(members.stdout.take().ok_or("no stdout")?).lines();
    let ready = answers.next_line().await?;
    if ready.as_deref() != Some("ready") {
        return Err(format!("{label}'s members did not open: {ready:?}").into());
    }
    Ok(Server {
        label: label.to_owned(),
        pid: server.id(),
        _server: server,
        _members: members,
        commands,
        answers,
        stats: Stats::default(),
    })
}

impl Server {
    async fn round(&mut self, round: u64, size: usize) -> Result<(), Error> {
        let before = proc_stats::cpu_seconds_precise(self.pid).ok_or("no CPU time")?;
        self.commands
            .write_all(format!("{round} {size}\n").as_bytes())
            .await?;
        let line = self
            .answers
            .next_line()
            .await?
            .ok_or_else(|| format!("{}'s members stopped", self.label))?;
        let after = proc_stats::cpu_seconds_precise(self.pid).ok_or("no CPU time")?;
        let answer: Value = serde_json::from_str(&line)?;
        if let Some(error) = answer.get("error") {
            return Err(format!("{} round {round}: {error}", self.label).into());
        }
        let reached = answer["reached"].as_u64().unwrap_or(0);
        self.stats.rounds.push((after - before, reached));
        self.stats
            .last
            .push(answer["last_ms"].as_f64().unwrap_or(0.0));
        self.stats
            .queued_ms
            .push(answer["queued_ms"].as_f64().unwrap_or(0.0));
        self.stats.dropped += answer["dropped"].as_u64().unwrap_or(0);
        if let Some(latencies) = answer["latencies_ms"].as_array() {
            self.stats
                .latencies
                .extend(latencies.iter().filter_map(Value::as_f64));
        }
        Ok(())
    }
}

/// The load average, to note how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Runs the comparison: `--fanout-servers` (default `layer,bare`), each
/// with `--sessions` WebSocket members, `--messages` rounds each.
pub async fn run(options: &Options) -> Result<(), Error> {
    proc_stats::raise_open_files(options.sessions as u64 + 1_000);
    let mut servers = Vec::new();
    for (index, label) in options.fanout_servers.iter().enumerate() {
        servers.push(start(label, index, options).await?);
    }
    println!(
        "WebSocket fan-out: {} members per server, {}-byte messages, {} rounds per server, \
         servers alternated round by round (load average before: {})",
        options.sessions,
        options.size,
        options.messages,
        load_average()
    );
    // Warm-up round on each, not counted.
    for server in &mut servers {
        server.round(0, options.size).await?;
        server.stats = Stats::default();
    }
    for round in 1..=options.messages as u64 {
        // Rotate who goes first, so no server always follows the same one.
        let count = servers.len();
        for offset in 0..count {
            let index = (round as usize + offset) % count;
            servers[index].round(round, options.size).await?;
        }
    }
    println!("  load average after: {}", load_average());
    let bare = servers
        .iter()
        .find(|s| s.label == "bare")
        .map(|s| s.stats.per_delivery());
    for server in &mut servers {
        server.stats.sort();
        let stats = &server.stats;
        let mut per_round: Vec<f64> = stats
            .rounds
            .iter()
            .map(|(cpu, reached)| cpu * 1e6 / (*reached).max(1) as f64)
            .collect();
        per_round.sort_by(f64::total_cmp);
        let per_delivery = stats.per_delivery();
        let ratio = bare.map_or(String::new(), |bare| {
            format!(" ({:.2}x bare)", per_delivery / bare)
        });
        println!(
            "  {:<15} CPU per delivery {per_delivery:.2} us{ratio} (rounds p10 {:.2} / p50 {:.2} / p90 {:.2}); \
             last member p50 {:.2} / p99 {:.2} ms; member p50 {:.2} / p99 {:.2} ms; \
             queued in p50 {:.2} ms; {} drops",
            server.label,
            percentile(&per_round, 0.1),
            percentile(&per_round, 0.5),
            percentile(&per_round, 0.9),
            percentile(&stats.last, 0.5),
            percentile(&stats.last, 0.99),
            percentile(&stats.latencies, 0.5),
            percentile(&stats.latencies, 0.99),
            percentile(&stats.queued_ms, 0.5),
            stats.dropped,
        );
    }
    Ok(())
}

/// The members' process: opens `--sessions` WebSocket members on
/// `--server`, says `ready`, then for each `ROUND SIZE` line on its input
/// asks for a fan-out and answers with what the members saw.
pub async fn members(options: &Options) -> Result<(), Error> {
    proc_stats::raise_open_files(options.sessions as u64 + 1_000);
    let base = options.server.clone().ok_or("--server is needed")?;
    let address: SocketAddr = base.trim_start_matches("http://").parse()?;
    let url = format!("ws://{address}{}", options.ws_path);
    let (arrivals, mut arrived) = mpsc::unbounded_channel();
    let opened: Vec<Result<(), Error>> = stream::iter(0..options.sessions)
        .map(|index| {
            let (url, arrivals) = (url.clone(), arrivals.clone());
            async move {
                let tcp = crate::idle::tcp(address, options.first_member + index).await?;
                let (mut socket, _) = tokio_tungstenite::client_async(url, tcp).await?;
                tokio::spawn(async move {
                    let mut carry = String::new();
                    while let Some(Ok(message)) = socket.next().await {
                        if let Message::Text(text) = message {
                            broadcast::rounds(index, &mut carry, &text, &arrivals);
                        }
                    }
                });
                Ok(())
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    opened.into_iter().collect::<Result<Vec<()>, Error>>()?;
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut out = tokio::io::stdout();
    out.write_all(b"ready\n").await?;
    out.flush().await?;
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = commands.next_line().await? {
        let mut words = line.split_whitespace();
        let round: u64 = words.next().ok_or("no round")?.parse()?;
        let size: usize = words.next().ok_or("no size")?.parse()?;
        let answer = match one_round(&client, &base, options, &mut arrived, round, size).await {
            Ok(answer) => answer,
            Err(error) => json!({"error": error.to_string()}),
        };
        out.write_all(format!("{answer}\n").as_bytes()).await?;
        out.flush().await?;
    }
    Ok(())
}

async fn one_round(
    client: &Client<HttpConnector, Full<Bytes>>,
    base: &str,
    options: &Options,
    arrived: &mut mpsc::UnboundedReceiver<broadcast::Arrival>,
    round: u64,
    size: usize,
) -> Result<Value, Error> {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("{base}/fanout?mode={}", options.fanout_mode))
        .body(Full::new(Bytes::from(broadcast::message(round, size))))?;
    let started = Instant::now();
    let answer = client.request(request).await?;
    let answer: Value = serde_json::from_slice(&answer.into_body().collect().await?.to_bytes())?;
    let mut seen = HashSet::new();
    let mut latencies = Vec::with_capacity(options.sessions);
    let mut last = started;
    while seen.len() < options.sessions {
        let arrival = tokio::time::timeout(Duration::from_secs(30), arrived.recv())
            .await
            .map_err(|_| format!("only {} of {} members", seen.len(), options.sessions))?
            .ok_or("the members are gone")?;
        if arrival.round == round && seen.insert(arrival.member) {
            latencies.push(((arrival.at - started).as_secs_f64() * 1e5).round() / 1e2);
            last = last.max(arrival.at);
        }
    }
    Ok(json!({
        "reached": answer["reached"],
        "dropped": answer["dropped"],
        "queued_ms": answer["queued_us"].as_f64().unwrap_or(0.0) / 1e3,
        "last_ms": (last - started).as_secs_f64() * 1e3,
        "latencies_ms": latencies,
    }))
}
