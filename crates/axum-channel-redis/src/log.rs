//! The rooms' history logs in Redis: a stream per room
//! (`PREFIX:stream:ROOM`, entries `SEQ-0`) and its epoch and sequence in a
//! hash (`PREFIX:history:ROOM`). One Lua script appends to every room of a
//! broadcast and publishes each entry with its position on the room's log
//! channel, so the positions are given and heard in one order; another
//! reads what followed a position.

use crate::signals::Signals;
use axum_channel_cluster::{
    BoxFuture, ClusterError, Lookup, Position, Retention, RoomLog, Topic, Unrecoverable,
};
use bytes::Bytes;
use futures::FutureExt;
use redis::aio::ConnectionManager;
use redis::RetryMethod;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Appends one frame to the log of each room; an append already made
/// (its id kept for ten minutes) answers with its positions again.
const APPEND: &str = r"
local done = redis.call('GET', KEYS[1])
if done then return done end
local rooms = (#KEYS - 1) / 2
local positions = {}
for i = 1, rooms do
  local meta, stream = KEYS[2 * i], KEYS[2 * i + 1]
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    epoch = ARGV[3 + 2 * i]
    redis.call('DEL', stream)
    redis.call('HSET', meta, 'epoch', epoch, 'seq', 0)
  end
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  redis.call('XADD', stream, 'MAXLEN', ARGV[2], seq .. '-0', 'f', ARGV[1])
  redis.call('PEXPIRE', stream, ARGV[3])
  redis.call('PEXPIRE', meta, ARGV[3])
  local position = seq .. '-' .. epoch
  positions[i] = position
  redis.call('PUBLISH', ARGV[2 + 2 * i], position .. ' ' .. ARGV[1])
end
local joined = table.concat(positions, ',')
redis.call('SET', KEYS[1], joined, 'PX', 600000)
return joined
";

/// What followed a position in one room's log, or why it cannot be vouched for.
const READ: &str = r"
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return {'none'} end
if ARGV[1] ~= '' and epoch ~= ARGV[1] then return {'epoch'} end
local last = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local since = tonumber(ARGV[2])
if since > last then return {'future'} end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local first_seq = last + 1
if #first > 0 then first_seq = tonumber(string.match(first[1][1], '^(%d+)')) end
if ARGV[1] == '' then since = first_seq - 1 end
if since + 1 < first_seq then return {'trimmed'} end
local limit = tonumber(ARGV[3])
local items = redis.call('XRANGE', KEYS[2], '(' .. since .. '-0', '+', 'COUNT', limit + 1)
local out = {'found', epoch}
for i, item in ipairs(items) do
  if i > limit then break end
  out[#out + 1] = item[1]
  out[#out + 1] = item[2][2]
end
if #items > limit then out[#out + 1] = 'more' end
return out
";

/// The longest expiry an append sets: about a century, in milliseconds.
const MAX_EXPIRY_MS: u128 = 100 * 365 * 24 * 3600 * 1000;

/// Appends held while Redis is away, bounded in count and bytes.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    appends: AtomicUsize,
    bytes: AtomicUsize,
}

/// A place in the backlog, given back when its append is done.
struct Held {
    backlog: Arc<Backlog>,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.backlog.appends.fetch_sub(1, Ordering::AcqRel);
        self.backlog.bytes.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl Backlog {
    fn hold(self: &Arc<Self>, bytes: usize, max_appends: usize, max_bytes: usize) -> Option<Held> {
        let appends = self.appends.fetch_add(1, Ordering::AcqRel) + 1;
        let total = self.bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        let held = Held {
            backlog: self.clone(),
            bytes,
        };
        (appends <= max_appends && total <= max_bytes).then_some(held)
    }
}

/// The history logs of a cluster in Redis.
pub(crate) struct RedisLog {
    pub(crate) prefix: String,
    pub(crate) manager: ConnectionManager,
    pub(crate) timeout: Duration,
    pub(crate) signals: Arc<Signals>,
    pub(crate) backlog: Arc<Backlog>,
    pub(crate) max_held: usize,
    pub(crate) max_held_bytes: usize,
}

impl RedisLog {
    fn meta_key(&self, room: &str) -> String {
        format!("{}:history:{room}", self.prefix)
    }

    fn stream_key(&self, room: &str) -> String {
        format!("{}:stream:{room}", self.prefix)
    }
}

/// A random epoch, in the hex a position is written in.
fn new_epoch() -> String {
    format!("{:x}", uuid::Uuid::new_v4().as_u64_pair().0)
}

impl RoomLog for RedisLog {
    fn append(
        &self,
        rooms: &[String],
        frame: Bytes,
        retention: Retention,
    ) -> BoxFuture<'static, Result<Vec<Position>, ClusterError>> {
        let Some(held) = self.backlog.hold(
            frame.len() * rooms.len().max(1),
            self.max_held,
            self.max_held_bytes,
        ) else {
            self.signals.metrics.refused_appends.increment(1);
            tracing::warn!("a broadcast was refused: too many are waiting for Redis");
            return futures::future::ready(Err(ClusterError::new(
                "too many broadcasts wait for Redis (it is unreachable or slow)",
            )))
            .boxed();
        };
        let mut command = redis::cmd("EVAL");
        command.arg(APPEND).arg(1 + 2 * rooms.len()).arg(format!(
            "{}:appended:{}",
            self.prefix,
            uuid::Uuid::new_v4().simple()
        ));
        for room in rooms {
            command.arg(self.meta_key(room)).arg(self.stream_key(room));
        }
        command
            .arg(&frame[..])
            .arg(retention.max_messages.max(1))
            // PEXPIRE takes at most a signed 64-bit count (and then some):
            // ages past a century are kept for a century.
            .arg(retention.max_age.as_millis().clamp(1, MAX_EXPIRY_MS) as u64);
        for room in rooms {
            command
                .arg(Topic::Log(room.clone()).channel(&self.prefix))
                .arg(new_epoch());
        }
        let mut manager = self.manager.clone();
        let timeout = self.timeout;
        let signals = self.signals.clone();
        let count = rooms.len();
        async move {
            // Dropped once the append is made or refused for good.
            let _held = held;
            let mut delay = Duration::from_millis(50);
            let mut waited = false;
            loop {
                let outcome =
                    tokio::time::timeout(timeout, command.query_async::<String>(&mut manager))
                        .await;
                let error = match outcome {
                    Ok(Ok(joined)) => {
                        if waited {
                            tracing::info!("a broadcast held while Redis was away is appended");
                        }
                        return parse_positions(&joined, count);
                    }
                    Ok(Err(error)) if matches!(error.retry_method(), RetryMethod::NoRetry) => {
                        return Err(ClusterError::new(format!(
                            "Redis refused the append: {error}"
                        )));
                    }
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => "Redis did not answer the append in time".to_owned(),
                };
                // The same append again (with the same id) until Redis takes it.
                if !waited {
                    signals.metrics.held_appends.increment(1);
                    tracing::warn!(%error, "a broadcast waits for Redis");
                }
                waited = true;
                signals.lost(&error);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
        }
        .boxed()
    }

    fn read_after(
        &self,
        room: &str,
        since: Option<Position>,
        limit: usize,
    ) -> BoxFuture<'static, Result<Lookup<Bytes>, ClusterError>> {
        let (epoch, offset) = match since {
            Some(since) => (format!("{:x}", since.epoch), since.offset),
            None => (String::new(), 0),
        };
        let command = redis::cmd("EVAL")
            .arg(READ)
            .arg(2)
            .arg(self.meta_key(room))
            .arg(self.stream_key(room))
            .arg(epoch)
            .arg(offset)
            .arg(limit.max(1))
            .to_owned();
        let mut manager = self.manager.clone();
        let timeout = self.timeout;
        async move {
            let outcome =
                tokio::time::timeout(timeout, command.query_async::<Vec<Vec<u8>>>(&mut manager))
                    .await;
            match outcome {
                Ok(Ok(reply)) => parse_read(reply),
                Ok(Err(error)) => Err(ClusterError::new(format!("Redis read failed: {error}"))),
                Err(_) => Err(ClusterError::new("Redis did not answer a read in time")),
            }
        }
        .boxed()
    }

    fn last_position(
        &self,
        room: &str,
    ) -> BoxFuture<'static, Result<Option<Position>, ClusterError>> {
        let command = redis::cmd("EVAL")
            .arg(LAST)
            .arg(1)
            .arg(self.meta_key(room))
            .to_owned();
        let mut manager = self.manager.clone();
        let timeout = self.timeout;
        async move {
            let outcome =
                tokio::time::timeout(timeout, command.query_async::<String>(&mut manager)).await;
            match outcome {
                Ok(Ok(last)) if last.is_empty() => Ok(None),
                Ok(Ok(last)) => last.parse().map(Some).map_err(|_| {
                    ClusterError::new("Redis answered with something else than a position")
                }),
                Ok(Err(error)) => Err(ClusterError::new(format!("Redis read failed: {error}"))),
                Err(_) => Err(ClusterError::new("Redis did not answer a read in time")),
            }
        }
        .boxed()
    }
}

/// The last position of one room's log, if it has one.
const LAST: &str = r"
local fields = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if not fields[1] then return '' end
return fields[2] .. '-' .. fields[1]
";

fn parse_positions(joined: &str, count: usize) -> Result<Vec<Position>, ClusterError> {
    let positions: Vec<Position> = joined
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| ClusterError::new("Redis answered an append with something else"))?;
    if positions.len() != count {
        return Err(ClusterError::new(
            "Redis answered an append with something else",
        ));
    }
    Ok(positions)
}

