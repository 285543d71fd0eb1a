//! A lean HTTP/1.1 server for apps whose connections live long.
//!
//! [`serve`] is a drop-in for `axum::serve` (one line to switch) for apps
//! that hold many long-lived HTTP connections: BrowserChannel back channels,
//! SockJS streaming receivers, EventSource streams and upgraded WebSockets.
//! It accepts on a [`TcpListener`] and serves each connection with hyper's
//! HTTP/1 connection builder, with upgrades, and adds what `axum::serve`
//! lacks for a server exposed to the Internet:
//!
//! - a **header-read timeout** ([`Serve::header_read_timeout`], default
//!   10 s): a connection that has not sent a whole request head in time is
//!   closed (slowloris);
//! - an **idle timeout** ([`Serve::idle_timeout`], default 30 s): a kept-alive
//!   connection with no request for that long is closed;
//! - an optional **cap on open connections** ([`Serve::max_connections`]);
//! - **graceful shutdown** ([`Serve::with_graceful_shutdown`]), as in axum;
//! - `TCP_NODELAY` on every connection, and the peer's address as
//!   [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) in every
//!   request's extensions (the layer reads it from there), so the app needs
//!   no `into_make_service_with_connect_info`.
//!
//! An idle streaming response costs about half of what it costs behind
//! `axum::serve`, whose connection builder can also speak HTTP/2.
//!
//! # Memory per connection
//!
//! Measured with the load generator's idle mode (10,000 connections, glibc's
//! malloc): a connection holding an idle streaming response grows the
//! resident set by about 10.2 KiB here, as with hyper's builder used
//! directly, against 18.5 KiB behind `axum::serve`. Most of it is hyper's:
//! an 8 KiB read buffer and an 8 KiB write buffer per connection (hyper has
//! no setting for either; only their first page is ever touched by an idle
//! connection), the connection's task (about 1 KiB: hyper's connection
//! state and this module's timers) and, once a response was sent, the
//! emptied header map of that response, which hyper keeps to parse the next
//! request into. Upgraded connections give all of it back.
//!
//! # What it gives up
//!
//! **HTTP/2.** `axum::serve` serves HTTP/1 and HTTP/2 on the same port
//! (hyper-util's auto builder: h2c with prior knowledge); this server speaks
//! HTTP/1.0 and 1.1 only, and answers an HTTP/2 preface with an error. Put
//! a proxy that speaks HTTP/2 to browsers in front of it when you need
//! HTTP/2 (browsers only use HTTP/2 over TLS, which neither server
//! terminates). It also takes a [`TcpListener`] only, not any
//! `axum::serve::Listener` (Unix sockets, `tap_io`).
//!
//! # Timeouts, and what hyper covers
//!
//! hyper 1.x has a `header_read_timeout` of its own. In the hyper this crate
//! is built with, it is armed whenever the connection waits for a request
//! head: after accepting, and again each time a kept-alive connection goes
//! idle. So hyper bounds the keep-alive wait and the reading of the next
//! head *together*, with one duration. This server turns hyper's timer off
//! and keeps its own, so that the two can differ: a kept-alive connection
//! may wait [`idle_timeout`](Serve::idle_timeout) for the first byte of its
//! next request, and then has [`header_read_timeout`](Serve::header_read_timeout)
//! to complete the head. The first request's head must be complete within
//! `header_read_timeout` of the accept.
//!
//! Neither timeout runs while a request is being answered: a streaming
//! response may stay open for as long as the app keeps it. Nor does any
//! timeout bound how slowly a client sends a request *body*, or reads a
//! response; the layer's sessions have their own timeouts for that.
//!
//! # Graceful shutdown
//!
//! When the signal given to [`with_graceful_shutdown`](Serve::with_graceful_shutdown)
//! completes, the server stops accepting, closes every connection that has
//! no request in flight (idle, or still sending a request head), lets every
//! request in flight finish (closing its connection afterwards), and
//! completes once every connection is closed. Streaming responses and
//! upgraded WebSockets belong to the layer: call
//! [`ChannelHandle::shutdown`](crate::ChannelHandle::shutdown) in the signal
//! future, before it completes, so that they end (otherwise the server
//! waits for every back channel to end on its own).

use std::convert::Infallible;
use std::fmt;
use std::future::{Future, IntoFuture, Pending};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::futures::OwnedNotified;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;
use tower_service::Service;

