//! The authorisation hook: who may open a session, what it carries, and
//! what a refused client is told.

use crate::base::transport::Transport;
use futures::future::BoxFuture;
use http::request::Parts;
use http::{Extensions, HeaderMap, Method, Request, StatusCode, Uri};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// Decides whether a request may open a session.
pub(crate) type Authorizer =
    Arc<dyn Fn(SessionRequest) -> BoxFuture<'static, Result<Admit, Rejection>> + Send + Sync>;

/// The request that asks to open a session, as the authorisation hook sees
/// it: its method, URI, headers (cookies included) and **extensions**, so
/// whatever a middleware in front of the layer put there (an authenticated
/// user, say) is at hand; the client's address; the transport.
///
/// Build one in your own tests with [`SessionRequest::new`].
///
/// ```
/// use axum_channel::{SessionRequest, Transport};
///
/// let (parts, ()) = http::Request::get("/ws?token=t").body(()).unwrap().into_parts();
/// let request = SessionRequest::new(parts, Transport::WebSocket);
/// assert_eq!(request.uri().query(), Some("token=t"));
/// assert_eq!(request.remote_addr(), None);
/// ```
#[derive(Debug)]
pub struct SessionRequest {
    parts: Parts,
    remote_addr: Option<SocketAddr>,
    transport: Transport,
}

impl SessionRequest {
    /// A request with these parts, for `transport`, from an unknown address.
    pub fn new(parts: Parts, transport: Transport) -> Self {
        Self {
            parts,
            remote_addr: None,
            transport,
        }
    }

    /// The same request, from `addr` (the client's address, behind trusted
    /// proxies the one they forwarded).
    pub fn with_remote_addr(mut self, addr: SocketAddr) -> Self {
        self.remote_addr = Some(addr);
        self
    }

    /// The request's method.
    pub fn method(&self) -> &Method {
        &self.parts.method
    }

    /// The request's URI.
    pub fn uri(&self) -> &Uri {
        &self.parts.uri
    }

    /// The request's headers, `Cookie` included.
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// The request's extensions: what middleware in front of the layer
    /// (a tower-http or axum auth layer) attached to it.
    pub fn extensions(&self) -> &Extensions {
        &self.parts.extensions
    }

    /// The client's address: the connection's peer, or behind trusted
    /// proxies the address they forwarded (port 0 when they gave none).
    /// `None` when the server was started without connect info.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The transport the session would use.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The request's parts, taken out.
    pub fn into_parts(self) -> Parts {
        self.parts
    }
}

impl From<Request<()>> for SessionRequest {
    /// A WebSocket session request with these parts (handy in tests).
    fn from(request: Request<()>) -> Self {
        Self::new(request.into_parts().0, Transport::WebSocket)
    }
}

/// What the authorisation hook grants a session: typed data the session
/// carries (read it with
/// [`SessionSender::extensions`](crate::SessionSender::extensions)) and the
/// user id recorded in the session's tracing span.
///
/// ```
/// use axum_channel::Admit;
///
/// #[derive(Clone)]
/// struct User { id: u64, name: String }
///
/// let user = User { id: 7, name: "ada".into() };
/// let admit = Admit::new().user_id(user.id.to_string()).with(user);
/// # let _ = admit;
/// ```
#[derive(Debug, Default, Clone)]
pub struct Admit {
    pub(crate) extensions: Extensions,
    pub(crate) user_id: Option<String>,
}

impl Admit {
    /// A session that carries nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The session carries `value`, found by its type in the session's
    /// extensions.
    pub fn with<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// Records `id` as the `user` field of the session's span, so every log
    /// line of the session names its user.
    pub fn user_id(mut self, id: impl Into<String>) -> Self {
        self.user_id = Some(id.into());
        self
    }

    /// The session carries all of `extensions`.
    pub fn extensions(mut self, extensions: Extensions) -> Self {
        self.extensions.extend(extensions);
        self
    }
}

/// Why the authorisation hook refuses a session: a status and a short reason
/// the client sees as the reply's body (`text/plain`).
///
/// ```
/// use axum_channel::Rejection;
/// use http::StatusCode;
///
/// let rejection = Rejection::unauthorized("log in first");
/// assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(rejection.reason(), "log in first");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    status: StatusCode,
    reason: String,
}

impl Rejection {
    /// A rejection with this status (a 4xx or 5xx) and reason.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }

    /// 401: the client must authenticate.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, reason)
    }

    /// 403: the client may not open a session.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, reason)
    }

    /// 429: the client asks too often.
    pub fn too_many_requests(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, reason)
    }

    /// The reply's status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The reply's body.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.reason)
    }
}

impl std::error::Error for Rejection {}
