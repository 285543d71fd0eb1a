//! The one live-session driver: a protocol engine behind one lock, and
//! everything that waits on it.
//!
//! Every transport's session is a [`Live`] around its sans-IO engine. Each
//! input (a request, a frame, an app call, a timer) locks the session, hands
//! the input to the engine with the current time, then settles: the
//! engine's events move messages to the app's queue, confirm deliveries,
//! wake the attached receiver, and record the close. Whoever waits is woken
//! after the lock is released. HTTP sessions file their next deadline with
//! the layer's one timer task; connection-oriented sessions (WebSocket) run
//! their timers on their connection's task.
//!
//! Nothing here waits on the app: the app's queue of received messages is
//! bounded, and while it is full only the *reading* of new input pauses
//! ([`Live::poll_room`]); writes, acknowledgements and pings go on.

pub(crate) mod body;

use crate::base::info::SessionInfo;
use crate::base::link::Link;
use crate::base::sync::{lock, now};
use crate::services::fanout::{overflowed, Overflow};
use crate::services::registry::{Refused, Slot};
use crate::services::telemetry::TransportMetrics;
use crate::services::timers::Timed;
use crate::services::Services;
use axum_channel_protocol::websocket::Framed;
use axum_channel_protocol::{
    CloseReason, Counter, Engine, Event, Message, Payload, ReceiverId, SendError, Ticket, Transmit,
};
use bytes::Bytes;
use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The time, read from the clock only when some input needs it.
#[derive(Default)]
struct LazyNow(Option<Instant>);

impl LazyNow {
    fn at(now: Instant) -> Self {
        Self(Some(now))
    }

    fn get(&mut self) -> Instant {
        *self.0.get_or_insert_with(now)
    }
}

/// Who runs a session's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Clock {
    /// The layer's timer task (HTTP sessions).
    Shared,
    /// The session's connection task, woken when its deadline comes sooner.
    Connection,
}

/// Wakers collected under the lock, woken after it is released. The
/// first is held inline: most inputs wake one waiter (a send wakes the
/// receiver), and a broadcast makes an input for each of its members.
#[derive(Default)]
struct Wakes {
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl Wakes {
    fn add(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else {
            return;
        };
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.rest.push(waker);
        }
    }

    fn all(&mut self, wakers: impl IntoIterator<Item = Waker>) {
        for waker in wakers {
            self.add(Some(waker));
        }
    }

    fn wake(self) {
        if let Some(first) = self.first {
            first.wake();
        }
        for waker in self.rest {
            waker.wake();
        }
    }
}

/// Stores `waker` unless an equivalent one is stored already.
fn remember(wakers: &mut Vec<Waker>, waker: &Waker) {
    if !wakers.iter().any(|w| w.will_wake(waker)) {
        wakers.push(waker.clone());
    }
}

struct Inner<E> {
    engine: E,
    /// Received messages the app has not read yet.
    inbox: VecDeque<Message>,
    /// What the inbox holds, in bytes (`Message::size`).
    inbox_bytes: usize,
    /// The app's `Session` stream, waiting for a message.
    reader: Option<Waker>,
    /// The app found the inbox empty and waits for more.
    app_waiting: bool,
    /// The attached receiver (a response body or a connection task), waiting for bytes.
    receiver: Option<(ReceiverId, Waker)>,
    /// The inbox is full; reading from the peer pauses until it drains to half.
    backpressure: bool,
    /// Per numbering, every item below this is confirmed.
    confirmed: [u64; 2],
    /// Everyone else who waits; allocated only once someone does.
    waiting: Option<Box<Waiters>>,
    /// Boxed: set once per session, and an idle one pays for every byte.
    close_reason: Option<Box<CloseReason>>,
    finished: bool,
    /// The deadline someone will wake the engine for.
    deadline: Option<Instant>,
}

/// Futures and readers waiting on a session, kept off the session itself
/// until there are some.
#[derive(Default)]
struct Waiters {
    /// Per numbering, delivery futures waiting for their item.
    deliveries: [BTreeMap<u64, Waker>; 2],
    /// `Closed` futures.
    closed: Vec<Waker>,
    /// Readers of the peer paused by a full inbox.
    room: Vec<Waker>,
}

