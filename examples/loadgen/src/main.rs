//! End-to-end load generator for the echo example.
//!
//! It starts the echo binary (release build by default) and drives it with
//! N concurrent sessions, each sending M messages one at a time and waiting
//! for every echo, then reports echoes per second and latency percentiles:
//!
//! - `--mode browserchannel`: full BrowserChannel clients (forward channel
//!   POSTs, a streaming back channel each, `AID` acknowledgements), plus the
//!   echo server's resident memory per open session.
//! - `--mode websocket`: the same WebSocket client against the layer's `/ws`
//!   endpoint and against `bare-ws-echo`, a plain tokio-tungstenite echo
//!   server, in the same run; reports the ratio.
//! - `--mode sockjs`: SockJS over its `websocket` transport and over
//!   `xhr_streaming` with `xhr_send`.
//! - `--mode idle`: N idle sessions per transport (`--transports`), held
//!   `--hold-secs`, server RSS growth per session, with bare baselines;
//!   `--echo-servers channel,axum` measures the echo server on both serving
//!   paths (`axum_channel::serve`, `axum::serve`).
//! - `--mode broadcast`: one message to N members of mixed transports in a
//!   room, as one broadcast and as a loop of sends (`broadcast-server`).
//! - `--mode fanout`: one message to N WebSocket members, through the
//!   layer's broadcast and through a bare tokio-tungstenite fan-out
//!   (`bare-ws-fanout`; `--fanout-servers` adds the Node `ws` servers),
//!   alternated round by round: CPU per delivery and last-member latency.
//! - `--mode slow-member`: broadcast latency with and without a member that
//!   never reads.
//! - `--mode cluster`: cross-node broadcast latency and throughput, two
//!   `broadcast-server` nodes on a `redis-server` the run starts.
//!
//! ```text
//! cargo build --release -p echo -p loadgen
//! target/release/loadgen --mode browserchannel --sessions 100 --messages 200
//! target/release/loadgen --mode websocket --sessions 100 --messages 500
//! target/release/loadgen --mode cluster --sessions 1000 --messages 200
//! ```

mod broadcast;
mod browserchannel;
mod cluster;
mod deflate;
mod fanout;
mod idle;
mod options;
mod proc_stats;
mod report;
mod server;
mod sockjs;
mod websocket;

use options::{parse_options, Options};
use report::Samples;
use server::{start_server, start_server_with, Error};

use proc_stats::rss_kib;

async fn browserchannel_load(options: &Options) -> Result<(), Error> {
    let (base, child) = start_server(&options.echo_bin).await?;
    let pid = child.id();
    let rss_before = rss_kib(pid);
    let mut rss_open = None;
    let samples = browserchannel::run(&base, options.sessions, options.messages, async || {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        rss_open = rss_kib(pid);
    })
    .await?;
    println!(
        "BrowserChannel echo, {} sessions x {} messages (one in flight per session)",
        options.sessions, options.messages
    );
    samples.print("  ");
    if let (Some(before), Some(open)) = (rss_before, rss_open) {
        println!(
            "  server RSS:      {before} KiB idle, {open} KiB with {} sessions open (~{:.1} KiB per session)",
            options.sessions,
            open.saturating_sub(before) as f64 / options.sessions as f64
        );
    }
    Ok(())
}

/// One round of the WebSocket echo load, and the server CPU time it took.
async fn websocket_round(
    url: &str,
    pid: Option<u32>,
    options: &Options,
) -> Result<(Samples, f64), Error> {
    let before = proc_stats::cpu_seconds(pid).ok_or("no CPU time for the server")?;
    let samples = websocket::run(url, options.sessions, options.messages).await?;
    let after = proc_stats::cpu_seconds(pid).ok_or("no CPU time for the server")?;
    Ok((samples, after - before))
}

