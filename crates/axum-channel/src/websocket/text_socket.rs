//! A WebSocket that carries text messages only, over either framing (RFC
//! 6455 or hixie-76): what the SockJS `websocket` transport needs.

use super::handshake::Handshake;
use super::hixie::answer_challenge;
use crate::session::CloseReason;
use channel_protocol::hixie76::{self, Frame, FrameDecoder, FrameError};
use futures::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

type Io = TokioIo<Upgraded>;

/// How long a closing handshake may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A text-only WebSocket connection.
pub(crate) enum TextSocket {
    Rfc6455(Box<WebSocketStream<Io>>),
    Hixie {
        io: Io,
        decoder: FrameDecoder,
        buffer: Vec<u8>,
    },
}

/// What the peer sent.
pub(crate) enum Received {
    Text(String),
    /// The connection ended, and why.
    Closed(CloseReason),
}

impl TextSocket {
    /// Takes over an upgraded connection (answering the hixie-76 challenge when needed).
    pub(crate) async fn establish(
        mut io: Io,
        handshake: &Handshake,
        max_message_size: usize,
    ) -> Option<Self> {
        match handshake {
            Handshake::Rfc6455 { .. } => {
                let config = WebSocketConfig::default()
                    .max_message_size(Some(max_message_size))
                    .max_frame_size(Some(max_message_size));
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                Some(TextSocket::Rfc6455(Box::new(ws)))
            }
            Handshake::Hixie76 { key1, key2 } => {
                answer_challenge(&mut io, key1, key2).await.ok()?;
                Some(Self::hixie(io, max_message_size))
            }
            Handshake::Hixie75 => Some(Self::hixie(io, max_message_size)),
        }
    }

    fn hixie(io: Io, max_message_size: usize) -> Self {
        TextSocket::Hixie {
            io,
            decoder: FrameDecoder::new(max_message_size),
            buffer: vec![0; 8192],
        }
    }

    /// Sends one text message; false when the connection is gone.
    pub(crate) async fn send(&mut self, text: String) -> bool {
        match self {
            TextSocket::Rfc6455(ws) => ws.send(WsMessage::text(text)).await.is_ok(),
            TextSocket::Hixie { io, .. } => io
                .write_all(&hixie76::encode_text_frame(&text))
                .await
                .is_ok(),
        }
    }

    /// The next text message, or the end of the connection. Cancel-safe.
    pub(crate) async fn recv(&mut self) -> Received {
        match self {
            TextSocket::Rfc6455(ws) => loop {
                match ws.next().await {
                    Some(Ok(WsMessage::Text(text))) => {
                        return Received::Text(text.as_str().to_owned())
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                            while let Some(Ok(_)) = ws.next().await {}
                        })
                        .await;
                        return Received::Closed(CloseReason::Peer {
                            code: frame.as_ref().map(|f| f.code.into()),
                            reason: frame
                                .map(|f| f.reason.as_str().to_owned())
                                .unwrap_or_default(),
                        });
                    }
                    // Binary messages have no meaning in SockJS; control frames are tungstenite's.
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Received::Closed(CloseReason::ConnectionLost),
                }
            },
            TextSocket::Hixie {
                io,
                decoder,
                buffer,
            } => loop {
                match decoder.next_frame() {
                    Ok(Some(Frame::Text(text))) => return Received::Text(text),
                    Ok(Some(Frame::Close)) => {
                        let _ = io.write_all(&hixie76::CLOSING_FRAME).await;
                        return Received::Closed(CloseReason::Peer {
                            code: None,
                            reason: String::new(),
                        });
                    }
                    Ok(None) => match io.read(buffer).await {
                        Ok(0) | Err(_) => return Received::Closed(CloseReason::ConnectionLost),
                        Ok(n) => decoder.extend(&buffer[..n]),
                    },
                    Err(error) => {
                        let code = match error {
                            FrameError::TooLong { .. } => 1009,
                            FrameError::InvalidUtf8 => 1007,
                            FrameError::BadFrameType(_) => 1002,
                        };
                        return Received::Closed(CloseReason::Failed {
                            code,
                            reason: error.to_string(),
                        });
                    }
                }
            },
        }
    }

    /// Runs the closing handshake.
    pub(crate) async fn close(&mut self, code: u16, reason: &str) {
        match self {
            TextSocket::Rfc6455(ws) => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                if ws.send(WsMessage::Close(Some(frame))).await.is_ok() {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                }
            }
            TextSocket::Hixie { io, .. } => {
                let _ = io.write_all(&hixie76::CLOSING_FRAME).await;
                let _ = io.shutdown().await;
            }
        }
    }
}