impl<E> Inner<E> {
    fn waiting(&mut self) -> &mut Waiters {
        self.waiting.get_or_insert_with(Default::default)
    }
}

fn counter_index(counter: Counter) -> usize {
    match counter {
        Counter::Messages => 0,
        Counter::Pings => 1,
    }
}

/// What to do once the lock is released.
#[derive(Default)]
struct After {
    schedule: Option<(Option<Instant>, Instant)>,
    finished: bool,
    /// Why the session ended, once it finished.
    reason: Option<CloseReason>,
    /// The session closed: it leaves its rooms (a broadcast cannot reach it).
    closed: bool,
}

/// One live session of any transport.
pub(crate) struct Live<E> {
    info: SessionInfo,
    inner: Mutex<Inner<E>>,
    services: Arc<Services>,
    clock: Clock,
    timer_key: u64,
    me: Weak<Live<E>>,
}

static TIMER_KEYS: AtomicU64 = AtomicU64::new(0);

impl<E> std::fmt::Debug for Live<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("id", &self.info.id())
            .field("transport", &self.info.transport)
            .finish_non_exhaustive()
    }
}

impl<E: Engine + Send + 'static> Live<E> {
    /// Queues a message; a full queue gets `overflow`.
    fn queue(
        &self,
        payload: &Payload,
        now: Instant,
        overflow: Overflow,
    ) -> Result<Ticket, SendError> {
        let sent = self.with_at(now, |engine, now| {
            let sent = engine.send(now, payload);
            if let Err(error) = &sent {
                if overflowed(error) && overflow == Overflow::Close {
                    engine.close(now, CloseReason::Lagging);
                }
            }
            sent
        });
        match &sent {
            Ok(_) => self.metrics().sent.increment(1),
            Err(_) => self.metrics().deliveries_failed.increment(1),
        }
        sent
    }

    /// Opens a live session around `engine`: it is registered, and only
    /// then counted as opened, so a session the registry refuses is never
    /// counted and the open gauge goes down only for registered ones. (One
    /// closed by another thread at once may be counted out just before it
    /// is counted in; the totals still agree.)
    pub(crate) fn open(
        info: SessionInfo,
        engine: E,
        services: Arc<Services>,
        clock: Clock,
        slot: Slot,
    ) -> Result<Arc<Self>, Refused> {
        let live = Arc::new_cyclic(|me| Self {
            info,
            inner: Mutex::new(Inner {
                engine,
                inbox: VecDeque::new(),
                inbox_bytes: 0,
                reader: None,
                app_waiting: false,
                receiver: None,
                backpressure: false,
                confirmed: [0; 2],
                waiting: None,
                close_reason: None,
                finished: false,
                deadline: None,
            }),
            services,
            clock,
            timer_key: TIMER_KEYS.fetch_add(1, Ordering::Relaxed),
            me: me.clone(),
        });
        live.services.registry.insert(live.clone(), slot)?;
        let metrics = live.metrics();
        metrics.open.increment(1.0);
        metrics.opened.increment(1);
        // The engine may want a timer (or have events) from the start.
        live.with(|_, _| ());
        Ok(live)
    }

    fn metrics(&self) -> &TransportMetrics {
        self.services.telemetry.transport(self.info.transport)
    }

    pub(crate) fn info(&self) -> &SessionInfo {
        &self.info
    }

    fn lock(&self) -> MutexGuard<'_, Inner<E>> {
        lock(&self.inner)
    }

    /// Runs `input` on the engine, then settles its events.
    pub(crate) fn with<R>(&self, input: impl FnOnce(&mut E, Instant) -> R) -> R {
        self.with_at(now(), input)
    }

    /// Runs `input` at `now`, a time the caller read already (a connection
    /// task reads the clock once per round).
    pub(crate) fn with_at<R>(&self, now: Instant, input: impl FnOnce(&mut E, Instant) -> R) -> R {
        let mut wakes = Wakes::default();
        let (result, after) = {
            let mut inner = self.lock();
            let result = input(&mut inner.engine, now);
            let after = self.settle(&mut inner, &mut LazyNow::at(now), &mut wakes);
            (result, after)
        };
        self.finish(wakes, after);
        result
    }

    /// Reads the engine's state without an input (nothing to settle).
    pub(crate) fn peek<R>(&self, read: impl FnOnce(&E) -> R) -> R {
        read(&self.lock().engine)
    }

    /// Runs `take` for receiver `id`; when it has nothing to write, `cx`
    /// is woken once it has. With `confirm`, what the receiver takes counts
    /// as written (an HTTP body hands its bytes to the connection).
    pub(crate) fn poll_transmit(
        &self,
        now: Instant,
        id: ReceiverId,
        cx: &mut Context<'_>,
        confirm: bool,
        take: impl FnOnce(&mut E, Instant) -> Option<Transmit>,
    ) -> Option<Transmit> {
        let mut wakes = Wakes::default();
        let (transmit, after) = {
            let mut inner = self.lock();
            let transmit = take(&mut inner.engine, now);
            if let Some(
                Transmit::Data { bytes, .. }
                | Transmit::Binary { bytes, .. }
                | Transmit::Deflated { bytes, .. },
            ) = &transmit
            {
                self.metrics().bytes_sent.increment(bytes.len() as u64);
            }
            match &transmit {
                None => {
                    if let Some((other, waker)) = inner.receiver.take() {
                        if other != id {
                            // A receiver that was replaced must learn that it ends.
                            wakes.add(Some(waker));
                        }
                    }
                    inner.receiver = Some((id, cx.waker().clone()));
                }
                Some(
                    Transmit::Data {
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
                    },
                ) if confirm => {
                    Self::confirm_locked(&mut inner, Counter::Messages, *through, &mut wakes);
                }
                Some(_) => {}
            }
            let after = self.settle(&mut inner, &mut LazyNow::at(now), &mut wakes);
            (transmit, after)
        };
        self.finish(wakes, after);
        transmit
    }

    /// Every message below `through` was written.
    pub(crate) fn confirm(&self, through: u64) {
        let mut wakes = Wakes::default();
        Self::confirm_locked(&mut self.lock(), Counter::Messages, through, &mut wakes);
        wakes.wake();
    }

    fn confirm_locked(inner: &mut Inner<E>, counter: Counter, through: u64, wakes: &mut Wakes) {
        let index = counter_index(counter);
        if through <= inner.confirmed[index] {
            return;
        }
        inner.confirmed[index] = through;
        if let Some(waiting) = &mut inner.waiting {
            let waiters = &mut waiting.deliveries[index];
            let pending = waiters.split_off(&through);
            wakes.all(std::mem::replace(waiters, pending).into_values());
        }
    }

    /// Ready when the app's inbox has room for more input (or the session
    /// ended); otherwise `cx` is woken once it has.
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if !inner.backpressure || inner.close_reason.is_some() || inner.finished {
            return Poll::Ready(());
        }
        remember(&mut inner.waiting().room, cx.waker());
        Poll::Pending
    }

    /// Waits until the app's inbox has room for more input.
    pub(crate) async fn room(&self) {
        std::future::poll_fn(|cx| self.poll_room(cx)).await
    }

    /// How many received messages wait for the app.
    pub(crate) fn backlog(&self) -> usize {
        self.lock().inbox.len()
    }

    /// Moves the engine's events to whoever waits for them.
    fn settle(&self, inner: &mut Inner<E>, now: &mut LazyNow, wakes: &mut Wakes) -> After {
        let mut after = After::default();
        let (max_incoming, max_incoming_bytes) =
            (self.services.max_incoming, self.services.max_incoming_bytes);
        let mut idle_told = false;
        loop {
            let Some(event) = inner.engine.poll_event() else {
                // An app that waits with nothing left to read has answered
                // everything it was given.
                if inner.app_waiting
                    && inner.inbox.is_empty()
                    && !idle_told
                    && inner.engine.watches_app()
                {
                    idle_told = true;
                    inner.engine.app_idle(now.get());
                    continue;
                }
                break;
            };
            match event {
                Event::Message(message) => {
                    self.metrics().received.increment(1);
                    inner.inbox_bytes += message.size();
                    inner.inbox.push_back(message);
                    wakes.add(inner.reader.take());
                    let full = inner.inbox.len() >= max_incoming
                        || inner.inbox_bytes >= max_incoming_bytes;
                    if !inner.backpressure && full {
                        inner.backpressure = true;
                        inner.engine.set_backpressure(now.get(), true);
                    }
                }
                Event::Confirmed { counter, through } => {
                    Self::confirm_locked(inner, counter, through, wakes);
                }
                Event::Transmit => {
                    wakes.add(inner.receiver.take().map(|(_, waker)| waker));
                }
                Event::Closed(reason) => {
                    if inner.close_reason.is_none() {
                        self.info
                            .span
                            .in_scope(|| tracing::debug!(%reason, "session closed"));
                        inner.close_reason = Some(Box::new(reason));
                    }
                    after.closed = true;
                    wakes.add(inner.reader.take());
                    if let Some(waiting) = &mut inner.waiting {
                        wakes.all(waiting.closed.drain(..));
                        wakes.all(waiting.room.drain(..));
                    }
                }
                Event::Finished => {
                    inner.finished = true;
                    after.finished = true;
                    if inner.close_reason.is_none() {
                        inner.close_reason = Some(Box::new(CloseReason::ConnectionLost));
                    }
                    after.reason = inner.close_reason.as_deref().cloned();
                    if let Some(waiting) = inner.waiting.take() {
                        let Waiters {
                            deliveries,
                            closed,
                            room,
                        } = *waiting;
                        for waiters in deliveries {
                            wakes.all(waiters.into_values());
                        }
                        wakes.all(closed);
                        wakes.all(room);
                    }
                    wakes.add(inner.reader.take());
                    wakes.add(inner.receiver.take().map(|(_, waker)| waker));
                }
            }
        }
        if !inner.finished {
            if let Some(wanted) = inner.engine.poll_timeout() {
                if inner.deadline.is_none_or(|current| wanted < current) {
                    let previous = inner.deadline.replace(wanted);
                    match self.clock {
                        Clock::Shared => after.schedule = Some((previous, wanted)),
                        Clock::Connection => {
                            wakes.add(inner.receiver.take().map(|(_, waker)| waker));
                        }
                    }
                }
            }
        }
        after
    }

    fn finish(&self, wakes: Wakes, after: After) {
        if after.closed || after.finished {
            self.services.rooms.leave_all(self.info.key());
        }
        if after.finished {
            // Gone from the registry and its rooms before anyone waiting
            // learns of it.
            self.info
                .span
                .in_scope(|| tracing::debug!("session finished"));
            let key = self.info.key();
            self.services
                .registry
                .remove(key, self.info.sockjs_key.as_deref());
            let metrics = self.metrics();
            metrics.open.decrement(1.0);
            if let Some(reason) = &after.reason {
                metrics.closed(reason);
            }
        }
        wakes.wake();
        if let Some((previous, deadline)) = after.schedule {
            let me: Weak<dyn Timed> = self.me.clone();
            self.services
                .timers
                .schedule(self.timer_key, previous, deadline, me);
        }
    }
}

