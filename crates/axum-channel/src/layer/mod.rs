//! The Tower layer and service that route requests under the prefix to the
//! channel transports and everything else to the inner service.

mod future;

pub use future::ResponseFuture;

use crate::admission::{Admission, Refusal};
use crate::browserchannel::BrowserChannelServer;
use crate::config::ChannelConfig;
use crate::event_source::EventSourceServer;
use crate::handle::ChannelHandle;
use crate::services::Services;
use crate::sockjs::SockJsServer;
use crate::websocket::WebSocketServer;
use axum::body::Body;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which endpoint a request is for.
enum Route {
    BrowserChannel(String),
    SockJs(String),
    WebSocket,
    EventSource,
}

#[derive(Debug)]
struct Shared {
    browserchannel: Option<(String, Arc<BrowserChannelServer>)>,
    websocket: Option<(String, Arc<WebSocketServer>)>,
    event_source: Option<(String, Arc<EventSourceServer>)>,
    sockjs: Option<(String, Arc<SockJsServer>)>,
    /// Every open session, the rooms, the timer task, the limits.
    services: Arc<Services>,
}

impl Shared {
    fn route(&self, path: &str) -> Option<Route> {
        if self.websocket.as_ref().is_some_and(|(p, _)| p == path) {
            return Some(Route::WebSocket);
        }
        if self.event_source.as_ref().is_some_and(|(p, _)| p == path) {
            return Some(Route::EventSource);
        }
        if let Some((prefix, _)) = &self.sockjs {
            // SockJS answers its prefix itself too (the greeting).
            if let Some(rest) = path.strip_prefix(prefix.as_str()) {
                if rest.is_empty() || rest.starts_with('/') {
                    return Some(Route::SockJs(rest.to_owned()));
                }
            }
        }
        let (prefix, _) = self.browserchannel.as_ref()?;
        // `/channelx` is not under `/channel`, and neither is `/channel` itself.
        let rest = path.strip_prefix(prefix.as_str())?;
        rest.starts_with('/')
            .then(|| Route::BrowserChannel(rest.to_owned()))
    }

    fn handle(
        self: Arc<Self>,
        route: Route,
        request: Request<Body>,
    ) -> BoxFuture<'static, Response<Body>> {
        Box::pin(async move {
            if self.services.is_shutting_down() {
                // Clients that reconnect while the server drains must not
                // open streams that would hold the shutdown up.
                return Refusal::ShuttingDown.response();
            }
            match route {
                Route::BrowserChannel(sub_path) => {
                    let (_, server) = self
                        .browserchannel
                        .as_ref()
                        .expect("routed only when enabled");
                    server.handle(request, &sub_path).await
                }
                Route::SockJs(sub_path) => {
                    let (_, server) = self.sockjs.as_ref().expect("routed only when enabled");
                    server.handle(request, &sub_path).await
                }
                Route::WebSocket => {
                    let (_, server) = self.websocket.as_ref().expect("routed only when enabled");
                    server.handle(request).await
                }
                Route::EventSource => {
                    let (_, server) = self
                        .event_source
                        .as_ref()
                        .expect("routed only when enabled");
                    server.handle(request).await
                }
            }
        })
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
        let services = Services::start(config.settings());
        let config = Arc::new(config);
        let admission = Admission::new(config.clone(), services.clone());
        let browserchannel = config.browserchannel.clone().map(|(path, browserchannel)| {
            let server = BrowserChannelServer::new(admission.clone(), browserchannel);
            (path, Arc::new(server))
        });
        let websocket = config.websocket.clone().map(|(path, websocket)| {
            let server = WebSocketServer::new(admission.clone(), websocket);
            (path, Arc::new(server))
        });
        let event_source = config.event_source.clone().map(|(path, event_source)| {
            let server = EventSourceServer::new(admission.clone(), event_source);
            (path, Arc::new(server))
        });
        let sockjs = config.sockjs.clone().map(|(prefix, sockjs)| {
            let server = SockJsServer::new(admission.clone(), sockjs);
            (prefix, Arc::new(server))
        });
        Self {
            shared: Arc::new(Shared {
                browserchannel,
                websocket,
                event_source,
                sockjs,
                services,
            }),
        }
    }

    /// A handle on this layer's sessions and rooms: to find sessions,
    /// broadcast, count, and close them all at shutdown.
    pub fn handle(&self) -> ChannelHandle {
        ChannelHandle::new(self.shared.services.clone())
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
        match self.shared.route(request.uri().path()) {
            Some(route) => {
                let request = request.map(Body::new);
                ResponseFuture::channel(self.shared.clone().handle(route, request))
            }
            None => ResponseFuture::inner(self.inner.call(request)),
        }
    }
}
