//! permessage-deflate (RFC 7692) on `/ws` and SockJS's raw `/websocket`,
//! driven by a client over raw TCP that compresses and inflates with the
//! protocol crate's own codec.

use axum_channel::{ChannelConfig, DeflateConfig, Message, Payload, SockJsConfig, WebSocketConfig};
use axum_channel_protocol::websocket::permessage_deflate::{
    negotiate, Agreed, DeflateParams, Deflater, Inflater,
};
use channel_tests::{recv, within, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A frame as the server sent it.
#[derive(Debug)]
struct ServerFrame {
    rsv1: bool,
    opcode: u8,
    payload: Vec<u8>,
}

struct RawClient {
    stream: TcpStream,
    /// The response's `Sec-WebSocket-Extensions`, if any.
    extensions: Option<String>,
    /// How the client compresses and reads, mirrored from the answer.
    agreed: Option<Agreed>,
    deflater: Option<Deflater>,
    inflater: Option<Inflater>,
}

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

impl RawClient {
    async fn connect(server: &TestServer, path: &str, offer: Option<&str>) -> Self {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let extensions = offer
            .map(|offer| format!("Sec-WebSocket-Extensions: {offer}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extensions}\r\n",
            server.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = within(stream.read(&mut byte)).await.unwrap().unwrap();
            assert_eq!(n, 1, "closed during the handshake");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let extensions = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| value.trim().to_owned())
        });
        // The client's view: what the server answered, read back with the
        // server's negotiation (every parameter the answer names).
        let agreed = extensions.as_deref().and_then(|answer| {
            let as_answered = DeflateConfig {
                server_no_context_takeover: false,
                ..DeflateConfig::default()
            };
            negotiate([answer], &as_answered)
        });
        let deflater = agreed.map(|agreed| {
            Deflater::new(DeflateParams {
                level: 6,
                window_bits: agreed.client_max_window_bits,
                no_context_takeover: agreed.client_no_context_takeover,
            })
        });
        // What the server compresses with is what the client inflates.
        let inflater = agreed.map(|agreed| Inflater::with_params(agreed.outgoing()));
        Self {
            stream,
            extensions,
            agreed,
            deflater,
            inflater,
        }
    }

    async fn send_frame(&mut self, first: u8, payload: &[u8]) {
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut out = vec![first];
        match payload.len() {
            len if len < 126 => out.push(0x80 | len as u8),
            len if len < 65_536 => {
                out.push(0x80 | 126);
                out.extend((len as u16).to_be_bytes());
            }
            len => {
                out.push(0x80 | 127);
                out.extend((len as u64).to_be_bytes());
            }
        }
        out.extend(mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&out).await.unwrap();
    }

    /// Sends a text message, compressed.
    async fn send_compressed(&mut self, text: &str) {
        let compressed = self.deflater.as_mut().unwrap().deflate(text.as_bytes());
        self.send_frame(0xC1, &compressed).await;
    }

    async fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        within(self.stream.read_exact(&mut buf))
            .await
            .expect("a frame in time")
            .expect("the connection is open");
        buf
    }

    async fn next_frame(&mut self) -> ServerFrame {
        let head = self.read_exact(2).await;
        assert_eq!(head[1] & 0x80, 0, "the server never masks");
        let len = match head[1] & 0x7f {
            126 => u16::from_be_bytes(self.read_exact(2).await.try_into().unwrap()) as usize,
            127 => u64::from_be_bytes(self.read_exact(8).await.try_into().unwrap()) as usize,
            len => usize::from(len),
        };
        let payload = self.read_exact(len).await;
        ServerFrame {
            rsv1: head[0] & 0x40 != 0,
            opcode: head[0] & 0x0f,
            payload,
        }
    }

    /// The next text message, inflated if it came compressed.
    async fn next_text(&mut self) -> (bool, String) {
        let frame = self.next_frame().await;
        assert_eq!(frame.opcode, 1, "{frame:?}");
        let data = if frame.rsv1 {
            let inflater = self.inflater.as_mut().expect("compressed only when agreed");
            let mut out = Vec::new();
            inflater.inflate(&frame.payload, &mut out, 1 << 24).unwrap();
            inflater.finish(&mut out, 1 << 24).unwrap();
            out
        } else {
            frame.payload
        };
        (frame.rsv1, String::from_utf8(data).unwrap())
    }

    /// The server's close frame's code.
    async fn close_code(&mut self) -> u16 {
        loop {
            let frame = self.next_frame().await;
            if frame.opcode == 8 {
                return u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
            }
        }
    }
}

fn deflate() -> DeflateConfig {
    DeflateConfig {
        min_size: 16,
        ..DeflateConfig::default()
    }
}

