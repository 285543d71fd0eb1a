//! Cross-node broadcasts: a `redis-server` on a free port, two
//! `broadcast-server` nodes on it, WebSocket members split between them;
//! broadcasts are made on the first node, so half the members hear them
//! through Redis. Measured twice in one run: the room without a history
//! (Redis pub/sub) and with one (a Redis stream per room; every node, the
//! first too, delivers the stream's entries), with Redis's memory per
//! 1,000 broadcasts kept.

use crate::broadcast::{self, Arrival};
use crate::idle::Transport;
use crate::options::Options;
use crate::proc_stats;
use crate::server::{start_server_with, Error};
use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

/// Bytes Redis uses now (`INFO memory`'s `used_memory`).
fn redis_memory(url: &str) -> Option<u64> {
    let port = url.trim_end_matches('/').rsplit(':').next()?;
    let output = std::process::Command::new("redis-cli")
        .args(["-p", port, "INFO", "memory"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|value| value.trim().parse().ok())
}

/// Starts `redis-server` on a free loopback port, saving nothing.
async fn start_redis() -> Result<(tokio::process::Child, String), Error> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e} (apt-get install redis-server)"))?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    while let Some(line) = lines.next_line().await? {
        if line.contains("Ready to accept connections") {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok((child, format!("redis://127.0.0.1:{port}/")));
        }
    }
    Err("redis-server exited before it was ready".into())
}

/// Every arrival of both nodes' members in one stream; members of the
/// second node are numbered after the first node's.
fn merge(
    mut here: mpsc::UnboundedReceiver<Arrival>,
    mut there: mpsc::UnboundedReceiver<Arrival>,
    offset: usize,
) -> mpsc::UnboundedReceiver<Arrival> {
    let (sender, merged) = mpsc::unbounded_channel();
    let other = sender.clone();
    tokio::spawn(async move {
        while let Some(arrival) = here.recv().await {
            let _ = sender.send(arrival);
        }
    });
    tokio::spawn(async move {
        while let Some(mut arrival) = there.recv().await {
            arrival.member += offset;
            let _ = other.send(arrival);
        }
    });
    merged
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

/// Both paths, one after the other.
pub async fn run(options: &Options) -> Result<(), Error> {
    proc_stats::raise_open_files(options.sessions as u64 * 2 + 1_000);
    run_path(options, false).await?;
    run_path(options, true).await
}

/// Latency of single broadcasts, then throughput of back-to-back ones.
async fn run_path(options: &Options, history: bool) -> Result<(), Error> {
    let (_redis, url) = start_redis().await?;
    let mut env = vec![("REDIS_URL", url.as_str())];
    if history {
        env.push(("HISTORY", "1"));
    }
    let (base_a, node_a) = start_server_with(&options.broadcast_bin, &env).await?;
    let (base_b, node_b) = start_server_with(&options.broadcast_bin, &env).await?;
    let memory_before = redis_memory(&url);
    let half = options.sessions / 2;
    let local = broadcast::open(&base_a, &[Transport::WebSocket], half, 0).await?;
    let remote = broadcast::open(&base_b, &[Transport::WebSocket], half, 0).await?;
    let mut arrivals = merge(local, remote, half);
    let members = half * 2;
    println!(
        "Cross-node broadcasts, {}: 2 nodes on one redis-server, {members} WebSocket members ({half} per node), \
         {}-byte messages, made on node A",
        if history { "room with a history (Redis stream)" } else { "room without a history (Redis pub/sub)" },
        options.size
    );

    // Latency: one broadcast at a time, every member heard before the next.
    let (mut here, mut there) = (Vec::new(), Vec::new());
    let rounds = options.messages as u64;
    for round in 0..rounds {
        let started = Instant::now();
        let answer = broadcast::fanout(
            &base_a,
            "broadcast",
            broadcast::message(round, options.size),
        )
        .await?;
        if let Some(error) = answer.get("error") {
            return Err(format!("the broadcast failed: {error}").into());
        }
        let mut seen = HashSet::new();
        while seen.len() < members {
            let arrival = tokio::time::timeout(Duration::from_secs(30), arrivals.recv())
                .await
                .map_err(|_| {
                    format!(
                        "round {round}: {} of {members} members heard it",
                        seen.len()
                    )
                })?
                .ok_or("the members are gone")?;
            if arrival.round == round && seen.insert(arrival.member) {
                let latency = arrival.at - started;
                if arrival.member < half {
                    here.push(latency)
                } else {
                    there.push(latency)
                }
            }
        }
    }
    println!(
        "  latency, same node   p50 {:.2} ms / p99 {:.2} ms",
        percentile(&mut here, 0.5),
        percentile(&mut here, 0.99)
    );
    println!(
        "  latency, other node  p50 {:.2} ms / p99 {:.2} ms",
        percentile(&mut there, 0.5),
        percentile(&mut there, 0.99)
    );

    // Throughput: broadcasts made back to back, until every member heard all.
    let cpu = |pid| proc_stats::cpu_seconds(pid).unwrap_or(0.0);
    let (cpu_a, cpu_b) = (cpu(node_a.id()), cpu(node_b.id()));
    let started = Instant::now();
    let first = rounds;
    let burst = rounds * 5;
    for round in first..first + burst {
        broadcast::fanout(
            &base_a,
            "broadcast",
            broadcast::message(round, options.size),
        )
        .await?;
    }
    let mut heard = 0u64;
    let expected = burst * members as u64;
    while heard < expected {
        let arrival = tokio::time::timeout(Duration::from_secs(60), arrivals.recv())
            .await
            .map_err(|_| format!("{heard} of {expected} deliveries"))?
            .ok_or("the members are gone")?;
        if arrival.round >= first {
            heard += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "  throughput           {:.0} broadcasts/s, {:.0} deliveries/s ({burst} broadcasts in {:.2} s); \
         CPU per broadcast: node A {:.2} ms, node B {:.2} ms",
        burst as f64 / elapsed,
        expected as f64 / elapsed,
        elapsed,
        (cpu(node_a.id()) - cpu_a) * 1e3 / burst as f64,
        (cpu(node_b.id()) - cpu_b) * 1e3 / burst as f64,
    );
    if let (Some(before), Some(after)) = (memory_before, redis_memory(&url)) {
        println!(
            "  Redis memory         {:.1} KiB per 1,000 broadcasts ({} broadcasts kept at most 1,000)",
            after.saturating_sub(before) as f64 / 1024.0 * 1000.0 / (rounds + burst).min(1000) as f64,
            rounds + burst
        );
    }
    Ok(())
}