/// Default of [`Serve::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`Serve::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` over HTTP/1.1; see the [module docs](self).
///
/// Like `axum::serve`, the returned [`Serve`] does nothing until awaited;
/// configure it first with its builder methods. It sets `TCP_NODELAY` on
/// every accepted connection and puts the peer's address in each request's
/// extensions as [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo).
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use axum_channel::{ChannelConfig, ChannelLayer};
///
/// # async fn run() -> std::io::Result<()> {
/// let layer = ChannelLayer::new(ChannelConfig::new().on_session(|_session| async {}));
/// let app = Router::new()
///     .route("/healthz", get(|| async { "ok" }))
///     .layer(layer);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// // Instead of `axum::serve(listener, app).await`:
/// axum_channel::serve(listener, app).await
/// # }
/// ```
pub fn serve<S>(listener: TcpListener, app: S) -> Serve<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    Serve {
        listener,
        app,
        signal: std::future::pending(),
        options: Options::default(),
    }
}

#[derive(Debug, Clone, Copy)]
struct Options {
    header_read_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    max_connections: Option<usize>,
    max_buf_size: Option<usize>,
    writev: Option<bool>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            header_read_timeout: Some(DEFAULT_HEADER_READ_TIMEOUT),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_connections: None,
            max_buf_size: None,
            writev: None,
        }
    }
}

/// A server being configured; await it (it is [`IntoFuture`]) to run it.
///
/// Made by [`serve`]. The future completes only after a graceful shutdown
/// ([`with_graceful_shutdown`](Serve::with_graceful_shutdown)); errors
/// accepting a connection are logged and retried, as `axum::serve` does.
///
/// ```no_run
/// use std::time::Duration;
/// # async fn run(app: axum::Router) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum_channel::serve(listener, app)
///     .header_read_timeout(Duration::from_secs(5))
///     .idle_timeout(Duration::from_secs(60))
///     .max_connections(50_000)
///     .await
/// # }
/// ```
#[must_use = "a server does nothing until it is awaited"]
pub struct Serve<S, F = Pending<()>> {
    listener: TcpListener,
    app: S,
    signal: F,
    options: Options,
}

impl<S, F> Serve<S, F> {
    /// How long a client has to send a complete request head: the first
    /// one counted from the accept, the next ones from their first byte.
    /// Past it the connection is closed without an answer. `None` waits
    /// forever. Default: [`DEFAULT_HEADER_READ_TIMEOUT`] (10 s).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    /// axum_channel::serve(listener, app)
    ///     .header_read_timeout(Duration::from_secs(5))
    ///     .await
    /// # }
    /// ```
    pub fn header_read_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.options.header_read_timeout = timeout.into();
        self
    }

    /// How long a kept-alive connection may wait, once its response is
    /// complete, for the first byte of its next request; past it the
    /// connection is closed. `None` keeps idle connections open forever.
    /// Default: [`DEFAULT_IDLE_TIMEOUT`] (30 s).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    /// axum_channel::serve(listener, app)
    ///     .idle_timeout(Duration::from_secs(120))
    ///     .await
    /// # }
    /// ```
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.options.idle_timeout = timeout.into();
        self
    }

    /// At most this many connections open at once; at the cap, the server
    /// stops accepting (new connections wait in the kernel's backlog) until
    /// one closes. An upgraded connection (a WebSocket) counts until its
    /// socket closes. `None`, the default, sets no cap.
    ///
    /// ```no_run
    /// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    /// axum_channel::serve(listener, app)
    ///     .max_connections(10_000)
    ///     .await
    /// # }
    /// ```
    pub fn max_connections(mut self, max: impl Into<Option<usize>>) -> Self {
        self.options.max_connections = max.into();
        self
    }

    /// The largest a connection's read buffer may grow (hyper's
    /// `max_buf_size`), which also bounds the size of a request head.
    /// hyper starts every connection with an 8 KiB read buffer and grows it
    /// while large request bodies arrive; the buffer keeps its size for the
    /// connection's life. Default: hyper's, about 400 KiB.
    ///
    /// # Panics
    ///
    /// When awaited, if `max` is below 8192 (hyper's minimum).
    ///
    /// ```no_run
    /// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    /// axum_channel::serve(listener, app)
    ///     .max_buf_size(64 * 1024)
    ///     .await
    /// # }
    /// ```
    pub fn max_buf_size(mut self, max: usize) -> Self {
        self.options.max_buf_size = Some(max);
        self
    }

    /// Whether hyper writes a response's head and body chunks with one
    /// vectored write (`true`) or copies them into its write buffer first
    /// (`false`). Default: hyper's choice, vectored on a TCP socket.
    ///
    /// ```no_run
    /// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    /// axum_channel::serve(listener, app).writev(true).await
    /// # }
    /// ```
    pub fn writev(mut self, vectored: bool) -> Self {
        self.options.writev = Some(vectored);
        self
    }

    /// The address the listener is bound to.
    ///
    /// ```no_run
    /// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    /// let server = axum_channel::serve(listener, app);
    /// println!("listening on http://{}", server.local_addr()?);
    /// server.await
    /// # }
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Shuts down gracefully once `signal` completes: stop accepting,
    /// close connections with no request in flight (idle, or still sending
    /// a head), let requests in flight finish, then complete. Close the layer's sessions in `signal`
    /// ([`ChannelHandle::shutdown`](crate::ChannelHandle::shutdown)), or
    /// their streaming responses keep the server waiting.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use axum_channel::{ChannelConfig, ChannelLayer};
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let layer = ChannelLayer::new(ChannelConfig::new().on_session(|_session| async {}));
    /// let channels = layer.handle();
    /// let app = axum::Router::new().layer(layer);
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    /// axum_channel::serve(listener, app)
    ///     .with_graceful_shutdown(async move {
    ///         let _ = tokio::signal::ctrl_c().await;
    ///         channels.shutdown(Duration::from_secs(5)).await;
    ///     })
    ///     .await
    /// # }
    /// ```
    pub fn with_graceful_shutdown<G>(self, signal: G) -> Serve<S, G>
    where
        G: Future<Output = ()> + Send + 'static,
    {
        Serve {
            listener: self.listener,
            app: self.app,
            signal,
            options: self.options,
        }
    }
}