async fn websocket_load(options: &Options) -> Result<(), Error> {
    proc_stats::raise_open_files(options.sessions as u64 * 2 + 1_000);
    if let Some(base) = &options.server {
        // Load a running server only (for profiling it); no comparison.
        let url = format!("{}/ws", base.replacen("http", "ws", 1));
        let samples = websocket::run(&url, options.sessions, options.messages).await?;
        samples.print("  ");
        return Ok(());
    }
    let (layer_base, layer_child) = start_server(&options.echo_bin).await?;
    let (bare_base, bare_child) = start_server(&options.bare_bin).await?;
    let (layer_pid, bare_pid) = (layer_child.id(), bare_child.id());
    let ws = |base: &str, path: &str| format!("{}{path}", base.replacen("http", "ws", 1));
    // Alternate the two servers, three rounds each, so neither gets a warmer machine.
    let (mut layer, mut bare) = (Vec::new(), Vec::new());
    let (mut layer_cpu, mut bare_cpu) = (0.0, 0.0);
    for _ in 0..3 {
        let (samples, cpu) = websocket_round(&ws(&layer_base, "/ws"), layer_pid, options).await?;
        layer.push(samples);
        layer_cpu += cpu;
        let (samples, cpu) = websocket_round(&ws(&bare_base, "/"), bare_pid, options).await?;
        bare.push(samples);
        bare_cpu += cpu;
    }
    let layer = Samples::merge(layer);
    let bare = Samples::merge(bare);
    println!(
        "WebSocket echo, {} sessions x {} messages (one in flight per session), three rounds each",
        options.sessions, options.messages
    );
    println!("  through ChannelLayer (echo /ws):");
    layer.print("    ");
    println!("  bare tokio-tungstenite echo:");
    bare.print("    ");
    let per_echo = |cpu: f64, samples: &Samples| cpu * 1e6 / samples.count() as f64;
    let (layer_us, bare_us) = (per_echo(layer_cpu, &layer), per_echo(bare_cpu, &bare));
    println!(
        "  server CPU per echo (utime+stime): layer {layer_us:.2} us, bare {bare_us:.2} us, ratio {:.2}",
        layer_us / bare_us
    );
    println!(
        "  ratio layer/bare: throughput {:.2}, p50 latency {:.2}, p99 latency {:.2}",
        layer.throughput() / bare.throughput(),
        layer.percentile(0.50).as_secs_f64() / bare.percentile(0.50).as_secs_f64(),
        layer.percentile(0.99).as_secs_f64() / bare.percentile(0.99).as_secs_f64(),
    );
    Ok(())
}

async fn sockjs_load(options: &Options) -> Result<(), Error> {
    let (base, _echo) = start_server(&options.echo_bin).await?;
    let over_websocket = sockjs::websocket(&base, options.sessions, options.messages).await?;
    let over_xhr = sockjs::xhr_streaming(&base, options.sessions, options.messages).await?;
    println!(
        "SockJS echo, {} sessions x {} messages (one in flight per session)",
        options.sessions, options.messages
    );
    println!("  websocket transport:");
    over_websocket.print("    ");
    println!("  xhr_streaming + xhr_send:");
    over_xhr.print("    ");
    Ok(())
}

