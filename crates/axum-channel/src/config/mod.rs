//! What a [`ChannelLayer`](crate::ChannelLayer) serves and how: the
//! layer's settings here, each transport's own in its submodule. Each
//! transport's config holds its protocol engine's settings
//! (`axum_channel_protocol`'s `SessionConfig`s) as they are, defaults included.

mod auth;
mod browserchannel;
mod event_source;
mod history;
pub(crate) mod origin;
pub(crate) mod proxies;
mod sockjs;
mod websocket;

pub(crate) use auth::Authorizer;
pub use auth::{Admit, Rejection, SessionRequest};
pub use browserchannel::BrowserChannelConfig;
pub use event_source::EventSourceConfig;
pub use history::HistoryConfig;
pub(crate) use sockjs::JSessionId;
pub use sockjs::{JSessionIdFn, SockJsConfig};
pub use websocket::WebSocketConfig;

use crate::services::fanout::Overflow;
use crate::services::Settings;
use crate::session::Session;
use axum_channel_cluster::Adapter;
use futures::future::BoxFuture;
use futures::FutureExt;
use ipnet::IpNet;
use origin::{Allowed, OriginPolicy};
use proxies::TrustedProxies;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

pub(crate) type SessionHandler = Arc<dyn Fn(Session) -> BoxFuture<'static, ()> + Send + Sync>;

/// Settings of a [`ChannelLayer`](crate::ChannelLayer), built with chained calls.
///
/// Every default follows node-browserchannel where it has one.
#[derive(Clone)]
pub struct ChannelConfig {
    pub(crate) browserchannel: Option<(String, BrowserChannelConfig)>,
    pub(crate) websocket: Option<(String, WebSocketConfig)>,
    pub(crate) event_source: Option<(String, EventSourceConfig)>,
    pub(crate) sockjs: Option<(String, SockJsConfig)>,
    pub(crate) max_request_body: usize,
    pub(crate) max_incoming_messages: usize,
    pub(crate) max_incoming_bytes: usize,
    pub(crate) max_sessions: usize,
    pub(crate) max_sessions_per_address: Option<usize>,
    pub(crate) session_rate: Option<(f64, u32)>,
    pub(crate) origins: OriginPolicy,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) delivery_timeout: Option<Duration>,
    pub(crate) overflow: Overflow,
    pub(crate) cluster: Option<Arc<dyn Adapter>>,
    pub(crate) cluster_timeout: Duration,
    pub(crate) history: Option<HistoryConfig>,
    pub(crate) handler: Option<SessionHandler>,
    pub(crate) authorizer: Option<Authorizer>,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            browserchannel: Some(("/channel".into(), BrowserChannelConfig::default())),
            websocket: None,
            event_source: None,
            sockjs: None,
            max_request_body: 1024 * 1024,
            max_incoming_messages: 1024,
            max_incoming_bytes: 1 << 20,
            max_sessions: 10_000,
            max_sessions_per_address: None,
            session_rate: None,
            origins: OriginPolicy::default(),
            trusted_proxies: TrustedProxies::default(),
            delivery_timeout: Some(Duration::from_secs(30)),
            overflow: Overflow::Drop,
            cluster: None,
            cluster_timeout: Duration::from_millis(500),
            history: None,
            handler: None,
            authorizer: None,
        }
    }
}

impl fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("browserchannel", &self.browserchannel)
            .field("websocket", &self.websocket)
            .field("event_source", &self.event_source)
            .field("sockjs", &self.sockjs)
            .field("max_sessions", &self.max_sessions)
            .field("has_handler", &self.handler.is_some())
            .field(
                "cluster",
                &self.cluster.as_ref().map(|a| a.node_id().to_owned()),
            )
            .finish_non_exhaustive()
    }
}

