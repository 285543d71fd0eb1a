//! The native WebSocket endpoint: the RFC 6455 handshake inside the layer
//! (and the legacy hixie-75/76 one when enabled), then the session runs on
//! its connection's task (`upgrade`).

use crate::admission::Admission;
use crate::base::transport::Transport;
use crate::config::WebSocketConfig;
use crate::upgrade::handshake::{check_upgradable, negotiate_deflate, refused, upgrade};
use crate::upgrade::socket::Buffers;
use crate::upgrade::Upgrade;
use axum::body::Body;
use axum_channel_protocol::websocket::handshake::{self, Options};
use axum_channel_protocol::websocket::Session as Engine;
use http::{Request, Response};
use std::borrow::Cow;
use std::fmt;

/// Serves the WebSocket endpoint of one layer.
pub(crate) struct WebSocketServer {
    admission: Admission,
    websocket: WebSocketConfig,
}

impl fmt::Debug for WebSocketServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketServer").finish_non_exhaustive()
    }
}

impl WebSocketServer {
    pub(crate) fn new(admission: Admission, websocket: WebSocketConfig) -> Self {
        Self {
            admission,
            websocket,
        }
    }

    /// Answers the handshake; the session starts once the connection is upgraded.
    pub(crate) async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let (mut parts, _body) = request.into_parts();
        let options = Options {
            protocols: &self.websocket.protocols,
            hixie: self.websocket.hixie76,
        };
        let mut accepted = match handshake::accept(&parts, &options) {
            Ok(accepted) => accepted,
            Err(refusal) => return refused(refusal),
        };
        if let Err(refusal) = check_upgradable(&parts) {
            return refused(refusal);
        }
        let mut admitted = match self
            .admission
            .admit(&parts, Transport::WebSocket, None)
            .await
        {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal.response(),
        };
        admitted.info.protocol = accepted.protocol.clone().map(Cow::Owned);
        let deflate = negotiate_deflate(&parts, &mut accepted, self.websocket.deflate.as_ref());
        let upgrading = match upgrade(&mut parts, accepted, &self.websocket.headers) {
            Ok(upgrading) => upgrading,
            Err(refusal) => return refused(refusal),
        };
        let connection = Upgrade {
            admission: self.admission.clone(),
            buffers: Buffers::new(&self.websocket, self.websocket.max_message_size),
            deflate,
        };
        let websocket = self.websocket.clone();
        connection.spawn(
            upgrading.on_upgrade,
            upgrading.handshake,
            admitted,
            move |now, rfc6455| Engine::new(now, websocket.session(rfc6455, deflate.as_ref())),
        );
        upgrading.response
    }
}