/// Where a connection task puts the frames it takes from its session.
pub(crate) trait FrameSink {
    /// True while another frame fits without waiting; an error once the
    /// connection failed.
    fn has_room(&mut self) -> Result<bool, ()>;
    /// Queues one frame for writing; an error once the connection failed.
    fn put(&mut self, transmit: Transmit) -> Result<(), ()>;
    /// The connection task's waker, woken when the session has more.
    fn waker(&self) -> &Waker;
}

/// What a connection task learns under each lock it takes on its session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Status {
    /// The engine wants input and the app's inbox has room for it (when it
    /// has not, the task is woken once it has).
    pub(crate) readable: bool,
    /// The deadline the task must wake the engine for.
    pub(crate) deadline: Option<Instant>,
    /// The session finished: only what is left gets written.
    pub(crate) finished: bool,
    /// Someone waits for a message's delivery: confirm a flush at once.
    pub(crate) awaited: bool,
}

/// The one receiver of a session carried by a connection.
const CONNECTION: ReceiverId = ReceiverId(0);

impl<E: Framed + Send + 'static> Live<E> {
    /// The connection task's writes, under one lock: every message below
    /// `written` was written (the task confirms what it flushed with its
    /// next lock, so a flush takes none of its own); with `take`, frames
    /// go to `sink` while it has room, and once the engine has no more the
    /// task is its receiver. The second value is true when the sink failed.
    pub(crate) fn take_frames(
        &self,
        now: Instant,
        written: Option<u64>,
        take: bool,
        sink: &mut impl FrameSink,
    ) -> (Status, bool) {
        let mut wakes = Wakes::default();
        let (status, failed, after) = {
            let mut inner = self.lock();
            if let Some(through) = written {
                Self::confirm_locked(&mut inner, Counter::Messages, through, &mut wakes);
            }
            let (sent, failed) = if take {
                Self::frames_into(&mut inner, now, sink)
            } else {
                (0, false)
            };
            if sent > 0 {
                self.metrics().bytes_sent.increment(sent as u64);
            }
            let after = self.settle(&mut inner, &mut LazyNow::at(now), &mut wakes);
            (self.status(&mut inner, sink.waker()), failed, after)
        };
        self.finish(wakes, after);
        (status, failed)
    }

    /// Moves frames from the engine to `sink` while it has room; once the
    /// engine has none, the sink's task is the receiver. The bytes moved,
    /// and whether the sink failed.
    fn frames_into(inner: &mut Inner<E>, now: Instant, sink: &mut impl FrameSink) -> (usize, bool) {
        let mut sent = 0;
        loop {
            match sink.has_room() {
                Ok(true) => {}
                Ok(false) => return (sent, false),
                Err(()) => return (sent, true),
            }
            let Some(transmit) = inner.engine.poll_frame(now) else {
                let current = inner.receiver.as_ref();
                if current.is_none_or(|(_, waker)| !waker.will_wake(sink.waker())) {
                    inner.receiver = Some((CONNECTION, sink.waker().clone()));
                }
                return (sent, false);
            };
            if let Transmit::Data { bytes, .. }
            | Transmit::Binary { bytes, .. }
            | Transmit::Deflated { bytes, .. } = &transmit
            {
                sent += bytes.len();
            }
            if sink.put(transmit).is_err() {
                return (sent, true);
            }
        }
    }

    /// Runs the connection task's `input` (what it read, a lost
    /// connection, a timer, a completed flush) once every message below
    /// `written` is confirmed.
    pub(crate) fn connection_input(
        &self,
        now: Instant,
        written: Option<u64>,
        waker: &Waker,
        input: impl FnOnce(&mut E, Instant),
    ) -> Status {
        let mut wakes = Wakes::default();
        let (status, after) = {
            let mut inner = self.lock();
            if let Some(through) = written {
                Self::confirm_locked(&mut inner, Counter::Messages, through, &mut wakes);
            }
            input(&mut inner.engine, now);
            let after = self.settle(&mut inner, &mut LazyNow::at(now), &mut wakes);
            (self.status(&mut inner, waker), after)
        };
        self.finish(wakes, after);
        status
    }

    /// True once the engine says the connection may be dropped.
    pub(crate) fn is_done(&self) -> bool {
        self.lock().engine.is_done()
    }

    fn status(&self, inner: &mut Inner<E>, waker: &Waker) -> Status {
        let wants = inner.engine.wants_read();
        let roomy = !inner.backpressure || inner.close_reason.is_some() || inner.finished;
        if wants && !roomy {
            remember(&mut inner.waiting().room, waker);
        }
        // The task wakes for this deadline: a sooner one must wake it.
        let deadline = inner.engine.poll_timeout();
        inner.deadline = deadline;
        let awaited = inner.waiting.as_ref().is_some_and(|waiting| {
            !waiting.deliveries[counter_index(Counter::Messages)].is_empty()
        });
        Status {
            readable: wants && roomy,
            deadline,
            finished: inner.finished,
            awaited,
        }
    }
}

