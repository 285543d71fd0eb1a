//! What a [`ChannelLayer`](crate::ChannelLayer) serves and how: the
//! layer's settings here, each transport's own in its submodule.

mod event_source;
mod sockjs;
mod websocket;

pub use event_source::EventSourceConfig;
pub(crate) use sockjs::JSessionId;
pub use sockjs::{JSessionIdFn, SockJsConfig};
pub use websocket::WebSocketConfig;

use crate::rooms::broadcast::Overflow;
use crate::session::Session;
use futures::future::BoxFuture;
use futures::FutureExt;
use http::{Extensions, HeaderMap, Uri};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

pub(crate) type SessionHandler = Arc<dyn Fn(Session) -> BoxFuture<'static, ()> + Send + Sync>;
pub(crate) type Authorizer =
    Arc<dyn Fn(SessionRequest) -> BoxFuture<'static, Option<Extensions>> + Send + Sync>;

/// The request that asks to open a session, as the authorisation hook sees
/// it: the whole request, cookies included.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionRequest {
    /// The request's method.
    pub method: http::Method,
    /// The request's headers, `Cookie` included (the hook may need it).
    pub headers: HeaderMap,
    /// The request's URI.
    pub uri: Uri,
    /// The peer's address, when the server was started with connect info.
    pub remote_addr: Option<SocketAddr>,
}

/// Settings of a [`ChannelLayer`](crate::ChannelLayer), built with chained calls.
///
/// Every default follows node-browserchannel where it has one.
#[derive(Clone)]
pub struct ChannelConfig {
    pub(crate) prefix: String,
    pub(crate) host_prefixes: Vec<String>,
    pub(crate) keep_alive_interval: Duration,
    pub(crate) session_timeout: Duration,
    pub(crate) test_phase_delay: Duration,
    pub(crate) back_channel_chunk_limit: usize,
    pub(crate) max_post_body: usize,
    pub(crate) max_maps_per_request: usize,
    pub(crate) max_held_maps: usize,
    pub(crate) max_outgoing_arrays: usize,
    pub(crate) max_incoming_messages: usize,
    pub(crate) max_sessions: usize,
    pub(crate) delivery_timeout: Option<Duration>,
    pub(crate) acknowledgement_timeout: Duration,
    pub(crate) overflow: Overflow,
    pub(crate) cluster: Option<Arc<dyn crate::cluster::Adapter>>,
    pub(crate) cluster_timeout: Duration,
    pub(crate) cors_origin: Option<String>,
    pub(crate) cors_allow_credentials: bool,
    pub(crate) client_library: Option<PathBuf>,
    pub(crate) handler: Option<SessionHandler>,
    pub(crate) authorizer: Option<Authorizer>,
    pub(crate) browserchannel: bool,
    pub(crate) websocket: Option<(String, WebSocketConfig)>,
    pub(crate) event_source: Option<(String, EventSourceConfig)>,
    pub(crate) sockjs: Option<(String, SockJsConfig)>,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            prefix: "/channel".into(),
            host_prefixes: Vec::new(),
            keep_alive_interval: Duration::from_secs(20),
            session_timeout: Duration::from_secs(30),
            test_phase_delay: Duration::from_secs(2),
            back_channel_chunk_limit: 10 * 1024,
            max_post_body: 1024 * 1024,
            max_maps_per_request: 10_000,
            max_held_maps: 1024,
            max_outgoing_arrays: 4096,
            max_incoming_messages: 1024,
            max_sessions: 10_000,
            delivery_timeout: Some(Duration::from_secs(30)),
            acknowledgement_timeout: Duration::from_secs(1),
            overflow: Overflow::Drop,
            cluster: None,
            cluster_timeout: Duration::from_millis(500),
            cors_origin: None,
            cors_allow_credentials: false,
            client_library: None,
            handler: None,
            authorizer: None,
            browserchannel: true,
            websocket: None,
            event_source: None,
            sockjs: None,
        }
    }
}

