//! The connection task of an RFC 6455 WebSocket session.

use super::stream_session::{
    close_frame_for, fail_remaining, AckToken, Command, Outgoing, StreamSession,
};
use crate::session::{CloseReason, Message, SendError};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

/// How long the server waits for the peer's reply to its close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Pings sent by the app, waiting for their pongs in order.
#[derive(Default)]
struct PendingPings {
    waiting: VecDeque<(Bytes, AckToken)>,
}

impl PendingPings {
    /// A pong answers the ping with the same payload, and every ping before
    /// it (a peer may answer only the latest of several).
    fn pong(&mut self, payload: &[u8]) {
        if let Some(index) = self.waiting.iter().position(|(p, _)| p == payload) {
            for (_, token) in self.waiting.drain(..=index) {
                let _ = token.send(Ok(()));
            }
        }
    }

    fn fail(&mut self, reason: &CloseReason) {
        for (_, token) in self.waiting.drain(..) {
            let _ = token.send(Err(SendError::Closed(reason.clone())));
        }
    }
}

/// What a read error means for the session: a code to close with, or a lost connection.
fn failure(error: &WsError) -> CloseReason {
    match error {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            CloseReason::Failed {
                code: 1009,
                reason: format!("Message of {size} bytes exceeds {max_size}"),
            }
        }
        WsError::Capacity(other) => CloseReason::Failed {
            code: 1009,
            reason: other.to_string(),
        },
        WsError::Utf8(_) => CloseReason::Failed {
            code: 1007,
            reason: "Invalid UTF-8 in text message".into(),
        },
        WsError::Protocol(problem) => CloseReason::Failed {
            code: 1002,
            reason: problem.to_string(),
        },
        _ => CloseReason::ConnectionLost,
    }
}

/// Sends a close frame and waits (briefly) for the peer's close in return.
async fn close_handshake<S>(ws: &mut WebSocketStream<S>, code: u16, reason: String)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    if ws.send(WsMessage::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Runs one WebSocket session until it closes; returns why it closed.
pub(crate) async fn run<S>(
    session: &StreamSession,
    mut ws: WebSocketStream<S>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    incoming: mpsc::Sender<Message>,
    ping_interval: Option<Duration>,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut pings = PendingPings::default();
    let mut automatic = ping_interval.map(|every| {
        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer
    });
    let mut awaiting_pong = false;
    let reason = loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Send(message, token)) => {
                    session.dequeued();
                    let frame = match message {
                        Outgoing::Text(text) => WsMessage::text(text),
                        Outgoing::Binary(data) => WsMessage::binary(data),
                    };
                    if ws.send(frame).await.is_err() {
                        let _ = token.send(Err(SendError::Closed(CloseReason::ConnectionLost)));
                        break CloseReason::ConnectionLost;
                    }
                    let _ = token.send(Ok(()));
                }
                Some(Command::Ping(payload, token)) => {
                    pings.waiting.push_back((payload.clone(), token));
                    if ws.send(WsMessage::Ping(payload)).await.is_err() {
                        break CloseReason::ConnectionLost;
                    }
                }
                Some(Command::Close(reason)) => {
                    // The session is closed from now on, however long the peer
                    // takes to answer the close frame.
                    session.finish(reason.clone());
                    let (code, text) = close_frame_for(&reason);
                    close_handshake(&mut ws, code, text).await;
                    break reason;
                }
                None => break CloseReason::ConnectionLost,
            },
            frame = ws.next() => match frame {
                Some(Ok(WsMessage::Text(text))) => {
                    let _ = incoming.send(Message::Text(text.as_str().to_owned())).await;
                }
                Some(Ok(WsMessage::Binary(data))) => {
                    let _ = incoming.send(Message::Binary(data)).await;
                }
                Some(Ok(WsMessage::Pong(payload))) => {
                    awaiting_pong = false;
                    pings.pong(&payload);
                }
                // tungstenite queues the pong itself and writes it on the next read.
                Some(Ok(WsMessage::Ping(_) | WsMessage::Frame(_))) => {}
                Some(Ok(WsMessage::Close(frame))) => {
                    // tungstenite answers the close; read on until the stream ends.
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                        while let Some(Ok(_)) = ws.next().await {}
                    }).await;
                    break match frame {
                        Some(frame) => CloseReason::Peer {
                            code: Some(frame.code.into()),
                            reason: frame.reason.as_str().to_owned(),
                        },
                        None => CloseReason::Peer { code: None, reason: String::new() },
                    };
                }
                Some(Err(error)) => {
                    let reason = failure(&error);
                    tracing::debug!(session = %session.info.id, %error, "WebSocket error");
                    session.finish(reason.clone());
                    if let CloseReason::Failed { code, reason: text } = &reason {
                        close_handshake(&mut ws, *code, text.clone()).await;
                    }
                    break reason;
                }
                None => break CloseReason::ConnectionLost,
            },
            _ = async { automatic.as_mut().expect("guarded").tick().await }, if automatic.is_some() => {
                if awaiting_pong {
                    session.finish(CloseReason::PingTimeout);
                    close_handshake(&mut ws, 1001, "Ping timeout".into()).await;
                    break CloseReason::PingTimeout;
                }
                awaiting_pong = true;
                if ws.send(WsMessage::Ping(Bytes::new())).await.is_err() {
                    break CloseReason::ConnectionLost;
                }
            }
        }
    };
    pings.fail(&reason);
    fail_remaining(session, &mut commands, &reason);
    reason
}
