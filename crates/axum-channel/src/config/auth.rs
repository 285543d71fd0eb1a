//! The authorisation hook: who may open a session, and what it carries.

use futures::future::BoxFuture;
use http::{Extensions, HeaderMap, Uri};
use std::net::SocketAddr;
use std::sync::Arc;

/// Decides whether a request may open a session: `Some` holds what the
/// session carries.
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
