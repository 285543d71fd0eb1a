//! The native WebSocket endpoint: the RFC 6455 handshake inside the layer
//! (and the legacy hixie-75/76 one when enabled), then the session runs on
//! its connection's task (`upgrade`).

use crate::admission::Admission;
use crate::base::transport::Transport;
use crate::config::WebSocketConfig;
use crate::reply;
use crate::upgrade::handshake::{self, HandshakeOptions};
use crate::upgrade::socket::Buffers;
use crate::upgrade::Upgrade;
use axum::body::Body;
use channel_protocol::websocket::Session as Engine;
use http::{Method, Request, Response, StatusCode};
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
        if request.method() != Method::GET {
            return reply::text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
        }
        let (mut parts, _body) = request.into_parts();
        let options = HandshakeOptions {
            protocols: &self.websocket.protocols,
            headers: &self.websocket.headers,
            hixie: self.websocket.hixie76,
        };
        let accepted = match handshake::accept(&mut parts, &options) {
            Ok(accepted) => accepted,
            Err(refusal) => return refusal.response(),
        };
        let mut admitted = match self
            .admission
            .admit(&parts, Transport::WebSocket, None)
            .await
        {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal.response(),
        };
        admitted.info.protocol = accepted.protocol.map(std::borrow::Cow::Owned);
        let upgrade = Upgrade {
            admission: self.admission.clone(),
            buffers: Buffers::new(&self.websocket, self.websocket.max_message_size),
        };
        let websocket = self.websocket.clone();
        let (on_upgrade, kind) = (accepted.on_upgrade, accepted.handshake);
        upgrade.spawn(on_upgrade, kind, admitted, move |now, rfc6455| {
            Engine::new(now, websocket.session(rfc6455))
        });
        accepted.response
    }
}