impl fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("prefix", &self.prefix)
            .field("host_prefixes", &self.host_prefixes)
            .field("keep_alive_interval", &self.keep_alive_interval)
            .field("session_timeout", &self.session_timeout)
            .field("max_sessions", &self.max_sessions)
            .field("has_handler", &self.handler.is_some())
            .field("browserchannel", &self.browserchannel)
            .field("websocket", &self.websocket)
            .field("event_source", &self.event_source)
            .field("sockjs", &self.sockjs)
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
    /// The defaults: prefix `/channel`, no session callback.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves BrowserChannel under the prefix (default on).
    pub fn browserchannel(mut self, enabled: bool) -> Self {
        self.browserchannel = enabled;
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

    /// The path under which BrowserChannel answers (default `/channel`).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = normalize_prefix(prefix);
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

    /// Host prefixes handed to clients; each client picks one at random to
    /// get around per-host connection limits of old browsers.
    pub fn host_prefixes<I, S>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.host_prefixes = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// How often a `["noop"]` heartbeat goes down an open back channel (default 20 s).
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive_interval = interval;
        self
    }

    /// How long a session lives without a back channel (default 30 s).
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// The pause between `11111` and `2` in the buffering proxy test (default 2 s).
    pub fn test_phase_delay(mut self, delay: Duration) -> Self {
        self.test_phase_delay = delay;
        self
    }

    /// Bytes after which a streaming back channel is closed so the client
    /// opens a fresh one (default 10 KiB).
    pub fn back_channel_chunk_limit(mut self, bytes: usize) -> Self {
        self.back_channel_chunk_limit = bytes;
        self
    }

    /// Largest forward channel POST body; larger ones get 413 (default 1 MiB).
    pub fn max_post_body(mut self, bytes: usize) -> Self {
        self.max_post_body = bytes;
        self
    }

    /// Most maps in one forward channel POST (default 10,000).
    pub fn max_maps_per_request(mut self, maps: usize) -> Self {
        self.max_maps_per_request = maps;
        self
    }

    /// Most out-of-order maps held per session while a gap fills (default 1,024).
    pub fn max_held_maps(mut self, maps: usize) -> Self {
        self.max_held_maps = maps;
        self
    }

    /// Most arrays queued per session and not yet acknowledged; past it,
    /// `send` fails with [`SendError::QueueFull`](crate::SendError::QueueFull)
    /// (default 4,096).
    pub fn max_outgoing_arrays(mut self, arrays: usize) -> Self {
        self.max_outgoing_arrays = arrays;
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
    pub fn cluster(mut self, adapter: impl crate::cluster::Adapter) -> Self {
        self.cluster = Some(Arc::new(adapter));
        self
    }

    /// How long a cluster-wide count or lookup waits for the other nodes
    /// (default 500 ms); past it, the answer says it is partial.
    pub fn cluster_timeout(mut self, timeout: Duration) -> Self {
        self.cluster_timeout = timeout;
        self
    }

    /// How long BrowserChannel arrays wait for the client's acknowledgement
    /// before the back channel ends so the client's next request carries it
    /// (default 1 s). A client with nothing to send acknowledges only then.
    pub fn acknowledgement_timeout(mut self, timeout: Duration) -> Self {
        self.acknowledgement_timeout = timeout;
        self
    }

    /// Sets `Access-Control-Allow-Origin` on every reply.
    pub fn cors(mut self, origin: impl Into<String>) -> Self {
        self.cors_origin = Some(origin.into());
        self
    }

    /// Adds `Access-Control-Allow-Credentials: true` to every reply.
    pub fn cors_allow_credentials(mut self, allow: bool) -> Self {
        self.cors_allow_credentials = allow;
        self
    }

    /// Serves this file (the `bcsocket.js` client of the npm package
    /// `browserchannel`) at `{prefix}/bcsocket.js`.
    pub fn client_library(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_library = Some(path.into());
        self
    }
}

impl ChannelConfig {
    /// The BrowserChannel engine's settings.
    pub(crate) fn browserchannel_session(&self) -> channel_protocol::browserchannel::SessionConfig {
        channel_protocol::browserchannel::SessionConfig {
            max_outgoing_arrays: self.max_outgoing_arrays,
            max_held_maps: self.max_held_maps,
            keep_alive_interval: self.keep_alive_interval,
            session_timeout: self.session_timeout,
            back_channel_chunk_limit: self.back_channel_chunk_limit,
            acknowledgement_timeout: self.acknowledgement_timeout,
        }
    }

    /// The app's callback for a new session, not started yet.
    pub(crate) fn handler_for(&self, session: Session) -> Option<BoxFuture<'static, ()>> {
        match &self.handler {
            Some(handler) => Some(handler(session)),
            None => {
                tracing::warn!("no on_session callback configured; the session is never read");
                None
            }
        }
    }

    /// Starts the app's callback for a new session as its own task. Its
    /// first step runs here, before the client gets an answer, so a callback
    /// that closes the session at once refuses the client.
    pub(crate) fn start_handler(&self, session: Session) {
        if let Some(mut task) = self.handler_for(session) {
            if (&mut task).now_or_never().is_none() {
                tokio::spawn(task);
            }
        }
    }

    /// Asks the authorisation hook, if any, whether this request may open a
    /// session; `Some` holds what the session carries.
    pub(crate) async fn authorized(&self, parts: &http::request::Parts) -> Option<Extensions> {
        let Some(authorize) = &self.authorizer else {
            return Some(Extensions::new());
        };
        let request = SessionRequest {
            method: parts.method.clone(),
            headers: parts.headers.clone(),
            uri: parts.uri.clone(),
            remote_addr: remote_addr(parts),
        };
        authorize(request).await
    }
}

/// The peer's address, when the server was started with connect info.
pub(crate) fn remote_addr(parts: &http::request::Parts) -> Option<SocketAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalized() {
        assert_eq!(ChannelConfig::new().prefix("channel/").prefix, "/channel");
        assert_eq!(ChannelConfig::new().prefix("/a/b").prefix, "/a/b");
        assert_eq!(ChannelConfig::new().prefix("/").prefix, "");
    }
}