fn parse_read(reply: Vec<Vec<u8>>) -> Result<Lookup<Bytes>, ClusterError> {
    let odd = || ClusterError::new("Redis answered a read with something else");
    let mut parts = reply.into_iter();
    let kind = parts.next().ok_or_else(odd)?;
    let why = match &kind[..] {
        b"found" => None,
        b"none" => Some(Unrecoverable::NoHistory),
        b"epoch" => Some(Unrecoverable::OtherEpoch),
        b"future" => Some(Unrecoverable::Future),
        b"trimmed" => Some(Unrecoverable::Trimmed),
        _ => return Err(odd()),
    };
    if let Some(why) = why {
        return Ok(Lookup::Unrecoverable(why));
    }
    let epoch = parts
        .next()
        .and_then(|epoch| u64::from_str_radix(std::str::from_utf8(&epoch).ok()?, 16).ok())
        .ok_or_else(odd)?;
    let mut items = Vec::new();
    let mut more = false;
    while let Some(id) = parts.next() {
        if id == b"more" {
            more = true;
            break;
        }
        let frame = parts.next().ok_or_else(odd)?;
        let offset = std::str::from_utf8(&id)
            .ok()
            .and_then(|id| id.strip_suffix("-0"))
            .and_then(|seq| seq.parse().ok())
            .ok_or_else(odd)?;
        items.push((Position::new(epoch, offset), Bytes::from(frame)));
    }
    Ok(Lookup::Found { items, more })
}
