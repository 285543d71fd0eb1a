//! permessage-deflate against uncompressed, in one run (`--mode deflate`):
//! the chat example's JSON messages echoed through the echo example (bytes
//! on the wire, server CPU per echo), the server's resident memory per idle
//! session afterwards, and the CPU of broadcasts to every member of
//! `broadcast-server`. Each side gets a server process of its own; the
//! clients are the same raw client, which offers permessage-deflate (and
//! compresses every message, as browsers do) only on the compressed side.

use crate::proc_stats;
use crate::server::{start_server_with, Error};
use axum_channel::DeflateConfig;
use axum_channel_protocol::websocket::permessage_deflate::{
    negotiate, DeflateParams, Deflater, Inflater,
};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// The compression state of one client, mirrored from the server's answer.
struct Codec {
    deflater: Deflater,
    inflater: Inflater,
}

/// A raw WebSocket client.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    codec: Option<Codec>,
    /// Frame bytes received (headers included).
    received: Arc<AtomicU64>,
}

impl Client {
    async fn connect(
        addr: &str,
        path: &str,
        deflate: bool,
        received: Arc<AtomicU64>,
    ) -> Result<Self, Error> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, mut writer) = stream.into_split();
        let offer = if deflate {
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        } else {
            ""
        };
        writer
            .write_all(
                format!(
                    "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{offer}\r\n"
                )
                .as_bytes(),
            )
            .await?;
        let mut reader = BufReader::new(read);
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(reader.read_u8().await?);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(format!("handshake refused: {head}").into());
        }
        let answer = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| value.trim().to_owned())
        });
        let as_answered = DeflateConfig {
            server_no_context_takeover: false,
            ..DeflateConfig::default()
        };
        let codec = match (deflate, answer) {
            (true, Some(answer)) => {
                let agreed =
                    negotiate([answer.as_str()], &as_answered).ok_or("an answer we cannot read")?;
                Some(Codec {
                    deflater: Deflater::new(DeflateParams {
                        level: 6,
                        window_bits: agreed.client_max_window_bits,
                        no_context_takeover: agreed.client_no_context_takeover,
                    }),
                    inflater: Inflater::with_params(agreed.outgoing()),
                })
            }
            (true, None) => return Err("the server did not agree on permessage-deflate".into()),
            _ => None,
        };
        Ok(Self {
            reader,
            writer,
            codec,
            received,
        })
    }

    async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        let (first, payload) = match &mut self.codec {
            Some(codec) => (0xC1, codec.deflater.deflate(text.as_bytes()).to_vec()),
            None => (0x81, text.as_bytes().to_vec()),
        };
        let mask = [0x5au8, 0x13, 0x77, 0x01];
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(first);
        match payload.len() {
            len if len < 126 => frame.push(0x80 | len as u8),
            len if len < 65_536 => {
                frame.push(0x80 | 126);
                frame.extend((len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend((len as u64).to_be_bytes());
            }
        }
        frame.extend(mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.writer.write_all(&frame).await?;
        Ok(())
    }

    /// The next text message.
    async fn next_text(&mut self) -> Result<String, Error> {
        loop {
            let b0 = self.reader.read_u8().await?;
            let b1 = self.reader.read_u8().await?;
            let (len, extra) = match b1 & 0x7f {
                126 => (u64::from(self.reader.read_u16().await?), 2),
                127 => (self.reader.read_u64().await?, 8),
                len => (u64::from(len), 0),
            };
            let mut payload = vec![0u8; len as usize];
            self.reader.read_exact(&mut payload).await?;
            self.received.fetch_add(2 + extra + len, Ordering::Relaxed);
            if b0 & 0x0f != 1 {
                continue;
            }
            let data = match (&mut self.codec, b0 & 0x40 != 0) {
                (Some(codec), true) => {
                    let mut out = Vec::new();
                    codec
                        .inflater
                        .inflate(&payload, &mut out, 1 << 24)
                        .map_err(|e| format!("{e:?}"))?;
                    codec
                        .inflater
                        .finish(&mut out, 1 << 24)
                        .map_err(|e| format!("{e:?}"))?;
                    out
                }
                _ => payload,
            };
            return Ok(String::from_utf8(data)?);
        }
    }
}

/// A message as the chat example sends it to a room's members.
fn chat_message(n: usize) -> String {
    const TEXTS: [&str; 6] = [
        "hello everyone",
        "did anyone see the release notes for today's build?",
        "yes, the new room list is much faster",
        "I'll be back in five minutes",
        "can someone share the link to the design document again?",
        "thanks!",
    ];
    serde_json::json!({
        "type": "said",
        "room": "lobby",
        "text": TEXTS[n % TEXTS.len()],
        "from": format!("user-{}", n % 97),
    })
    .to_string()
}

/// What one side of the comparison runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Plain,
    /// permessage-deflate, every message compressed on its own (the default).
    Deflate,
    /// permessage-deflate with the server's context takeover.
    Takeover,
}

