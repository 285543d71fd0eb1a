//! One way in for every session, whatever its transport: the bound on open
//! sessions, the app's authorisation hook, what the session knows of its
//! peer, opening the live session and starting the app's callback.
//!
//! Every transport's entry asks [`Admission::admit`] before it answers
//! anything that opens a session (a WebSocket's `101` included), so every
//! refusal is the same reply, the same log line and the same counter
//! (`channel_sessions_refused_total{transport, reason}`).

use crate::base::info::SessionInfo;
use crate::base::transport::Transport;
use crate::config::{ChannelConfig, SessionRequest};
use crate::live::{Clock, Live};
use crate::reply;
use crate::services::registry::{Refused, Slot};
use crate::services::Services;
use crate::session::Session;
use axum::body::Body;
use channel_protocol::Engine;
use futures::future::BoxFuture;
use futures::FutureExt;
use http::request::Parts;
use http::{Extensions, HeaderMap, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;

/// Why a request may not open a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The authorisation hook said no (or the app closed the session in
    /// its callback's first step): 403.
    Forbidden,
    /// Every place under `max_sessions` is taken: 503.
    Full,
    /// The layer is shutting down: 503.
    ShuttingDown,
}

impl Refusal {
    /// The label of `channel_sessions_refused_total`'s `reason`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::Forbidden => "forbidden",
            Refusal::Full => "full",
            Refusal::ShuttingDown => "shutting_down",
        }
    }

    /// The one reply every transport gives.
    pub(crate) fn response(self) -> Response<Body> {
        match self {
            Refusal::Forbidden => reply::text(StatusCode::FORBIDDEN, "Forbidden"),
            Refusal::Full => reply::text(StatusCode::SERVICE_UNAVAILABLE, "Too many sessions"),
            Refusal::ShuttingDown => {
                reply::text(StatusCode::SERVICE_UNAVAILABLE, "Server shutting down")
            }
        }
    }
}

/// A request let in: what its session will know of its peer, and its
/// place under the bound.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) info: SessionInfo,
    slot: Slot,
}

/// The admission of one layer's sessions.
#[derive(Clone)]
pub(crate) struct Admission {
    config: Arc<ChannelConfig>,
    services: Arc<Services>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").finish_non_exhaustive()
    }
}

impl Admission {
    pub(crate) fn new(config: Arc<ChannelConfig>, services: Arc<Services>) -> Self {
        Self { config, services }
    }

    /// The layer's settings.
    pub(crate) fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// What every session of the layer shares.
    pub(crate) fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Lets the request in, or says why not (the refusal is logged and
    /// counted already). `headers` are what the session shows of the
    /// request's headers (all but `Cookie` when `None`).
    pub(crate) async fn admit(
        &self,
        parts: &Parts,
        transport: Transport,
        headers: Option<&HeaderMap>,
    ) -> Result<Admitted, Refusal> {
        let remote = remote_addr(parts);
        let admitted = self.try_admit(parts, transport, headers, remote).await;
        if let Err(refusal) = admitted {
            self.refused(transport, refusal, remote);
        }
        admitted
    }

    async fn try_admit(
        &self,
        parts: &Parts,
        transport: Transport,
        headers: Option<&HeaderMap>,
        remote: Option<SocketAddr>,
    ) -> Result<Admitted, Refusal> {
        if self.services.is_shutting_down() {
            return Err(Refusal::ShuttingDown);
        }
        // The bound first: it costs nothing, and a full layer does not run
        // the app's hook for nothing.
        let slot = self.services.registry.reserve().ok_or(Refusal::Full)?;
        let extensions = self.authorize(parts, remote).await?;
        let mut info = SessionInfo::new(
            transport,
            remote,
            &parts.uri,
            headers.unwrap_or(&parts.headers),
        );
        info.extensions = extensions;
        Ok(Admitted { info, slot })
    }

    async fn authorize(
        &self,
        parts: &Parts,
        remote: Option<SocketAddr>,
    ) -> Result<Extensions, Refusal> {
        let Some(authorize) = &self.config.authorizer else {
            return Ok(Extensions::new());
        };
        let request = SessionRequest {
            method: parts.method.clone(),
            headers: parts.headers.clone(),
            uri: parts.uri.clone(),
            remote_addr: remote,
        };
        authorize(request).await.ok_or(Refusal::Forbidden)
    }

    /// Logs and counts a refusal, once.
    pub(crate) fn refused(
        &self,
        transport: Transport,
        refusal: Refusal,
        remote: Option<SocketAddr>,
    ) {
        tracing::info!(
            %transport,
            reason = refusal.label(),
            remote = ?remote,
            "session refused"
        );
        self.services
            .telemetry
            .transport(transport)
            .refused(refusal.label());
    }

    /// Opens the live session of an admitted request around `engine`.
    /// `Err` hands back the SockJS session another request opened meanwhile
    /// under the same key (this one's place is given back).
    pub(crate) fn open<E: Engine + Send + 'static>(
        &self,
        admitted: Admitted,
        engine: E,
        clock: Clock,
    ) -> Result<Arc<Live<E>>, Refused> {
        let live = Live::open(
            admitted.info,
            engine,
            self.services.clone(),
            clock,
            admitted.slot,
        )?;
        live.info()
            .span
            .in_scope(|| tracing::debug!("session opened"));
        Ok(live)
    }

    /// The app's callback for a new session, not started yet (a WebSocket
    /// polls it on its connection's task).
    pub(crate) fn callback<E: Engine + Send + 'static>(
        &self,
        live: &Arc<Live<E>>,
    ) -> Option<BoxFuture<'static, ()>> {
        let session = Session::new(live.clone(), self.services.clone());
        match &self.config.handler {
            Some(handler) => Some(handler(session)),
            None => {
                tracing::warn!("no on_session callback configured; the session is never read");
                None
            }
        }
    }

    /// Starts the app's callback as a task of its own. Its first step runs
    /// here, before the client gets an answer, so a callback that closes
    /// the session at once refuses the client.
    pub(crate) fn start<E: Engine + Send + 'static>(&self, live: &Arc<Live<E>>) {
        if let Some(mut task) = self.callback(live) {
            if (&mut task).now_or_never().is_none() {
                tokio::spawn(task);
            }
        }
    }
}

/// The peer's address, when the server was started with connect info.
pub(crate) fn remote_addr(parts: &Parts) -> Option<SocketAddr> {
    connect_info(&parts.extensions)
}

fn connect_info(extensions: &Extensions) -> Option<SocketAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
}
