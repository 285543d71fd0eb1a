//! One way in for every session, whatever its transport: who the client is
//! (behind trusted proxies), the origin policy, the per-address rate, the
//! bounds on open sessions, the app's authorisation hook, what the session
//! knows of its peer, opening the live session and starting the app's
//! callback.
//!
//! Every transport's entry asks [`Admission::admit`] before it answers
//! anything that opens a session (a WebSocket's `101` included), so every
//! refusal is the same reply (a status and a short reason as plain text),
//! the same log line and the same counter
//! (`channel_sessions_refused_total{transport, reason}`).

use crate::base::info::SessionInfo;
use crate::base::transport::Transport;
use crate::config::proxies::Client;
use crate::config::Admit;
use crate::config::{ChannelConfig, Rejection, SessionRequest};
use crate::live::{Clock, Live};
use crate::reply;
use crate::services::registry::{Crowded, Refused, Slot};
use crate::services::Services;
use crate::session::Session;
use axum::body::Body;
use axum_channel_protocol::Engine;
use futures::future::BoxFuture;
use futures::FutureExt;
use http::request::Parts;
use http::{Extensions, HeaderMap, HeaderValue, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;

/// Why a request may not open a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The origin policy refuses the page the request comes from: 403.
    Origin(&'static str),
    /// The authorisation hook refused, with its status and reason.
    Rejected(Rejection),
    /// The app closed the session in its callback's first step: 403.
    Forbidden,
    /// The client's address opens sessions faster than allowed: 429.
    RateLimited,
    /// The client's address holds its share of open sessions: 429.
    AddressFull,
    /// Every place under `max_sessions` is taken: 503.
    Full,
    /// The layer is shutting down: 503.
    ShuttingDown,
}

impl Refusal {
    /// The label of `channel_sessions_refused_total`'s `reason`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Refusal::Origin(_) => "origin",
            Refusal::Rejected(_) => "rejected",
            Refusal::Forbidden => "forbidden",
            Refusal::RateLimited => "rate_limited",
            Refusal::AddressFull => "address_full",
            Refusal::Full => "full",
            Refusal::ShuttingDown => "shutting_down",
        }
    }

    /// The one reply every transport gives.
    pub(crate) fn response(&self) -> Response<Body> {
        let (status, reason) = match self {
            Refusal::Origin(reason) => (StatusCode::FORBIDDEN, *reason),
            Refusal::Rejected(rejection) => (rejection.status(), rejection.reason()),
            Refusal::Forbidden => (StatusCode::FORBIDDEN, "Forbidden"),
            Refusal::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many new sessions from this address",
            ),
            Refusal::AddressFull => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sessions from this address",
            ),
            Refusal::Full => (StatusCode::SERVICE_UNAVAILABLE, "Too many sessions"),
            Refusal::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "Server shutting down"),
        };
        reply::text(status, reason.to_owned())
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

    /// Who sent the request: its address and the host it asked for,
    /// behind trusted proxies the ones they forwarded.
    pub(crate) fn client(&self, parts: &Parts) -> Client {
        self.client_of(&parts.headers, &parts.extensions)
    }

    fn client_of(&self, headers: &HeaderMap, extensions: &Extensions) -> Client {
        self.config
            .trusted_proxies
            .client(connect_info(extensions), headers)
    }

    /// The origin a reply to a request with these headers and extensions
    /// may name in its CORS headers: its `Origin`, when the policy allows
    /// that page to read it.
    pub(crate) fn readable_by(
        &self,
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Option<HeaderValue> {
        let origin = headers.get(http::header::ORIGIN)?;
        let client = self.client_of(headers, extensions);
        let allowed = origin.to_str().is_ok_and(|origin| {
            self.config
                .origins
                .allows_origin(origin, client.host.as_deref())
        });
        allowed.then(|| origin.clone())
    }

    /// Who may frame the layer's pages (SockJS's iframe): the value of
    /// `Content-Security-Policy: frame-ancestors`, `None` when anyone may.
    pub(crate) fn frame_ancestors(&self) -> Option<String> {
        self.config.origins.frame_ancestors()
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
        let client = self.client(parts);
        let admitted = self.try_admit(parts, transport, headers, &client).await;
        if let Err(refusal) = &admitted {
            self.refused(transport, refusal, client.addr);
        }
        admitted
    }

    async fn try_admit(
        &self,
        parts: &Parts,
        transport: Transport,
        headers: Option<&HeaderMap>,
        client: &Client,
    ) -> Result<Admitted, Refusal> {
        if self.services.is_shutting_down() {
            return Err(Refusal::ShuttingDown);
        }
        if let Some(reason) = self
            .config
            .origins
            .refusal(&parts.headers, client.host.as_deref())
        {
            return Err(Refusal::Origin(reason));
        }
        let address = client.addr.map(|addr| addr.ip());
        if let (Some(rate), Some(address)) = (&self.services.rate, address) {
            if !rate.take(address) {
                return Err(Refusal::RateLimited);
            }
        }
        // The bounds before the hook: they cost nothing, and a full layer
        // does not run the app's hook for nothing.
        let slot = self
            .services
            .registry
            .reserve(address)
            .map_err(|crowded| match crowded {
                Crowded::Full => Refusal::Full,
                Crowded::Address => Refusal::AddressFull,
            })?;
        let admit = match &self.config.authorizer {
            Some(authorize) => {
                let mut request = SessionRequest::new(parts.clone(), transport);
                if let Some(addr) = client.addr {
                    request = request.with_remote_addr(addr);
                }
                authorize(request).await.map_err(Refusal::Rejected)?
            }
            None => Admit::new(),
        };
        let mut info = SessionInfo::new(
            transport,
            client.addr,
            &parts.uri,
            headers.unwrap_or(&parts.headers),
        );
        info.extensions = admit.extensions;
        if let Some(user) = &admit.user_id {
            info.span.record("user", user.as_str());
        }
        Ok(Admitted { info, slot })
    }

    /// Logs and counts a refusal, once.
    pub(crate) fn refused(
        &self,
        transport: Transport,
        refusal: &Refusal,
        remote: Option<SocketAddr>,
    ) {
        tracing::info!(
            %transport,
            reason = refusal.label(),
            remote = ?remote,
            reply = %refusal.response().status(),
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

/// The connection's peer, when the server was started with connect info.
fn connect_info(extensions: &Extensions) -> Option<SocketAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
}