/// Strips a trailing slash and adds a leading one: `channel/` becomes `/channel`.
fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.starts_with('/') || trimmed.is_empty() {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

impl ChannelConfig {
    /// The defaults: BrowserChannel under `/channel`, no other transport,
    /// no session callback.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves BrowserChannel under this path (by default it is served
    /// under `/channel` with [`BrowserChannelConfig`]'s defaults).
    pub fn browserchannel(mut self, path: &str, config: BrowserChannelConfig) -> Self {
        self.browserchannel = Some((normalize_prefix(path), config));
        self
    }

    /// Serves no BrowserChannel endpoint.
    pub fn without_browserchannel(mut self) -> Self {
        self.browserchannel = None;
        self
    }

    /// Serves native WebSocket sessions at exactly this path (for example `/ws`).
    pub fn websocket(mut self, path: &str, config: WebSocketConfig) -> Self {
        self.websocket = Some((normalize_prefix(path), config));
        self
    }

    /// Serves EventSource (server-sent events) sessions at exactly this path.
    pub fn event_source(mut self, path: &str, config: EventSourceConfig) -> Self {
        self.event_source = Some((normalize_prefix(path), config));
        self
    }

    /// Serves SockJS under this prefix (sockjs-node's `prefix`, for example `/sockjs`).
    pub fn sockjs(mut self, prefix: &str, config: SockJsConfig) -> Self {
        self.sockjs = Some((normalize_prefix(prefix), config));
        self
    }

    /// Keeps a history of the broadcasts to rooms (off by default), so
    /// sessions can recover what they missed with
    /// [`SessionSender::join_since`](crate::SessionSender::join_since).
    /// Positions are this node's: in a cluster, a session recovers on the
    /// node that gave its position.
    pub fn history(mut self, history: HistoryConfig) -> Self {
        self.history = Some(history);
        self
    }

    /// The callback each new session is handed to. Where it runs, and what
    /// closing the session before the callback's first `.await` does,
    /// depends on the transport:
    ///
    /// - **BrowserChannel**: the first step runs while the opening request
    ///   is answered, the rest as a task of its own. A session closed in
    ///   that first step refuses the client with 403.
    /// - **SockJS over HTTP** and **EventSource**: the same, but the
    ///   response goes out anyway: a SockJS client gets `o`, then the close
    ///   frame (with its next request, when polling); an EventSource stream
    ///   carries what was sent, then ends.
    /// - **WebSocket** (native, and SockJS's `websocket` and raw
    ///   `/websocket`): the session opens after the `101` answer, and the
    ///   callback is polled on the connection's task, next to the
    ///   connection itself; closing at once sends the close frame.
    pub fn on_session<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(Session) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // The callback runs in the session's span.
        self.handler = Some(Arc::new(move |session: Session| {
            let span = session.span().clone();
            handler(session).instrument(span).boxed()
        }));
        self
    }

    /// The callback each new session is handed to, with a clone of `state`
    /// (as axum's `State` does for handlers).
    ///
    /// ```
    /// use axum_channel::ChannelConfig;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// #[derive(Clone, Default)]
    /// struct AppState { opened: Arc<AtomicUsize> }
    ///
    /// let config = ChannelConfig::new().on_session_with_state(
    ///     AppState::default(),
    ///     |session, state: AppState| async move {
    ///         state.opened.fetch_add(1, Ordering::Relaxed);
    ///         let _ = session.send("welcome");
    ///     },
    /// );
    /// # let _ = config;
    /// ```
    pub fn on_session_with_state<S, F, Fut>(self, state: S, handler: F) -> Self
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(Session, S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.on_session(move |session| handler(session, state.clone()))
    }

    /// The authorisation hook: it sees every request that would open a
    /// session (after the origin policy and the session bounds let it
    /// through), with its headers, cookies and **extensions** (what a
    /// middleware in front of the layer established), and grants the session
    /// ([`Admit`]: typed data it carries, the user id its span records) or
    /// refuses it ([`Rejection`]: a status such as 401, 403 or 429 and a
    /// reason the client sees).
    ///
    /// ```
    /// use axum_channel::{Admit, ChannelConfig, Rejection, SessionRequest};
    ///
    /// /// What an auth middleware in front of the layer put in the request.
    /// #[derive(Clone)]
    /// struct CurrentUser { id: u64, name: String }
    ///
    /// let config = ChannelConfig::new().authorize(|request: SessionRequest| async move {
    ///     let user = request
    ///         .extensions()
    ///         .get::<CurrentUser>()
    ///         .cloned()
    ///         .ok_or_else(|| Rejection::unauthorized("log in first"))?;
    ///     Ok(Admit::new().user_id(user.id.to_string()).with(user))
    /// });
    /// # let _ = config;
    /// ```
    pub fn authorize<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(SessionRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Admit, Rejection>> + Send + 'static,
    {
        self.authorizer = Some(Arc::new(move |request| hook(request).boxed()));
        self
    }

    /// Lets web pages of these origins (`https://app.example`, exactly:
    /// scheme, host and port) open sessions, besides the server's own.
    ///
    /// By default only the server's own origin may: a request whose
    /// `Origin` names another (or a script or frame load a browser marks
    /// `Sec-Fetch-Site: cross-site`) is refused with 403 on every
    /// transport, so a page elsewhere cannot open a session with the
    /// visitor's cookies. Clients that send no `Origin` (non-browser
    /// clients) may, unless [`require_origin`](Self::require_origin).
    pub fn allowed_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let origins = origins
            .into_iter()
            .map(|origin| origin.into().trim_end_matches('/').to_owned())
            .collect();
        self.origins.allowed = Allowed::List(origins);
        self
    }

    /// Lets a page of any origin open sessions. Only for public APIs that
    /// authenticate without cookies (a token in the URL or first message):
    /// with cookies, any web page could act as its visitor.
    pub fn any_origin(mut self) -> Self {
        self.origins.allowed = Allowed::Any;
        self
    }

    /// Refuses requests that name no origin (default: allowed, as
    /// non-browser clients send none).
    pub fn require_origin(mut self, required: bool) -> Self {
        self.origins.allow_missing = !required;
        self
    }

    /// Believes `Forwarded` / `X-Forwarded-For` / `X-Forwarded-Host` only
    /// on connections from these proxies (addresses or networks), so
    /// sessions, spans and logs show the client's address and the origin
    /// policy compares with the host the client asked for. Without it the
    /// headers are ignored (anyone can send them).
    ///
    /// ```
    /// use axum_channel::ChannelConfig;
    /// use std::net::{IpAddr, Ipv4Addr};
    ///
    /// let config = ChannelConfig::new()
    ///     .trusted_proxies([IpAddr::V4(Ipv4Addr::LOCALHOST).into(), "10.0.0.0/8".parse().unwrap()]);
    /// # let _ = config;
    /// ```
    pub fn trusted_proxies<I>(mut self, proxies: I) -> Self
    where
        I: IntoIterator<Item = IpNet>,
    {
        self.trusted_proxies.networks = proxies.into_iter().collect();
        self
    }

    /// Most sessions open at once from one client address (default: no
    /// bound of its own; `max_sessions` still holds); past it, 429. Behind
    /// a proxy, set [`trusted_proxies`](Self::trusted_proxies) first, or
    /// every client shares the proxy's address.
    pub fn max_sessions_per_address(mut self, sessions: usize) -> Self {
        self.max_sessions_per_address = Some(sessions.max(1));
        self
    }

    /// How fast one client address may open sessions: `per_second` on
    /// average, `burst` at once (default: unlimited); past it, 429.
    pub fn session_rate_per_address(mut self, per_second: f64, burst: u32) -> Self {
        self.session_rate = Some((per_second, burst));
        self
    }

    /// Largest request body any transport reads: BrowserChannel forward
    /// channel POSTs and SockJS `xhr_send`/`jsonp_send` bodies; larger ones
    /// get 413 (default 1 MiB).
    pub fn max_request_body(mut self, bytes: usize) -> Self {
        self.max_request_body = bytes;
        self
    }

    /// Most received messages waiting for the app to read them; past it the
    /// client's POST waits, which slows the client down (default 1,024).
    pub fn max_incoming_messages(mut self, messages: usize) -> Self {
        self.max_incoming_messages = messages.max(1);
        self
    }

    /// Most bytes of received messages waiting for the app (as
    /// `Message::size` counts them); past it, as past
    /// [`max_incoming_messages`](Self::max_incoming_messages), the layer
    /// stops reading from the client until the app catches up (default 1 MiB).
    pub fn max_incoming_bytes(mut self, bytes: usize) -> Self {
        self.max_incoming_bytes = bytes.max(1);
        self
    }

    /// Most sessions open at once, every transport together; past it new
    /// sessions get 503 (default 10,000).
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = sessions;
        self
    }

    /// How long a [`Delivery`](crate::Delivery) waits for its confirmation
    /// before it fails with [`SendError::TimedOut`](crate::SendError::TimedOut)
    /// (default 30 s; `None` waits until the session ends).
    pub fn delivery_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.delivery_timeout = timeout;
        self
    }

    /// What happens to a message for a session whose queue to its client
    /// is full (in messages or bytes), on every transport, for the app's
    /// sends and broadcasts alike: refuse it (the default), or also close
    /// the session with [`CloseReason::Lagging`](crate::CloseReason::Lagging).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// Joins a cluster through `adapter`: rooms, broadcasts, counts and
    /// session lookups then span every node that uses the same bus (see
    /// [`cluster`](crate::cluster)). Without it the layer is a single node.
    ///
    /// ```no_run
    /// # async fn run(adapter: impl axum_channel::cluster::Adapter) {
    /// use axum_channel::{ChannelConfig, ChannelLayer};
    /// let layer = ChannelLayer::new(ChannelConfig::new().cluster(adapter));
    /// # }
    /// ```
    pub fn cluster(mut self, adapter: impl Adapter) -> Self {
        self.cluster = Some(Arc::new(adapter));
        self
    }

    /// How long a cluster-wide count or lookup waits for the other nodes
    /// (default 500 ms); past it, the answer says it is partial.
    pub fn cluster_timeout(mut self, timeout: Duration) -> Self {
        self.cluster_timeout = timeout;
        self
    }
}

impl ChannelConfig {
    /// What the layer's shared services run with.
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            max_sessions: self.max_sessions,
            max_sessions_per_address: self.max_sessions_per_address,
            session_rate: self.session_rate,
            max_incoming: self.max_incoming_messages,
            max_incoming_bytes: self.max_incoming_bytes,
            delivery_timeout: self.delivery_timeout,
            overflow: self.overflow,
            cluster: self.cluster.clone(),
            cluster_timeout: self.cluster_timeout,
            history: self.history.as_ref().map(|h| h.settings.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalized() {
        assert_eq!(normalize_prefix("channel/"), "/channel");
        assert_eq!(normalize_prefix("/a/b"), "/a/b");
        assert_eq!(normalize_prefix("/"), "");
    }
}
