//! Questions to the other nodes, and the replies they collect.
//!
//! A question expects a reply from every node alive when it was asked. It
//! is answered once they all replied, or once its deadline passed, then
//! with the replies it has and the nodes that stayed silent, so the caller
//! can say the answer is partial. Replies from nodes that came up after the
//! question was asked count too; late replies to a finished question are
//! dropped.

use super::frame::{Answer, Reply};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Numbers a question among those of this node.
pub type QueryId = u64;

/// What a question got.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Each replying node and its answer.
    pub answers: Vec<(String, Answer)>,
    /// The nodes expected to reply that did not in time.
    pub silent: Vec<String>,
}

impl Outcome {
    /// True when every node expected replied.
    pub fn is_complete(&self) -> bool {
        self.silent.is_empty()
    }
}

#[derive(Debug)]
struct Pending {
    deadline: Instant,
    awaiting: BTreeSet<String>,
    answers: Vec<(String, Answer)>,
    done: bool,
}

/// The questions this node has asked and not yet taken the outcome of.
///
/// ```
/// use axum_channel_protocol::cluster::{Answer, Queries, Reply};
/// use std::time::{Duration, Instant};
///
/// let now = Instant::now();
/// let mut queries = Queries::default();
/// let id = queries.start(now, ["n2".to_string(), "n3".to_string()], Duration::from_millis(500));
/// queries.handle_reply(Reply { id, from: "n2".into(), answer: Answer::Count(4) });
/// assert!(queries.take(id).is_none()); // n3 may still answer
/// queries.handle_timeout(queries.poll_timeout().unwrap());
/// let outcome = queries.take(id).unwrap();
/// assert_eq!(outcome.silent, ["n3"]);
/// assert_eq!(outcome.answers, [("n2".to_string(), Answer::Count(4))]);
/// ```
#[derive(Debug, Default)]
pub struct Queries {
    next: QueryId,
    pending: BTreeMap<QueryId, Pending>,
}

impl Queries {
    /// Asks a question of the `expected` nodes; it waits at most `timeout`.
    pub fn start<I>(&mut self, now: Instant, expected: I, timeout: Duration) -> QueryId
    where
        I: IntoIterator<Item = String>,
    {
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        let awaiting: BTreeSet<String> = expected.into_iter().collect();
        let done = awaiting.is_empty();
        self.pending.insert(
            id,
            Pending {
                deadline: now + timeout,
                awaiting,
                answers: Vec::new(),
                done,
            },
        );
        id
    }

    /// Records a reply; true when it finished its question.
    pub fn handle_reply(&mut self, reply: Reply) -> bool {
        let Some(pending) = self.pending.get_mut(&reply.id) else {
            return false;
        };
        if pending.done || pending.answers.iter().any(|(node, _)| *node == reply.from) {
            return false;
        }
        pending.awaiting.remove(&reply.from);
        pending.answers.push((reply.from, reply.answer));
        pending.done = pending.awaiting.is_empty();
        pending.done
    }

    /// The earliest deadline of a question still waiting.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending
            .values()
            .filter(|pending| !pending.done)
            .map(|pending| pending.deadline)
            .min()
    }

    /// Finishes every question whose deadline passed; true when one did.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        let mut finished = false;
        for pending in self.pending.values_mut() {
            if !pending.done && pending.deadline <= now {
                pending.done = true;
                finished = true;
            }
        }
        finished
    }

    /// The outcome of question `id` once it is finished; it is forgotten then.
    pub fn take(&mut self, id: QueryId) -> Option<Outcome> {
        if !self.pending.get(&id)?.done {
            return None;
        }
        let pending = self.pending.remove(&id)?;
        Some(Outcome {
            answers: pending.answers,
            silent: pending.awaiting.into_iter().collect(),
        })
    }

    /// Forgets question `id` (its asker gave up).
    pub fn cancel(&mut self, id: QueryId) {
        self.pending.remove(&id);
    }

    /// How many questions are held.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when no question is held.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: QueryId, from: &str, count: usize) -> Reply {
        Reply {
            id,
            from: from.into(),
            answer: Answer::Count(count),
        }
    }

    #[test]
    fn answered_when_every_node_replied() {
        let now = Instant::now();
        let mut queries = Queries::default();
        let id = queries.start(now, ["a".into(), "b".into()], Duration::from_secs(1));
        assert!(!queries.handle_reply(reply(id, "a", 1)));
        // The same node twice counts once.
        assert!(!queries.handle_reply(reply(id, "a", 1)));
        assert!(queries.handle_reply(reply(id, "b", 2)));
        assert_eq!(queries.poll_timeout(), None);
        let outcome = queries.take(id).unwrap();
        assert!(outcome.is_complete());
        assert_eq!(outcome.answers.len(), 2);
        assert!(queries.is_empty());
    }

    #[test]
    fn a_question_to_no_one_is_answered_at_once() {
        let mut queries = Queries::default();
        let id = queries.start(Instant::now(), [], Duration::from_secs(1));
        assert_eq!(queries.take(id), Some(Outcome::default()));
    }

    #[test]
    fn deadlines_finish_questions_in_order() {
        let now = Instant::now();
        let mut queries = Queries::default();
        let first = queries.start(now, ["a".into()], Duration::from_millis(100));
        let second = queries.start(now, ["a".into()], Duration::from_millis(300));
        assert_eq!(
            queries.poll_timeout(),
            Some(now + Duration::from_millis(100))
        );
        assert!(!queries.handle_timeout(now + Duration::from_millis(99)));
        assert!(queries.handle_timeout(now + Duration::from_millis(100)));
        assert_eq!(queries.take(first).unwrap().silent, ["a"]);
        assert!(queries.take(second).is_none());
        assert_eq!(
            queries.poll_timeout(),
            Some(now + Duration::from_millis(300))
        );
        // A late reply to a finished question changes nothing.
        queries.handle_timeout(now + Duration::from_millis(300));
        assert!(!queries.handle_reply(reply(second, "a", 1)));
        assert!(queries.take(second).unwrap().answers.is_empty());
        // Unknown ids are ignored.
        assert!(!queries.handle_reply(reply(99, "a", 1)));
    }

    #[test]
    fn newcomers_answer_without_being_awaited() {
        let now = Instant::now();
        let mut queries = Queries::default();
        let id = queries.start(now, ["a".into()], Duration::from_secs(1));
        assert!(!queries.handle_reply(reply(id, "new", 5)));
        assert!(queries.handle_reply(reply(id, "a", 1)));
        let outcome = queries.take(id).unwrap();
        assert_eq!(outcome.answers.len(), 2);
        queries.cancel(id);
    }
}
