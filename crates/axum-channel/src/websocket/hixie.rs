//! The connection task of a legacy hixie-75/76 WebSocket session.

use super::stream_session::{fail_remaining, Command, Outgoing, StreamSession};
use crate::session::{CloseReason, Message, SendError};
use channel_protocol::hixie76::{self, Frame, FrameDecoder, FrameError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// How long the server waits for the 8 key bytes that follow a hixie-76 request.
const KEY3_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes the hixie-76 handshake: reads the 8 bytes sent after the
/// request headers and answers with the MD5 challenge response.
pub(crate) async fn answer_challenge<S>(io: &mut S, key1: &str, key2: &str) -> std::io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut key3 = [0u8; 8];
    tokio::time::timeout(KEY3_TIMEOUT, io.read_exact(&mut key3))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no hixie-76 key"))??;
    let answer = hixie76::challenge_response(key1, key2, &key3)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    io.write_all(&answer).await?;
    io.flush().await
}

fn failure(error: FrameError) -> CloseReason {
    let code = match error {
        FrameError::TooLong { .. } => 1009,
        FrameError::InvalidUtf8 => 1007,
        FrameError::BadFrameType(_) => 1002,
    };
    CloseReason::Failed {
        code,
        reason: error.to_string(),
    }
}

/// Runs one hixie session until it closes; returns why it closed.
pub(crate) async fn run<S>(
    session: &StreamSession,
    io: S,
    mut commands: mpsc::UnboundedReceiver<Command>,
    incoming: mpsc::Sender<Message>,
    max_message_size: usize,
) -> CloseReason
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(io);
    let mut decoder = FrameDecoder::new(max_message_size);
    let mut buffer = vec![0u8; 8192];
    let reason = 'session: loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Send(message, token)) => {
                    session.dequeued();
                    let Outgoing::Text(text) = message else {
                        let _ = token.send(Err(SendError::Unsupported("binary messages")));
                        continue;
                    };
                    if writer.write_all(&hixie76::encode_text_frame(&text)).await.is_err() {
                        let _ = token.send(Err(SendError::Closed(CloseReason::ConnectionLost)));
                        break CloseReason::ConnectionLost;
                    }
                    let _ = token.send(Ok(()));
                }
                Some(Command::Ping(_, token)) => {
                    let _ = token.send(Err(SendError::Unsupported("ping")));
                }
                Some(Command::Close(reason)) => {
                    // The draft has no close codes: the closing frame is all there is.
                    let _ = writer.write_all(&hixie76::CLOSING_FRAME).await;
                    let _ = writer.shutdown().await;
                    break reason;
                }
                None => break CloseReason::ConnectionLost,
            },
            read = reader.read(&mut buffer) => {
                let n = match read {
                    Ok(0) | Err(_) => break CloseReason::ConnectionLost,
                    Ok(n) => n,
                };
                decoder.extend(&buffer[..n]);
                loop {
                    match decoder.next_frame() {
                        Ok(Some(Frame::Text(text))) => {
                            let _ = incoming.send(Message::Text(text)).await;
                        }
                        Ok(Some(Frame::Close)) => {
                            let _ = writer.write_all(&hixie76::CLOSING_FRAME).await;
                            let _ = writer.shutdown().await;
                            break 'session CloseReason::Peer { code: None, reason: String::new() };
                        }
                        Ok(None) => break,
                        Err(error) => {
                            let _ = writer.write_all(&hixie76::CLOSING_FRAME).await;
                            let _ = writer.shutdown().await;
                            break 'session failure(error);
                        }
                    }
                }
            }
        }
    };
    fail_remaining(session, &mut commands, &reason);
    reason
}