/// Opens idle sessions of each transport in a fresh server, holds them,
/// and reports the server's resident memory growth per session.
async fn idle_load(options: &Options) -> Result<(), Error> {
    // The limit is per process, and the server inherits ours: each side
    // holds a descriptor per session, plus its own.
    let wanted = options.sessions as u64 + 1_000;
    let limit = proc_stats::raise_open_files(wanted);
    if limit < wanted {
        println!(
            "note: open files are limited to {limit} here (hard limit); \
             {} sessions need about {wanted} in each process",
            options.sessions
        );
    }
    // The echo server's own bound on sessions must leave room for all of
    // them and the warm-up one.
    let max_sessions = (options.sessions + 1).to_string();
    println!(
        "Idle sessions: {} per transport, held {} s, server RSS growth / sessions",
        options.sessions, options.hold_secs
    );
    for name in &options.transports {
        let transport =
            idle::Transport::parse(name).ok_or_else(|| format!("unknown transport {name}"))?;
        if let Some(base) = &options.server {
            let held = idle::open(base, transport, 1, options.sessions).await?;
            println!(
                "  {:<22} {:>7} sessions held on {base}",
                transport.name(),
                held.len()
            );
            tokio::time::sleep(std::time::Duration::from_secs(options.hold_secs)).await;
            continue;
        }
        let echo = |server: &str| match server {
            "channel" => Ok("axum_channel::serve"),
            "axum" => Ok("axum::serve"),
            other => Err(format!("unknown echo server {other}; use channel or axum")),
        };
        // (label, binary, the echo's ECHO_SERVER)
        let runs: Vec<(String, &str, &str)> = match transport {
            idle::Transport::BareWebSocket => vec![(name.clone(), &options.bare_bin, "")],
            idle::Transport::BareHttpStream => vec![(name.clone(), &options.bare_http_bin, "")],
            idle::Transport::BareHyperStream => {
                vec![(name.clone(), &options.bare_hyper_bin, "")]
            }
            idle::Transport::BareServeStream => {
                vec![(name.clone(), &options.bare_serve_bin, "")]
            }
            _ => options
                .echo_servers
                .iter()
                .map(|server| {
                    let label = format!("{name} ({})", echo(server)?);
                    Ok((label, options.echo_bin.as_str(), server.as_str()))
                })
                .collect::<Result<_, String>>()?,
        };
        for (label, binary, server) in runs {
            let (base, child) = start_server_with(
                binary,
                &[
                    ("ECHO_MAX_SESSIONS", &max_sessions),
                    ("ECHO_SERVER", server),
                ],
            )
            .await?;
            let pid = child.id();
            // One session first, so that what every server allocates once
            // (runtime workers, pools, lazily built tables) is not counted.
            let warm = idle::open(&base, transport, 0, 1).await?;
            let before = rss_kib(pid).ok_or("no RSS for the server")?;
            let held = idle::open(&base, transport, 1, options.sessions).await?;
            tokio::time::sleep(std::time::Duration::from_secs(options.hold_secs)).await;
            let after = rss_kib(pid).ok_or("no RSS for the server")?;
            let per_session = (after.saturating_sub(before)) as f64 / held.len() as f64;
            println!(
                "  {label:<44} {:>7} sessions  RSS {before} KiB -> {after} KiB  {per_session:.2} KiB per session",
                held.len(),
            );
            drop(held);
            drop(warm);
            drop(child);
        }
    }
    Ok(())
}

/// Per-round results of one fan-out mode.
#[derive(Default)]
struct FanoutStats {
    /// From the request to the last member's arrival, per round.
    last_arrival: Vec<std::time::Duration>,
    /// Every member's latency.
    latencies: Vec<std::time::Duration>,
    cpu: f64,
    encodings: u64,
    encoded_bytes: u64,
    queued_us: u64,
    /// Members a fan-out skipped because their queue was full.
    dropped: u64,
    rounds: u64,
}

impl FanoutStats {
    fn print(&mut self, label: &str) {
        self.last_arrival.sort();
        self.latencies.sort();
        let at = |v: &[std::time::Duration], p: f64| {
            v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
        };
        let rounds = self.rounds.max(1);
        println!(
            "  {label:<10} last member after p50 {:.2} ms / p99 {:.2} ms; member latency p50 {:.2} ms / p99 {:.2} ms; \
             server CPU {:.2} ms per fan-out; queued in {:.2} ms; {} encodings, {} bytes encoded per fan-out; \
             {} drops in all",
            at(&self.last_arrival, 0.5),
            at(&self.last_arrival, 0.99),
            at(&self.latencies, 0.5),
            at(&self.latencies, 0.99),
            self.cpu * 1e3 / rounds as f64,
            self.queued_us as f64 / 1e3 / rounds as f64,
            self.encodings / rounds,
            self.encoded_bytes / rounds,
            self.dropped,
        );
    }
}

/// The members of a fan-out benchmark, as the client sees them.
struct Audience<'a> {
    base: &'a str,
    pid: Option<u32>,
    arrivals: &'a mut tokio::sync::mpsc::UnboundedReceiver<broadcast::Arrival>,
    members: usize,
    size: usize,
}

