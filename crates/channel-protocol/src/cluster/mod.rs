//! What the nodes of a cluster tell each other over a pub/sub bus.
//!
//! Nodes share no memory: a broadcast made on one node reaches members on
//! the others as a [`Frame`] published on a [`Topic`]. Each room has its own
//! topic, so a node only hears broadcasts for rooms it has members in;
//! broadcasts to everyone travel on [`Topic::All`]. A node asks the others
//! (how many members has a room, where is a session) on
//! [`Topic::Requests`] and hears their replies on its own
//! [`Topic::Node`]; [`Queries`] collects those replies and decides, with the
//! caller's clock, when a question is answered or has waited long enough.
//!
//! - [`topic`]: the topics and their names on the bus.
//! - [`frame`]: the bytes of a broadcast, a request and a reply.
//! - [`entry`]: an entry of a room's history log, with its position.
//! - [`query`]: replies collected per question, with deadlines.

pub mod entry;
pub mod frame;
pub mod query;
pub mod topic;

pub use frame::{Answer, Audience, Envelope, Frame, FrameError, Question, Reply, Request, Target};
pub use query::{Outcome, Queries, QueryId};
pub use topic::Topic;