impl<S, F> fmt::Debug for Serve<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<S, F> IntoFuture for Serve<S, F>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = ServeFuture;

    fn into_future(self) -> ServeFuture {
        ServeFuture(Box::pin(self.run()))
    }
}

/// The future of a running [`Serve`]; it completes after a graceful
/// shutdown, once every connection has closed.
///
/// ```no_run
/// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
/// use std::future::IntoFuture;
/// let server: axum_channel::serve::ServeFuture = axum_channel::serve(listener, app).into_future();
/// tokio::spawn(server);
/// # Ok(())
/// # }
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct ServeFuture(BoxFuture<'static, io::Result<()>>);

impl Future for ServeFuture {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for ServeFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeFuture").finish_non_exhaustive()
    }
}

impl<S, F> Serve<S, F>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    async fn run(self) -> io::Result<()> {
        let Serve {
            listener,
            app,
            signal,
            options,
        } = self;
        let mut builder = http1::Builder::new();
        // The timeouts are this module's (see the module docs): hyper's
        // header-read timer, on by default once a timer is set, is turned off.
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .keep_alive(true);
        if let Some(max) = options.max_buf_size {
            builder.max_buf_size(max);
        }
        if let Some(vectored) = options.writev {
            builder.writev(vectored);
        }
        let builder = Arc::new(builder);
        let timeouts = Timeouts {
            header_read: options.header_read_timeout,
            idle: options.idle_timeout,
        };
        let cap = options
            .max_connections
            .map(|max| Arc::new(Semaphore::new(max)));
        let lifecycle = Arc::new(Lifecycle::default());
        let mut signal = pin!(signal);

        loop {
            let permit = match &cap {
                Some(cap) => tokio::select! {
                    permit = cap.clone().acquire_owned() => {
                        Some(permit.expect("the connection semaphore is never closed"))
                    }
                    () = &mut signal => break,
                },
                None => None,
            };
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) if is_connection_error(&error) => continue,
                    Err(error) => {
                        // Most likely out of descriptors (EMFILE): wait for
                        // some to close rather than spin.
                        tracing::error!(%error, "accept error");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                            () = &mut signal => break,
                        }
                    }
                },
                () = &mut signal => break,
            };
            let _ = tcp.set_nodelay(true);
            let watch = Arc::new(Watch::default());
            let io = TokioIo::new(Socket {
                tcp,
                watch: Some(watch.clone()),
                _permit: permit,
            });
            let service = ConnService {
                app: app.clone(),
                peer,
                watch: watch.clone(),
            };
            tokio::spawn(Driver {
                connection: Stage::Start(Some((builder.clone(), io, service))),
                stop: lifecycle.stop.clone().notified_owned(),
                watch,
                deadline: Deadline::new(timeouts),
                draining: false,
                open: Open::new(&lifecycle),
            });
        }

        drop(listener);
        tracing::debug!(
            connections = lifecycle.open.load(Ordering::SeqCst),
            "graceful shutdown: no longer accepting, waiting for connections"
        );
        lifecycle.stopping.store(true, Ordering::SeqCst);
        lifecycle.stop.notify_waiters();
        loop {
            let mut all_closed = pin!(lifecycle.all_closed.notified());
            all_closed.as_mut().enable();
            if lifecycle.open.load(Ordering::SeqCst) == 0 {
                break;
            }
            all_closed.await;
        }
        Ok(())
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What a connection is doing, shared by its task, its service, its
/// response body and its socket: a request counter and a phase, in one word.
#[derive(Default)]
struct Watch(AtomicUsize);