impl<E: Engine + Send + 'static> Timed for Live<E> {
    fn fire(self: Arc<Self>, deadline: Instant) {
        // A timer never fires early, but the clock read may lag it slightly.
        let now = now().max(deadline);
        let mut wakes = Wakes::default();
        let after = {
            let mut inner = self.lock();
            if inner.deadline != Some(deadline) {
                // Replaced by a sooner deadline, which fires on its own.
                return;
            }
            inner.deadline = None;
            inner.engine.handle_timeout(now);
            self.settle(&mut inner, &mut LazyNow::at(now), &mut wakes)
        };
        self.finish(wakes, after);
    }
}

impl<E: Engine + Send + 'static> Link for Live<E> {
    fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// Queues a message; a full queue gets the layer's overflow policy.
    fn send(&self, payload: &Payload) -> Result<Ticket, SendError> {
        self.send_at(payload, now())
    }

    fn send_at(&self, payload: &Payload, now: Instant) -> Result<Ticket, SendError> {
        self.queue(payload, now, self.services.overflow)
    }

    fn send_or_refuse(&self, payload: &Payload) -> Result<Ticket, SendError> {
        self.queue(payload, now(), Overflow::Drop)
    }

    fn ping(&self, payload: Bytes) -> Result<Ticket, SendError> {
        self.with(|engine, now| engine.ping(now, payload))
    }

    fn stop(&self) {
        self.with(|engine, now| engine.stop(now))
    }

    fn close(&self, reason: CloseReason) {
        self.with(|engine, now| engine.close(now, reason))
    }

    fn poll_message(&self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let mut now = LazyNow::default();
        let mut wakes = Wakes::default();
        let (poll, after) = {
            let mut inner = self.lock();
            let poll = if let Some(message) = inner.inbox.pop_front() {
                inner.app_waiting = false;
                inner.inbox_bytes -= message.size();
                let roomy = inner.inbox.len() <= self.services.max_incoming / 2
                    && inner.inbox_bytes <= self.services.max_incoming_bytes / 2;
                if inner.backpressure && roomy {
                    inner.backpressure = false;
                    inner.engine.set_backpressure(now.get(), false);
                    if let Some(waiting) = &mut inner.waiting {
                        wakes.all(waiting.room.drain(..));
                    }
                }
                if inner.inbox.is_empty() && inner.inbox.capacity() > 64 {
                    // An idle session keeps no buffer it does not need.
                    inner.inbox = VecDeque::new();
                }
                Poll::Ready(Some(message))
            } else if inner.close_reason.is_some() || inner.finished {
                Poll::Ready(None)
            } else {
                if inner
                    .reader
                    .as_ref()
                    .is_none_or(|w| !w.will_wake(cx.waker()))
                {
                    inner.reader = Some(cx.waker().clone());
                }
                inner.app_waiting = true;
                Poll::Pending
            };
            let after = self.settle(&mut inner, &mut now, &mut wakes);
            (poll, after)
        };
        self.finish(wakes, after);
        poll
    }

    fn poll_confirmed(&self, ticket: Ticket, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        let mut inner = self.lock();
        let index = counter_index(ticket.counter);
        if inner.confirmed[index] > ticket.seq {
            return Poll::Ready(Ok(()));
        }
        if inner.finished {
            let reason = inner
                .close_reason
                .as_deref()
                .cloned()
                .unwrap_or(CloseReason::ConnectionLost);
            return Poll::Ready(Err(SendError::Closed(reason)));
        }
        inner.waiting().deliveries[index].insert(ticket.seq, cx.waker().clone());
        // A connection task confirms what it flushed with its next lock:
        // wake it, so a flush waiting for that is confirmed now.
        let task = match (self.clock, ticket.counter) {
            (Clock::Connection, Counter::Messages) => inner.receiver.take().map(|(_, w)| w),
            _ => None,
        };
        drop(inner);
        if let Some(task) = task {
            task.wake();
        }
        Poll::Pending
    }

    fn forget_delivery(&self, ticket: Ticket) {
        if let Some(waiting) = &mut self.lock().waiting {
            waiting.deliveries[counter_index(ticket.counter)].remove(&ticket.seq);
        }
    }

    fn poll_closed(&self, cx: &mut Context<'_>) -> Poll<CloseReason> {
        let mut inner = self.lock();
        if let Some(reason) = inner.close_reason.as_deref() {
            return Poll::Ready(reason.clone());
        }
        remember(&mut inner.waiting().closed, cx.waker());
        Poll::Pending
    }

    fn close_reason(&self) -> Option<CloseReason> {
        self.lock().close_reason.as_deref().cloned()
    }

    fn delivery_timeout(&self) -> Option<Duration> {
        self.services.delivery_timeout
    }

    fn delivery_failed(&self) {
        self.metrics().deliveries_failed.increment(1);
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::transport::Transport;
    use crate::services::Settings;
    use axum_channel_protocol::sockjs;

    fn services(max_sessions: usize) -> Arc<Services> {
        Services::start(Settings {
            max_sessions,
            max_sessions_per_address: None,
            session_rate: None,
            max_incoming: 16,
            max_incoming_bytes: 1 << 20,
            delivery_timeout: None,
            overflow: Overflow::Drop,
            cluster: None,
            cluster_timeout: Duration::from_millis(500),
            history: None,
        })
    }

    fn open(
        services: &Arc<Services>,
        key: &str,
    ) -> Option<Result<Arc<Live<sockjs::Session>>, Refused>> {
        let slot = services.registry.reserve(None).ok()?;
        let mut info = SessionInfo::new(
            Transport::SockJs,
            None,
            &http::Uri::from_static("/sockjs/000/k/xhr"),
            &http::HeaderMap::new(),
        );
        info.sockjs_key = Some(key.into());
        let engine = sockjs::Session::new(now(), sockjs::SessionConfig::default());
        Some(Live::open(
            info,
            engine,
            services.clone(),
            Clock::Shared,
            slot,
        ))
    }

    #[tokio::test]
    async fn a_taken_sockjs_key_hands_back_its_session_and_its_place() {
        let services = services(2);
        let Some(Ok(first)) = open(&services, "a") else {
            panic!("the first session opens");
        };
        // Same key: the session to join; the place taken for it comes back.
        match open(&services, "a") {
            Some(Err(Refused::KeyTaken(existing))) => {
                assert_eq!(existing.info().key(), first.info().key())
            }
            _ => panic!("a second session of key a"),
        }
        assert!(matches!(open(&services, "b"), Some(Ok(_))));
        assert!(open(&services, "c").is_none(), "both places are taken");
        assert_eq!(services.registry.len(), 2);
    }
}

