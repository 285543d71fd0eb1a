//! The one connection task of every WebSocket session (RFC 6455, hixie-76,
//! SockJS over WebSocket): it writes what the engine asks, reads while the
//! app's queue has room, runs the engine's timers, and polls the app's
//! callback, all on one task and with no buffers of its own beyond the
//! frames waiting for one write.
//!
//! Reading pauses while the app's queue is full; writes, pongs, pings and
//! the closing handshake go on, so an app that awaits every delivery
//! before reading on never stalls its own connection.
//!
//! A round takes one lock on the session for its writes (every frame
//! queued since the last round, confirming what the last one flushed) and
//! one per message read; frames taken together go out in one write. The
//! app's callback has a waker of its own, so a round woken for the
//! connection (a broadcast to write, say) does not poll the app, and one
//! woken for the app does not touch the socket.

use super::socket::Socket;
use crate::live::{FrameSink, Live, Status};
use axum_channel_protocol::websocket::{Framed, Incoming};
use axum_channel_protocol::Transmit;
use futures::future::BoxFuture;
use futures::task::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;
use tokio::time::Sleep;

/// How many rounds one poll runs before it yields to other tasks.
const BUDGET: usize = 64;

/// Runs a session's connection until both the connection and the app's
/// callback are done.
pub(crate) async fn run<E: Framed + Send + 'static>(
    live: Arc<Live<E>>,
    socket: Socket,
    app: Option<BoxFuture<'static, ()>>,
) {
    let flag = Arc::new(LoopWaker::default());
    let mut connection = Connection {
        live,
        socket: Some(socket),
        app,
        timer: None,
        unflushed: false,
        confirms: None,
        written: None,
        ending: false,
        waker: Waker::from(flag.clone()),
        app_waker: Waker::from(Arc::new(AppWaker(flag.clone()))),
        flag,
    };
    std::future::poll_fn(|cx| connection.poll(cx)).await;
}

struct Connection<E> {
    live: Arc<Live<E>>,
    socket: Option<Socket>,
    app: Option<BoxFuture<'static, ()>>,
    /// The engine's next deadline, created only when it has one.
    timer: Option<Pin<Box<Sleep>>>,
    /// Frames were queued (or a ping answered) and must be flushed.
    unflushed: bool,
    /// Once flushed, every message below this is delivered.
    confirms: Option<u64>,
    /// Flushed: every message below this is delivered, which the next lock
    /// on the session records.
    written: Option<u64>,
    /// The session finished: only what is left gets written (for as long
    /// as the engine's drain allows).
    ending: bool,
    /// The waker of everything the connection polls (the socket, the
    /// session, the timer).
    waker: Waker,
    /// The waker of the app's callback.
    app_waker: Waker,
    flag: Arc<LoopWaker>,
}

/// The wakers of everything the connection task polls. While the task is
/// polling, a wake only marks that another round is due (for the
/// connection, or for the app); the task itself is woken only once it has
/// stopped. Without it, the app sending on its own connection, or the
/// connection handing the app a message, would schedule the task again for
/// nothing.
struct LoopWaker {
    task: AtomicWaker,
    /// A round is due for the connection.
    io: AtomicBool,
    /// A round is due for the app's callback.
    app: AtomicBool,
    polling: AtomicBool,
}

impl Default for LoopWaker {
    fn default() -> Self {
        // The first round polls everything.
        Self {
            task: AtomicWaker::new(),
            io: AtomicBool::new(true),
            app: AtomicBool::new(true),
            polling: AtomicBool::new(false),
        }
    }
}

impl LoopWaker {
    fn woken(&self, due: &AtomicBool) {
        due.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.task.wake();
        }
    }
}

impl Wake for LoopWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken(&self.io);
    }
}

/// The app's callback's waker: the same task, another round.
struct AppWaker(Arc<LoopWaker>);

impl Wake for AppWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.woken(&self.0.app);
    }
}

/// The socket as the session's frames see it during one lock.
struct Sink<'a, 'b> {
    socket: &'a mut Socket,
    cx: &'a mut Context<'b>,
    confirms: &'a mut Option<u64>,
    queued: bool,
    /// The socket's queue filled up before the session's did.
    full: bool,
}

impl FrameSink for Sink<'_, '_> {
    fn has_room(&mut self) -> Result<bool, ()> {
        let room = self.socket.has_room(self.cx)?;
        self.full = !room;
        Ok(room)
    }

    fn put(&mut self, transmit: Transmit) -> Result<(), ()> {
        if let Transmit::Data {
            confirms: Some(through),
            ..
        }
        | Transmit::Binary {
            confirms: Some(through),
            ..
        }
        | Transmit::Deflated {
            confirms: Some(through),
            ..
        } = &transmit
        {
            *self.confirms = Some(*through);
        }
        self.queued = true;
        self.socket.start_send(self.cx, transmit)
    }

    fn waker(&self) -> &Waker {
        self.cx.waker()
    }
}