const PHASE: usize = 0b11;
/// No request in flight, no byte of the next one read.
const WAITING: usize = 0;
/// Some bytes of the next request head have arrived.
const READING: usize = 1;
/// A request is being answered.
const BUSY: usize = 2;

impl Watch {
    fn load(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    fn bytes_arrived(&self) {
        let state = self.load();
        if state & PHASE == WAITING {
            let _ = self.0.compare_exchange(
                state,
                state | READING,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// A request head is complete; returns the request's number.
    fn request_started(&self) -> usize {
        let mut number = 0;
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |state| {
                number = (state >> 2).wrapping_add(1);
                Some(number << 2 | BUSY)
            });
        number
    }

    /// Request `number`'s response is complete (or dropped).
    fn response_done(&self, number: usize) {
        let _ = self.0.compare_exchange(
            number << 2 | BUSY,
            number << 2 | WAITING,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
}

#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header_read: Option<Duration>,
    idle: Option<Duration>,
}

/// The deadline a connection is under, kept up to date from its [`Watch`].
struct Deadline {
    timeouts: Timeouts,
    /// The watch's state when last looked at.
    seen: usize,
    /// Boxed, and only while a deadline runs: a connection busy with a
    /// long-lived response keeps no timer.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    fn new(timeouts: Timeouts) -> Self {
        let mut deadline = Self {
            timeouts,
            seen: WAITING,
            sleep: None,
        };
        // The first request head is due `header_read` after the accept,
        // however its bytes trickle in.
        deadline.set(timeouts.header_read.map(|t| Instant::now() + t));
        deadline
    }

    fn set(&mut self, at: Option<Instant>) {
        match (at, &mut self.sleep) {
            (None, sleep) => *sleep = None,
            (Some(at), Some(sleep)) => sleep.as_mut().reset(at),
            (Some(at), sleep) => *sleep = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Follows the connection's phase; returns true once the deadline passed.
    fn poll_expired(&mut self, watch: &Watch, cx: &mut Context<'_>) -> bool {
        let state = watch.load();
        if state != self.seen {
            let first = state >> 2 == 0;
            let new_request = state >> 2 != self.seen >> 2;
            match state & PHASE {
                BUSY => self.set(None),
                WAITING => self.set(self.timeouts.idle.map(|t| Instant::now() + t)),
                // Still the first request: its deadline counts from the accept.
                _ if first => {}
                // The first bytes of a later request: its head is due
                // `header_read` from now. (A request that came and went
                // since the last look changes nothing: bytes arrived.)
                _ if new_request || self.seen & PHASE != READING => {
                    self.set(self.timeouts.header_read.map(|t| Instant::now() + t))
                }
                _ => {}
            }
            self.seen = state;
        }
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().poll(cx).is_ready(),
            None => false,
        }
    }
}

/// A connection before and after its first poll. hyper's connection (and
/// its 8 KiB write buffer) is made by the connection's own task, on the
/// thread (and so in the allocator's arena) where the rest of the
/// connection's memory is allocated: with glibc's malloc this saved about
/// 0.5 KiB per idle BrowserChannel session (two connections each).
#[pin_project::pin_project(project = StageProj)]
#[allow(clippy::large_enum_variant)] // `Start` is short-lived and never moved
enum Stage<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    Start(Option<(Arc<http1::Builder>, TokioIo<Socket>, ConnService<S>)>),
    Run(#[pin] http1::UpgradeableConnection<TokioIo<Socket>, ConnService<S>>),
}

impl<S> Stage<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        if let StageProj::Start(start) = self.as_mut().project() {
            let (builder, io, service) = start.take().expect("started once");
            self.set(Stage::Run(
                builder.serve_connection(io, service).with_upgrades(),
            ));
        }
        match self.project() {
            StageProj::Run(connection) => connection.poll(cx),
            StageProj::Start(_) => unreachable!("just started"),
        }
    }

    fn graceful_shutdown(self: Pin<&mut Self>) {
        if let StageProj::Run(connection) = self.project() {
            connection.graceful_shutdown();
        }
    }
}

/// The graceful shutdown's state, shared by the server and its connections.
#[derive(Default)]
struct Lifecycle {
    /// Set before `stop` wakes the connections.
    stopping: AtomicBool,
    stop: Arc<Notify>,
    /// Connections whose task has not ended.
    open: AtomicUsize,
    all_closed: Notify,
}

/// One open connection, for [`Lifecycle::open`].
struct Open(Arc<Lifecycle>);

impl Open {
    fn new(lifecycle: &Arc<Lifecycle>) -> Self {
        lifecycle.open.fetch_add(1, Ordering::SeqCst);
        Self(lifecycle.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.all_closed.notify_waiters();
        }
    }
}

/// Runs one connection: hyper's, under the deadlines, until it closes,
/// is upgraded, times out, or the server shuts down.
///
/// A hand-written future rather than an `async fn`: it is every
/// connection's task, and an `async fn` would hold the connection twice
/// over (its argument and its pinned local), about 1 KiB per connection.
#[pin_project::pin_project]
struct Driver<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    #[pin]
    connection: Stage<S>,
    #[pin]
    stop: OwnedNotified,
    watch: Arc<Watch>,
    deadline: Deadline,
    draining: bool,
    open: Open,
}

impl<S> Future for Driver<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        loop {
            match this.connection.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => return Poll::Ready(()),
                Poll::Ready(Err(error)) => {
                    tracing::debug!(%error, "connection error");
                    return Poll::Ready(());
                }
                Poll::Pending => {}
            }
            if *this.draining {
                break;
            }
            // The flag covers a shutdown that began before this
            // connection's first poll registered it with `stop`.
            let stopping = this.stop.as_mut().poll(cx).is_ready()
                || this.open.0.stopping.load(Ordering::SeqCst);
            if !stopping {
                break;
            }
            *this.draining = true;
            if this.watch.load() & PHASE != BUSY {
                // Idle, or part of a head (hyper would wait for the rest):
                // no request is in flight, close now.
                return Poll::Ready(());
            }
            // hyper closes the connection once its response is complete;
            // it must be polled again to do so.
            this.connection.as_mut().graceful_shutdown();
        }
        if this.deadline.poll_expired(this.watch, cx) {
            let state = this.watch.load();
            let reason = if state & PHASE == WAITING && state >> 2 > 0 {
                "idle timeout"
            } else {
                "header read timeout"
            };
            tracing::debug!(reason, "closing the connection");
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// The TCP stream of one connection. It tells the [`Watch`] when bytes
/// arrive and holds the connection's slot under
/// [`Serve::max_connections`], for as long as the socket is open, upgraded
/// or not.
struct Socket {
    tcp: TcpStream,
    /// Let go once nothing else holds it: after an upgrade, the socket
    /// lives on without its HTTP connection.
    watch: Option<Arc<Watch>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this
            .watch
            .as_ref()
            .is_some_and(|w| Arc::strong_count(w) == 1)
        {
            this.watch = None;
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.tcp).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            if let Some(watch) = &this.watch {
                watch.bytes_arrived();
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The app as hyper's service for one connection.
struct ConnService<S> {
    app: S,
    peer: SocketAddr,
    watch: Arc<Watch>,
}

impl<S> hyper::service::Service<http::Request<Incoming>> for ConnService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Tracked>;
    type Error = Infallible;
    // Boxed: hyper keeps room for the service's future for the connection's
    // whole life, so a large future there would cost every idle connection.
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let number = self.watch.request_started();
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let app = self.app.clone();
        let watch = self.watch.clone();
        Box::pin(async move {
            let response = app.oneshot(request).await?;
            Ok(response.map(|body| Tracked {
                body,
                watch: Some(watch),
                number,
            }))
        })
    }
}

/// A response body that tells the [`Watch`] when it is complete.
struct Tracked {
    body: Body,
    watch: Option<Arc<Watch>>,
    number: usize,
}

impl Tracked {
    fn done(&mut self) {
        if let Some(watch) = self.watch.take() {
            watch.response_done(self.number);
        }
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            self.done();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.done();
    }
}