/// An idle session costs little more than its one `Live` allocation, so
/// what that allocation grows by is paid once per idle session. The bounds
/// are the sizes on 64-bit targets (with the `Arc`'s 16 bytes, the SockJS
/// one fills jemalloc's 768-byte size class exactly, the WebSocket one fits
/// in it, the BrowserChannel one in the 896-byte class): growing past one
/// should be a choice made on purpose, with the bound raised.
#[cfg(all(test, target_pointer_width = "64"))]
mod idle_size {
    use super::Live;
    use axum_channel_protocol::{browserchannel, event_stream, sockjs, websocket};
    use std::mem::size_of;

    #[test]
    fn a_session_stays_small() {
        let sizes = [
            ("WebSocket", size_of::<Live<websocket::Session>>(), 728),
            (
                "BrowserChannel",
                size_of::<Live<browserchannel::Session>>(),
                864,
            ),
            ("SockJS", size_of::<Live<sockjs::Session>>(), 752),
            (
                "SockJS websocket",
                size_of::<Live<sockjs::WebSocketSession>>(),
                824,
            ),
            ("EventSource", size_of::<Live<event_stream::Session>>(), 600),
        ];
        for (transport, size, bound) in sizes {
            assert!(
                size <= bound,
                "a {transport} session takes {size} bytes, over {bound}"
            );
        }
    }
}
