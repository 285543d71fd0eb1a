//! The Tower layer and service that route requests under the prefix to the
//! channel transports and everything else to the inner service.

mod future;

pub use future::ResponseFuture;

use crate::browserchannel::BrowserChannelServer;
use crate::config::ChannelConfig;
use crate::session::CloseReason;
use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
struct Shared {
    prefix: String,
    browserchannel: Arc<BrowserChannelServer>,
}

impl Shared {
    /// The part of `path` after `{prefix}/`, slash included, when it is ours.
    /// `/channelx` is not under `/channel`, and neither is `/channel` itself.
    fn sub_path<'a>(&self, path: &'a str) -> Option<&'a str> {
        let rest = path.strip_prefix(self.prefix.as_str())?;
        rest.starts_with('/').then_some(rest)
    }
}

/// A Tower layer that serves browser channels under a path prefix.
///
/// Apply it with `Router::layer` (after adding routes and any fallback) or
/// inside a router given to `Router::nest`. Clones share their sessions.
#[derive(Debug, Clone)]
pub struct ChannelLayer {
    shared: Arc<Shared>,
}

impl ChannelLayer {
    /// A layer serving the given configuration.
    pub fn new(config: ChannelConfig) -> Self {
        let prefix = config.prefix.clone();
        let browserchannel = Arc::new(BrowserChannelServer::new(config));
        Self {
            shared: Arc::new(Shared {
                prefix,
                browserchannel,
            }),
        }
    }

    /// A handle on this layer's sessions, for counting them or closing them
    /// all at shutdown.
    pub fn handle(&self) -> ChannelHandle {
        ChannelHandle {
            shared: self.shared.clone(),
        }
    }
}

impl<S> Layer<S> for ChannelLayer {
    type Service = ChannelService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ChannelService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// A handle on the sessions of a [`ChannelLayer`].
#[derive(Debug, Clone)]
pub struct ChannelHandle {
    shared: Arc<Shared>,
}

impl ChannelHandle {
    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.shared.browserchannel.session_count()
    }

    /// Closes every open session, ending their back channels, so a graceful
    /// shutdown does not wait on hanging requests.
    pub fn close_all(&self) {
        self.shared.browserchannel.close_all(CloseReason::Shutdown);
    }
}

/// The service made by [`ChannelLayer`].
#[derive(Debug, Clone)]
pub struct ChannelService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ChannelService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: http_body::Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self.shared.sub_path(request.uri().path()) {
            Some(sub_path) => {
                let sub_path = sub_path.to_owned();
                let server = self.shared.browserchannel.clone();
                let request = request.map(Body::new);
                ResponseFuture::channel(Box::pin(
                    async move { server.handle(request, &sub_path).await },
                ))
            }
            None => ResponseFuture::inner(self.inner.call(request)),
        }
    }
}
