//! A WebSocket client load: every session sends a text message and waits for
//! its echo before sending the next.

use crate::report::Samples;
use futures::{SinkExt, StreamExt};
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

type Error = crate::server::Error;

/// Connects `sessions` clients to `url`, then has each echo `messages` messages.
pub async fn run(url: &str, sessions: usize, messages: usize) -> Result<Samples, Error> {
    let mut sockets = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let (socket, _) = tokio_tungstenite::connect_async(url).await?;
        sockets.push(socket);
    }
    let started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(messages);
                for n in 0..messages {
                    let text = format!("{{\"n\":{n},\"text\":\"hello world\"}}");
                    let sent = Instant::now();
                    socket.send(Message::text(text.clone())).await?;
                    loop {
                        match socket.next().await {
                            Some(Ok(Message::Text(echo))) if echo.as_str() == text => break,
                            Some(Ok(_)) => continue,
                            Some(Err(error)) => return Err(Error::from(error)),
                            None => return Err("connection closed".into()),
                        }
                    }
                    latencies.push(sent.elapsed());
                }
                let _ = socket.close(None).await;
                Ok::<_, Error>(latencies)
            })
        })
        .collect();
    crate::report::gather(tasks, started).await
}