/// Runs `rounds` fan-outs of `mode` to the audience; `first_round` numbers
/// the rounds so arrivals of earlier runs never count.
async fn fanout_rounds(
    audience: &mut Audience<'_>,
    mode: &str,
    first_round: u64,
    rounds: u64,
    stats: &mut FanoutStats,
) -> Result<(), Error> {
    let Audience {
        base,
        pid,
        ref mut arrivals,
        members,
        size,
    } = *audience;
    for round in first_round..first_round + rounds {
        let cpu_before = proc_stats::cpu_seconds(pid).unwrap_or(0.0);
        let started = std::time::Instant::now();
        let answer = broadcast::fanout(base, mode, broadcast::message(round, size)).await?;
        let mut seen = std::collections::HashSet::new();
        let mut last = started;
        while seen.len() < members {
            let arrival = tokio::time::timeout(std::time::Duration::from_secs(30), arrivals.recv())
                .await
                .map_err(|_| format!("round {round}: only {} of {members} members", seen.len()))?
                .ok_or("the members are gone")?;
            if arrival.round == round && seen.insert(arrival.member) {
                stats.latencies.push(arrival.at - started);
                last = last.max(arrival.at);
            }
        }
        stats.cpu += proc_stats::cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
        stats.last_arrival.push(last - started);
        stats.encodings += answer["encodings"].as_u64().unwrap_or(0);
        stats.encoded_bytes += answer["encoded_bytes"].as_u64().unwrap_or(0);
        stats.queued_us += answer["queued_us"].as_u64().unwrap_or(0);
        stats.dropped += answer["dropped"].as_u64().unwrap_or(0);
        stats.rounds += 1;
    }
    Ok(())
}

/// A broadcast to N idle members of mixed transports, against a loop of
/// sends, alternating, in one server.
async fn broadcast_load(options: &Options) -> Result<(), Error> {
    proc_stats::raise_open_files(options.sessions as u64 * 2 + 1_000);
    let (base, child) = start_server(&options.broadcast_bin).await?;
    let pid = child.id();
    let mut arrivals = broadcast::open(&base, &broadcast::MIXED, options.sessions, 0).await?;
    println!(
        "Fan-out to {} members (websocket, sockjs-websocket, sockjs-xhr-streaming, browserchannel, \
         eventsource in turn), {}-byte messages, {} rounds each",
        options.sessions, options.size, options.messages
    );
    let (mut broadcast, mut looped) = (FanoutStats::default(), FanoutStats::default());
    let rounds = options.messages as u64;
    let mut audience = Audience {
        base: &base,
        pid,
        arrivals: &mut arrivals,
        members: options.sessions,
        size: options.size,
    };
    for (index, chunk) in (0..rounds).step_by(5).enumerate() {
        let count = 5.min(rounds - chunk);
        let first = index as u64 * 10;
        fanout_rounds(&mut audience, "broadcast", first, count, &mut broadcast).await?;
        fanout_rounds(&mut audience, "loop", first + 5, count, &mut looped).await?;
    }
    broadcast.print("broadcast");
    looped.print("send loop");
    Ok(())
}

/// Broadcasts to members with and without one that never reads: the
/// others' latency must not suffer from it.
async fn slow_member_load(options: &Options) -> Result<(), Error> {
    proc_stats::raise_open_files(options.sessions as u64 * 2 + 1_000);
    println!(
        "Slow member: {} WebSocket members, {}-byte broadcasts, {} rounds, without and with a member that never reads",
        options.sessions, options.size, options.messages
    );
    for silent in [0, 1] {
        // A short queue, so the member that never reads fills it.
        let (base, child) =
            start_server_with(&options.broadcast_bin, &[("MAX_QUEUED_MESSAGES", "64")]).await?;
        let mut arrivals = broadcast::open(
            &base,
            &[idle::Transport::WebSocket],
            options.sessions,
            silent,
        )
        .await?;
        let mut stats = FanoutStats::default();
        let mut audience = Audience {
            base: &base,
            pid: child.id(),
            arrivals: &mut arrivals,
            members: options.sessions,
            size: options.size,
        };
        fanout_rounds(
            &mut audience,
            "broadcast",
            0,
            options.messages as u64,
            &mut stats,
        )
        .await?;
        stats.print(if silent == 0 {
            "all read"
        } else {
            "one silent"
        });
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let options = parse_options();
    match options.mode.as_str() {
        "browserchannel" => browserchannel_load(&options).await,
        "websocket" => websocket_load(&options).await,
        "sockjs" => sockjs_load(&options).await,
        "idle" => idle_load(&options).await,
        "broadcast" => broadcast_load(&options).await,
        "slow-member" => slow_member_load(&options).await,
        "fanout" => fanout::run(&options).await,
        "deflate" => deflate::run(&options).await,
        "fanout-members" => fanout::members(&options).await,
        "cluster" => cluster::run(&options).await,
        other => Err(format!(
            "unknown mode {other}; use browserchannel, websocket, sockjs, idle, broadcast, fanout, slow-member or cluster"
        )
        .into()),
    }
}
