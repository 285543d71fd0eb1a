//! What a [`ChannelLayer`](crate::ChannelLayer) serves and how: the
//! layer's settings here, each transport's own in its submodule. Each
//! transport's config holds its protocol engine's settings
//! (`channel_protocol`'s `SessionConfig`s) as they are, defaults included.

mod auth;
mod browserchannel;
mod event_source;
mod sockjs;
mod websocket;

pub(crate) use auth::Authorizer;
pub use auth::SessionRequest;
pub use browserchannel::BrowserChannelConfig;
pub use event_source::EventSourceConfig;
pub(crate) use sockjs::JSessionId;
pub use sockjs::{JSessionIdFn, SockJsConfig};
pub use websocket::WebSocketConfig;

use crate::services::fanout::Overflow;
use crate::services::Settings;
use crate::session::Session;
use channel_cluster::Adapter;
use futures::future::BoxFuture;
use futures::FutureExt;
use http::Extensions;
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
    pub(crate) max_sessions: usize,
    pub(crate) delivery_timeout: Option<Duration>,
    pub(crate) overflow: Overflow,
    pub(crate) cluster: Option<Arc<dyn Adapter>>,
    pub(crate) cluster_timeout: Duration,
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
            max_sessions: 10_000,
            delivery_timeout: Some(Duration::from_secs(30)),
            overflow: Overflow::Drop,
            cluster: None,
            cluster_timeout: Duration::from_millis(500),
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

    /// A hook that decides whether a request may open a session; `false`
    /// answers 403 and no session is created.
    pub fn authorize<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(SessionRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.authorizer = Some(Arc::new(move |request| {
            hook(request)
                .map(|allowed| allowed.then(Extensions::new))
                .boxed()
        }));
        self
    }

    /// A hook that decides whether a request may open a session and what
    /// the session carries: `None` answers 403; `Some(extensions)` opens
    /// the session with them, for the app to read with
    /// [`SessionSender::extensions`](crate::SessionSender::extensions).
    ///
    /// ```
    /// use axum_channel::{ChannelConfig, SessionRequest};
    /// use http::Extensions;
    ///
    /// #[derive(Clone)]
    /// struct User(String);
    ///
    /// let config = ChannelConfig::new().authorize_with(|request: SessionRequest| async move {
    ///     let cookie = request.headers.get("cookie")?.to_str().ok()?;
    ///     let name = cookie.strip_prefix("user=")?.to_owned();
    ///     let mut extensions = Extensions::new();
    ///     extensions.insert(User(name));
    ///     Some(extensions)
    /// });
    /// # let _ = config;
    /// ```
    pub fn authorize_with<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(SessionRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<Extensions>> + Send + 'static,
    {
        self.authorizer = Some(Arc::new(move |request| hook(request).boxed()));
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

    /// What a broadcast does with a member whose queue is full: drop the
    /// message for it (the default), or close it with
    /// [`CloseReason::Lagging`](crate::CloseReason::Lagging).
    pub fn broadcast_overflow(mut self, overflow: Overflow) -> Self {
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
            max_incoming: self.max_incoming_messages,
            delivery_timeout: self.delivery_timeout,
            overflow: self.overflow,
            cluster: self.cluster.clone(),
            cluster_timeout: self.cluster_timeout,
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