async fn echo_once(server: &mut TestServer, client: &mut RawClient) {
    let mut session = server.next_session().await;
    let long = "compressible text, compressible text, compressible text";
    client.send_compressed(long).await;
    // Uncompressed frames still pass in a compressed session.
    client.send_frame(0x81, b"plain").await;
    for expected in [long, "plain"] {
        let Message::Text(text) = recv(&mut session).await else {
            panic!("text expected")
        };
        assert_eq!(text, expected);
        let _delivery = session.send_text(text);
    }
    assert_eq!(client.next_text().await, (true, long.to_owned()));
    // Below `min_size`: sent as it is.
    assert_eq!(client.next_text().await, (false, "plain".to_owned()));
}

#[tokio::test]
async fn ws_negotiates_and_echoes_compressed_text_both_ways() {
    let mut server = TestServer::start(
        ChannelConfig::new().websocket("/ws", WebSocketConfig::new().permessage_deflate(deflate())),
    )
    .await;
    let mut client = RawClient::connect(
        &server,
        "/ws",
        Some("permessage-deflate; client_max_window_bits"),
    )
    .await;
    assert_eq!(
        client.extensions.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_max_window_bits=15")
    );
    echo_once(&mut server, &mut client).await;
}

#[tokio::test]
async fn sockjs_raw_websocket_negotiates_too() {
    let mut server = TestServer::start(
        ChannelConfig::new().sockjs("/sockjs", SockJsConfig::new().permessage_deflate(deflate())),
    )
    .await;
    let mut client = RawClient::connect(
        &server,
        "/sockjs/websocket",
        Some("permessage-deflate; server_max_window_bits=10, permessage-deflate"),
    )
    .await;
    assert_eq!(
        client.extensions.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=10")
    );
    echo_once(&mut server, &mut client).await;
}

#[tokio::test]
async fn no_offer_or_no_config_means_no_extension() {
    let mut server = TestServer::start(
        ChannelConfig::new().websocket("/ws", WebSocketConfig::new().permessage_deflate(deflate())),
    )
    .await;
    let client = RawClient::connect(&server, "/ws", None).await;
    assert_eq!(client.extensions, None);
    let _session = server.next_session().await;
    let mut server =
        TestServer::start(ChannelConfig::new().websocket("/ws", WebSocketConfig::new())).await;
    let mut client = RawClient::connect(&server, "/ws", Some("permessage-deflate")).await;
    assert_eq!(client.extensions, None);
    let _session = server.next_session().await;
    // Without the extension, RSV1 is a protocol error.
    client
        .send_frame(0xC1, b"\xf2\x48\xcd\xc9\xc9\x07\x00")
        .await;
    assert_eq!(client.close_code().await, 1002);
}

#[tokio::test]
async fn an_inflate_bomb_closes_with_1009_at_the_limit() {
    let mut server = TestServer::start(
        ChannelConfig::new().websocket(
            "/ws",
            WebSocketConfig::new()
                .max_message_size(64 * 1024)
                .permessage_deflate(deflate()),
        ),
    )
    .await;
    let mut client = RawClient::connect(&server, "/ws", Some("permessage-deflate")).await;
    let _session = server.next_session().await;
    // 16 MiB of zeros, a few KiB compressed.
    let bomb = vec![0u8; 16 << 20];
    let compressed = client.deflater.as_mut().unwrap().deflate(&bomb);
    assert!(compressed.len() < 64 * 1024);
    client.send_frame(0xC2, &compressed).await;
    assert_eq!(client.close_code().await, 1009);
}

#[tokio::test]
async fn broadcasts_share_one_compressed_frame_without_context_takeover() {
    let takeover = DeflateConfig {
        server_no_context_takeover: false,
        ..deflate()
    };
    let mut server = TestServer::start(
        ChannelConfig::new()
            .websocket("/ws", WebSocketConfig::new().permessage_deflate(deflate()))
            .sockjs("/sockjs", SockJsConfig::new().permessage_deflate(takeover)),
    )
    .await;
    let mut clients = Vec::new();
    let mut sessions = Vec::new();
    for path in [
        "/ws",
        "/ws",
        "/ws",
        "/sockjs/websocket",
        "/sockjs/websocket",
    ] {
        clients.push(RawClient::connect(&server, path, Some("permessage-deflate")).await);
        let session = server.next_session().await;
        session.join("r").await.unwrap();
        sessions.push(session);
    }
    assert!(clients[3]
        .agreed
        .is_some_and(|a| !a.server_no_context_takeover));
    let text = "a broadcast long enough to be compressed, compressed once";
    let report = server
        .handle
        .broadcast_payload(Payload::text(text))
        .to("r")
        .send()
        .await
        .unwrap();
    assert_eq!(report.reached, 5);
    // One frame for the three without context takeover; the two with it
    // compress their own copies.
    assert_eq!(report.deflated_encodings, 1);
    assert_eq!(report.member_deflates, 2);
    for client in &mut clients {
        assert_eq!(client.next_text().await, (true, text.to_owned()));
    }
    // Context takeover: the second message leans on the first one's window.
    server.handle.broadcast(text).to("r").send().await.unwrap();
    for client in &mut clients {
        assert_eq!(client.next_text().await, (true, text.to_owned()));
    }
}
