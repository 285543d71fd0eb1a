//! The one connection task of every WebSocket session (RFC 6455, hixie-76,
//! SockJS over WebSocket): it writes what the engine asks, reads while the
//! app's queue has room, runs the engine's timers, and polls the app's
//! callback, all on one task and with no buffers of its own.
//!
//! Reading pauses while the app's queue is full; writes, pongs, pings and
//! the closing handshake go on, so an app that awaits every delivery
//! before reading on never stalls its own connection.

use super::socket::Socket;
use crate::live::Live;
use axum_channel_protocol::websocket::{Framed, Incoming};
use axum_channel_protocol::{ReceiverId, Transmit};
use futures::future::BoxFuture;
use futures::task::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use tokio::time::Sleep;

/// The connection task's slot as the session's receiver.
const CONNECTION: ReceiverId = ReceiverId(0);

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
        ending: false,
        waker: Waker::from(flag.clone()),
        flag,
        now: crate::base::sync::now(),
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
    /// The session finished: only what is left gets written (for as long
    /// as the engine's drain allows).
    ending: bool,
    /// What everything polled inside the task is given as its waker.
    waker: Waker,
    /// The time this round began: one clock read serves every input of a round.
    now: std::time::Instant,
    flag: Arc<LoopWaker>,
}

/// The waker of everything the connection task polls (the socket, the
/// session, the app's callback). While the task is polling, a wake only
/// marks that another round is due; the task itself is woken only once it
/// has stopped. Without it, the app sending on its own connection, or the
/// connection handing the app a message, would schedule the task again for
/// nothing.
#[derive(Default)]
struct LoopWaker {
    task: AtomicWaker,
    woken: AtomicBool,
    polling: AtomicBool,
}

impl Wake for LoopWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.task.wake();
        }
    }
}

impl<E: Framed + Send + 'static> Connection<E> {
    fn poll(&mut self, task: &mut Context<'_>) -> Poll<()> {
        self.flag.task.register(task.waker());
        let waker = self.waker.clone();
        let cx = &mut Context::from_waker(&waker);
        self.flag.polling.store(true, Ordering::SeqCst);
        self.now = crate::base::sync::now();
        for _ in 0..BUDGET {
            self.flag.woken.store(false, Ordering::SeqCst);
            // Every step runs until it waits, and whatever it waits on wakes
            // the flag; another round is due only when the flag was woken,
            // or a timer fired or the connection ended (they re-arm nothing).
            let mut again = false;
            if self.socket.is_some() {
                self.poll_writes(cx);
                self.poll_reads(cx);
                let (deadline, finished) = self.live.take_deadline();
                again |= self.poll_timer(cx, deadline);
                again |= finished && self.poll_end(cx);
            }
            if let Some(app) = &mut self.app {
                if app.as_mut().poll(cx).is_ready() {
                    self.app = None;
                }
            }
            if self.socket.is_none() && self.app.is_none() {
                self.flag.polling.store(false, Ordering::SeqCst);
                return Poll::Ready(());
            }
            if !again {
                self.flag.polling.store(false, Ordering::SeqCst);
                if !self.flag.woken.swap(false, Ordering::SeqCst) {
                    return Poll::Pending;
                }
                self.flag.polling.store(true, Ordering::SeqCst);
            }
        }
        // Let other tasks run; come back at once.
        self.flag.polling.store(false, Ordering::SeqCst);
        task.waker().wake_by_ref();
        Poll::Pending
    }

    fn lost(&mut self) {
        self.live.with_at(self.now, |engine, now| {
            engine.handle_incoming(now, Incoming::Lost)
        });
    }

    /// Queues the engine's frames while the socket takes them, then flushes.
    fn poll_writes(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(socket) = self.socket.as_mut() else {
            return false;
        };
        let mut progress = false;
        if !self.ending {
            loop {
                match socket.poll_ready(cx) {
                    Poll::Pending => break,
                    Poll::Ready(Err(())) => {
                        self.lost();
                        return true;
                    }
                    Poll::Ready(Ok(())) => {}
                }
                let transmit =
                    self.live
                        .poll_transmit(self.now, CONNECTION, cx, false, |engine, now| {
                            engine.poll_frame(now)
                        });
                let Some(transmit) = transmit else {
                    break;
                };
                if let Transmit::Data {
                    confirms: Some(through),
                    ..
                }
                | Transmit::Binary {
                    confirms: Some(through),
                    ..
                } = &transmit
                {
                    self.confirms = Some(*through);
                }
                progress = true;
                self.unflushed = true;
                if socket.start_send(transmit).is_err() {
                    self.lost();
                    return true;
                }
            }
        }
        if self.unflushed {
            match socket.poll_flush(cx) {
                Poll::Pending => {}
                Poll::Ready(Ok(())) => {
                    self.unflushed = false;
                    progress = true;
                    if let Some(through) = self.confirms.take() {
                        self.live.confirm(through);
                    }
                }
                Poll::Ready(Err(())) => {
                    self.unflushed = false;
                    self.lost();
                    progress = true;
                }
            }
        }
        progress
    }

    /// Reads and hands over frames while the engine wants them and the
    /// app's queue has room.
    fn poll_reads(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        loop {
            let Some(socket) = self.socket.as_mut() else {
                return progress;
            };
            if self.ending || !self.live.poll_readable(cx, |engine| engine.wants_read()) {
                return progress;
            }
            let Poll::Ready(incoming) = socket.poll_read(cx) else {
                return progress;
            };
            progress = true;
            if incoming == Incoming::Ping || matches!(incoming, Incoming::Close { .. }) {
                // The framing queued its answer; it goes out with the next flush.
                self.unflushed = true;
            }
            self.live.with_at(self.now, |engine, now| {
                engine.handle_incoming(now, incoming)
            });
        }
    }

    /// Sleeps until the engine's next deadline, then runs its timers.
    fn poll_timer(&mut self, cx: &mut Context<'_>, deadline: Option<std::time::Instant>) -> bool {
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
        self.live.with_at(crate::base::sync::now(), |engine, now| {
            engine.handle_timeout(now)
        });
        true
    }

    /// Once the session finished (the caller checked), writes what is left
    /// (a close answer) and drops the connection when the engine says it
    /// is done: everything flushed, or its drain timer ran out.
    fn poll_end(&mut self, cx: &mut Context<'_>) -> bool {
        self.ending = true;
        let flushed = match self.socket.as_mut() {
            Some(socket) => socket.poll_flush(cx).is_ready(),
            None => true,
        };
        if flushed {
            self.live
                .with_at(self.now, |engine, now| engine.handle_flushed(now));
        }
        if !self.live.peek(|engine| engine.is_done()) {
            return false;
        }
        self.socket = None;
        self.timer = None;
        true
    }
}