impl<E: Framed + Send + 'static> Connection<E> {
    fn poll(&mut self, task: &mut Context<'_>) -> Poll<()> {
        self.flag.task.register(task.waker());
        let waker = self.waker.clone();
        let cx = &mut Context::from_waker(&waker);
        self.flag.polling.store(true, Ordering::SeqCst);
        for _ in 0..BUDGET {
            let io = self.flag.io.swap(false, Ordering::SeqCst);
            let app = self.flag.app.swap(false, Ordering::SeqCst);
            // Every step runs until it waits, and whatever it waits on wakes
            // the flags; another round is due only when one was woken, or a
            // timer fired or the connection ended (they re-arm nothing).
            let mut again = false;
            if io && self.socket.is_some() {
                again = self.poll_connection(cx);
            }
            if app {
                self.poll_app();
            }
            if self.socket.is_none() && self.app.is_none() {
                self.flag.polling.store(false, Ordering::SeqCst);
                return Poll::Ready(());
            }
            if again {
                self.flag.io.store(true, Ordering::SeqCst);
                continue;
            }
            self.flag.polling.store(false, Ordering::SeqCst);
            if !self.flag.io.load(Ordering::SeqCst) && !self.flag.app.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
            self.flag.polling.store(true, Ordering::SeqCst);
        }
        // Let other tasks run; come back at once.
        self.flag.polling.store(false, Ordering::SeqCst);
        task.waker().wake_by_ref();
        Poll::Pending
    }

    /// Polls the app's callback, in the session's span.
    fn poll_app(&mut self) {
        let Some(app) = &mut self.app else {
            return;
        };
        let _entered = self.live.info().span.enter();
        if app
            .as_mut()
            .poll(&mut Context::from_waker(&self.app_waker))
            .is_ready()
        {
            self.app = None;
        }
    }

    /// One round for the connection: writes, reads, the timer, the end.
    /// True when another round is due at once.
    fn poll_connection(&mut self, cx: &mut Context<'_>) -> bool {
        let now = crate::base::sync::now();
        let Some(mut status) = self.poll_writes(now, cx) else {
            return true;
        };
        if status.readable && !self.ending {
            status = self.poll_reads(now, cx).unwrap_or(status);
        }
        let mut again = self.poll_timer(cx, status.deadline);
        if status.finished {
            again |= self.poll_end(now, cx);
        }
        again
    }

    fn lost(&mut self, now: Instant) {
        self.input(now, |engine, now| {
            engine.handle_incoming(now, Incoming::Lost)
        });
    }

    /// Hands the engine an input, with what was written since the last lock.
    fn input(&mut self, now: Instant, input: impl FnOnce(&mut E, Instant)) -> Status {
        self.live
            .connection_input(now, self.written.take(), &self.waker, input)
    }

    /// Queues the engine's frames while the socket takes them, and flushes
    /// them together; while the socket takes everything at once and the
    /// session has more, again, so that a round writes all it can before
    /// it reads more (as a round always did). `None` when the connection
    /// failed.
    fn poll_writes(&mut self, now: Instant, cx: &mut Context<'_>) -> Option<Status> {
        loop {
            let socket = self.socket.as_mut()?;
            let mut sink = Sink {
                socket,
                cx,
                confirms: &mut self.confirms,
                queued: false,
                full: false,
            };
            let (status, failed) =
                self.live
                    .take_frames(now, self.written.take(), !self.ending, &mut sink);
            let (queued, full) = (sink.queued, sink.full);
            if failed {
                self.lost(now);
                return None;
            }
            self.unflushed |= queued;
            if !self.unflushed {
                return Some(status);
            }
            let socket = self.socket.as_mut()?;
            match socket.poll_flush(cx) {
                Poll::Pending => return Some(status),
                Poll::Ready(Ok(())) => {
                    self.unflushed = false;
                    if let Some(through) = self.confirms.take() {
                        if status.awaited {
                            self.live.confirm(through);
                        } else {
                            self.written = Some(through);
                        }
                    }
                    if !full {
                        return Some(status);
                    }
                    // The session has more than the socket's queue took.
                }
                Poll::Ready(Err(())) => {
                    self.unflushed = false;
                    self.lost(now);
                    return None;
                }
            }
        }
    }

    /// Reads and hands over frames while the engine wants them and the
    /// app's queue has room; the status after the last one.
    fn poll_reads(&mut self, now: Instant, cx: &mut Context<'_>) -> Option<Status> {
        let mut last = None;
        loop {
            let socket = self.socket.as_mut()?;
            let Poll::Ready(incoming) = socket.poll_read(cx) else {
                return last;
            };
            if incoming == Incoming::Ping || matches!(incoming, Incoming::Close { .. }) {
                // The framing queued its answer; it goes out with the next flush.
                self.unflushed = true;
                self.flag.io.store(true, Ordering::SeqCst);
            }
            let status = self.input(now, |engine, now| engine.handle_incoming(now, incoming));
            last = Some(status);
            if !status.readable {
                return last;
            }
        }
    }

    /// Sleeps until the engine's next deadline, then runs its timers.
    fn poll_timer(&mut self, cx: &mut Context<'_>, deadline: Option<Instant>) -> bool {
        let Some(deadline) = deadline else {
            self.timer = None;
            return false;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        let timer = match &mut self.timer {
            Some(timer) => {
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => self
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        if timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        self.timer = None;
        self.input(crate::base::sync::now(), |engine, now| {
            engine.handle_timeout(now)
        });
        true
    }

    /// Once the session finished (the caller checked), writes what is left
    /// (a close answer) and drops the connection when the engine says it
    /// is done: everything flushed, or its drain timer ran out.
    fn poll_end(&mut self, now: Instant, cx: &mut Context<'_>) -> bool {
        self.ending = true;
        let flushed = match self.socket.as_mut() {
            Some(socket) => socket.poll_flush(cx).is_ready(),
            None => true,
        };
        if flushed {
            self.input(now, |engine, now| engine.handle_flushed(now));
        }
        if !self.live.is_done() {
            return false;
        }
        self.socket = None;
        self.timer = None;
        true
    }
}