impl Side {
    const ALL: [Side; 3] = [Side::Plain, Side::Deflate, Side::Takeover];

    fn label(self) -> &'static str {
        match self {
            Side::Plain => "plain:",
            Side::Deflate => "deflate:",
            Side::Takeover => "takeover:",
        }
    }

    fn offers(self) -> bool {
        self != Side::Plain
    }
}

fn address(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

struct EchoResult {
    echoes: usize,
    cpu: f64,
    received: u64,
    idle_kib: f64,
    elapsed: Duration,
}

/// One side of the echo comparison, on a server process of its own.
async fn echo_side(
    echo_bin: &str,
    side: Side,
    sessions: usize,
    messages: usize,
) -> Result<EchoResult, Error> {
    // Messages from 32 bytes up are compressed, as the chat example does.
    let takeover = if side == Side::Takeover { "on" } else { "off" };
    let (base, child) = start_server_with(
        echo_bin,
        &[
            ("ECHO_DEFLATE_MIN_SIZE", "32"),
            ("ECHO_DEFLATE_CONTEXT_TAKEOVER", takeover),
        ],
    )
    .await?;
    let deflate = side.offers();
    let pid = child.id();
    let addr = address(&base);
    let received = Arc::new(AtomicU64::new(0));
    let rss_before = proc_stats::rss_kib(pid).ok_or("no RSS")?;
    let mut clients = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        clients.push(Client::connect(&addr, "/ws", deflate, received.clone()).await?);
    }
    let cpu_before = proc_stats::cpu_seconds_precise(pid).ok_or("no CPU time")?;
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(index, mut client)| {
            tokio::spawn(async move {
                for n in 0..messages {
                    let text = chat_message(index + n);
                    client.send_text(&text).await?;
                    let echo = client.next_text().await?;
                    if echo != text {
                        return Err::<_, Error>("a wrong echo".into());
                    }
                }
                Ok(client)
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(sessions);
    for task in tasks {
        clients.push(task.await??);
    }
    let elapsed = started.elapsed();
    let cpu = proc_stats::cpu_seconds_precise(pid).ok_or("no CPU time")? - cpu_before;
    // Every session has sent and received compressed messages; now idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = proc_stats::rss_kib(pid).ok_or("no RSS")?;
    drop(clients);
    Ok(EchoResult {
        echoes: sessions * messages,
        cpu,
        received: received.load(Ordering::Relaxed),
        idle_kib: rss_idle.saturating_sub(rss_before) as f64 / sessions as f64,
        elapsed,
    })
}

struct BroadcastResult {
    rounds: usize,
    members: usize,
    cpu: Vec<f64>,
    answer: String,
    received: u64,
}

/// POSTs `body` to `/fanout` and returns the answer's body.
async fn post_fanout(addr: &str, body: &str) -> Result<String, Error> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!(
                "POST /fanout?mode=broadcast HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
                 Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer
        .split_once("\r\n\r\n")
        .map_or(answer.clone(), |(_, body)| body.to_owned()))
}

/// One side of the broadcast comparison: `members` clients of
/// `broadcast-server`, `rounds` broadcasts of a chat message.
async fn broadcast_side(
    broadcast_bin: &str,
    side: Side,
    members: usize,
    rounds: usize,
) -> Result<BroadcastResult, Error> {
    let env: &[(&str, &str)] = match side {
        Side::Plain => &[],
        Side::Deflate => &[("DEFLATE", "on")],
        Side::Takeover => &[("DEFLATE", "takeover")],
    };
    let deflate = side.offers();
    let (base, child) = start_server_with(broadcast_bin, env).await?;
    let pid = child.id();
    let addr = address(&base);
    let received = Arc::new(AtomicU64::new(0));
    let arrived = Arc::new(AtomicUsize::new(0));
    let notify = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::with_capacity(members);
    for _ in 0..members {
        let mut client = Client::connect(&addr, "/ws", deflate, received.clone()).await?;
        let (arrived, notify) = (arrived.clone(), notify.clone());
        tasks.push(tokio::spawn(async move {
            while client.next_text().await.is_ok() {
                arrived.fetch_add(1, Ordering::SeqCst);
                notify.notify_one();
            }
        }));
    }
    // Every member has joined the room once a warm-up broadcast reaches all.
    let mut answer = String::new();
    let mut cpu = Vec::new();
    for round in 0..=rounds {
        loop {
            answer = post_fanout(&addr, "warm-up").await?;
            if answer.contains(&format!("\"reached\":{members}")) || round > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if round == 0 {
            // The warm-up's arrivals are not counted.
            while arrived.load(Ordering::SeqCst) < members {
                notify.notified().await;
            }
            // Warm-ups posted while members were still joining may arrive late.
            tokio::time::sleep(Duration::from_millis(500)).await;
            arrived.store(0, Ordering::SeqCst);
            received.store(0, Ordering::Relaxed);
            continue;
        }
        let target = round * members;
        let before = proc_stats::cpu_seconds_precise(pid).ok_or("no CPU time")?;
        answer = post_fanout(&addr, &chat_message(round)).await?;
        while arrived.load(Ordering::SeqCst) < target {
            notify.notified().await;
        }
        cpu.push(proc_stats::cpu_seconds_precise(pid).ok_or("no CPU time")? - before);
    }
    for task in tasks {
        task.abort();
    }
    Ok(BroadcastResult {
        rounds,
        members,
        cpu,
        answer,
        received: received.load(Ordering::Relaxed),
    })
}

pub async fn run(options: &crate::options::Options) -> Result<(), Error> {
    proc_stats::raise_open_files(options.sessions as u64 * 2 + 1_000);
    let sessions = options.sessions;
    let messages = options.messages;
    println!(
        "permessage-deflate against uncompressed: echo of the chat example's JSON messages, \
         {sessions} sessions x {messages} messages (one in flight per session)"
    );
    let sample = chat_message(1);
    println!("  a message: {sample} ({} bytes)", sample.len());
    for side in Side::ALL {
        let result = echo_side(&options.echo_bin, side, sessions, messages).await?;
        println!(
            "  {:<12} server CPU per echo {:.2} us, wire bytes per echoed message (server to client, \
             frame headers included) {:.1}, {:.0} echoes/s, idle RSS per session after the echoes {:.2} KiB",
            side.label(),
            result.cpu * 1e6 / result.echoes as f64,
            result.received as f64 / result.echoes as f64,
            result.echoes as f64 / result.elapsed.as_secs_f64(),
            result.idle_kib,
        );
    }
    if options.rounds > 0 {
        println!(
            "broadcast of one chat message to {} members of broadcast-server, {} rounds",
            options.broadcast_members, options.rounds
        );
        for side in Side::ALL {
            let result = broadcast_side(
                &options.broadcast_bin,
                side,
                options.broadcast_members,
                options.rounds,
            )
            .await?;
            let mut cpu = result.cpu.clone();
            cpu.sort_by(f64::total_cmp);
            let mean = cpu.iter().sum::<f64>() / cpu.len() as f64;
            println!(
                "  {:<12} server CPU per broadcast mean {:.2} ms (min {:.2}, max {:.2}), {:.2} us per delivery, \
                 wire bytes per delivery {:.1}; last answer {}",
                side.label(),
                mean * 1e3,
                cpu[0] * 1e3,
                cpu[cpu.len() - 1] * 1e3,
                mean * 1e6 / result.members as f64,
                result.received as f64 / (result.rounds * result.members) as f64,
                result.answer.trim(),
            );
        }
    }
    Ok(())
}
