//! What every WebSocket session shares once its handshake is accepted
//! (native RFC 6455 and hixie, SockJS's `websocket` transport and its raw
//! `/websocket`): taking over the upgraded connection, then one connection
//! task per session.

pub(crate) mod connection;
mod deflate;
pub(crate) mod handshake;
mod hixie;
mod outgoing;
pub(crate) mod socket;

use crate::admission::{Admission, Admitted};
use crate::base::sync::now;
use crate::live::{Clock, Live};
use axum_channel_protocol::websocket::handshake::Handshake;
use axum_channel_protocol::websocket::permessage_deflate::Agreed;
use axum_channel_protocol::websocket::Framed;
use futures::future::BoxFuture;
use hixie::HixieSocket;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use socket::{Buffers, Socket};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// What a connection needs once its HTTP connection is upgraded.
pub(crate) struct Upgrade {
    pub(crate) admission: Admission,
    pub(crate) buffers: Buffers,
    /// permessage-deflate, when the handshake agreed on it.
    pub(crate) deflate: Option<Agreed>,
}

/// A session ready to run on its connection.
type Opened<E> = (Arc<Live<E>>, Socket, Option<BoxFuture<'static, ()>>);

impl Upgrade {
    /// Spawns the connection task: it takes over the upgraded connection,
    /// opens the admitted session with the engine `make` builds (told
    /// whether the framing is RFC 6455), and runs it. The opening steps live
    /// on the heap only until they are done, so an idle connection's task
    /// holds just what running the session needs.
    pub(crate) fn spawn<E, F>(
        self,
        on_upgrade: OnUpgrade,
        handshake: Handshake,
        admitted: Admitted,
        make: F,
    ) where
        E: Framed + Send + 'static,
        F: FnOnce(Instant, bool) -> E + Send + 'static,
    {
        // The opening steps log in the session's span; afterwards the
        // connection task enters it only to poll the app's callback (and
        // the session logs in it), so a round that only writes does not.
        let span = admitted.info.span.clone();
        let opening = Box::pin(
            self.open(on_upgrade, handshake, admitted, make)
                .instrument(span),
        );
        tokio::spawn(async move {
            if let Some((live, socket, app)) = opening.await {
                connection::run(live, socket, app).await;
            }
        });
    }

    async fn open<E, F>(
        self,
        on_upgrade: OnUpgrade,
        handshake: Handshake,
        admitted: Admitted,
        make: F,
    ) -> Option<Opened<E>>
    where
        E: Framed + Send + 'static,
        F: FnOnce(Instant, bool) -> E,
    {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                tracing::debug!(%error, "WebSocket upgrade failed");
                return None;
            }
        };
        let io = TokioIo::new(upgraded);
        let Some(socket) = establish(io, handshake, &self.buffers, self.deflate).await else {
            tracing::debug!("WebSocket handshake did not complete");
            return None;
        };
        let engine = make(now(), socket.is_rfc6455());
        // A WebSocket session has no SockJS key another request could share.
        let live = self
            .admission
            .open(admitted, engine, Clock::Connection)
            .ok()?;
        let app = self.admission.callback(&live);
        Some((live, socket, app))
    }
}

/// The socket for an upgraded connection, once the handshake is complete
/// (hixie-76 answers a challenge first).
async fn establish(
    mut io: socket::Io,
    handshake: Handshake,
    buffers: &Buffers,
    deflate: Option<Agreed>,
) -> Option<Socket> {
    if let (true, Some(agreed)) = (handshake.is_rfc6455(), deflate) {
        return Some(Socket::deflate(io, buffers, agreed));
    }
    if handshake.is_rfc6455() {
        return Some(Socket::rfc6455(io, buffers));
    }
    if let Some(challenge) = handshake.challenge(now()) {
        hixie::answer_challenge(&mut io, &challenge).await.ok()?;
    }
    Some(Socket::Hixie(Box::new(HixieSocket::new(
        io,
        buffers.max_message_size,
    ))))
}
