//! The topics nodes publish on, and their names on the bus.

use std::fmt;

/// Where a frame travels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Broadcasts to every session; every node listens.
    All,
    /// Broadcasts to one room; only nodes with members in it listen.
    Room(String),
    /// Questions to every node; every node listens.
    Requests,
    /// Replies and messages for one node's sessions; that node listens.
    Node(String),
    /// The entries of one room's history log as they are appended, each
    /// with its position; only nodes with members in the room listen.
    Log(String),
}

const ALL: &str = "all";
const ROOM: &str = "room:";
const REQUESTS: &str = "requests";
const NODE: &str = "node:";
const LOG: &str = "log:";

impl Topic {
    /// The topic's channel name under `prefix`: `PREFIX:all`,
    /// `PREFIX:room:NAME`, `PREFIX:requests`, `PREFIX:node:ID`,
    /// `PREFIX:log:NAME`.
    ///
    /// ```
    /// use axum_channel_protocol::cluster::Topic;
    /// let room = Topic::Room("lobby".into());
    /// assert_eq!(room.channel("chat"), "chat:room:lobby");
    /// assert_eq!(Topic::parse("chat", "chat:room:lobby"), Some(room));
    /// assert_eq!(Topic::parse("chat", "other:all"), None);
    /// ```
    pub fn channel(&self, prefix: &str) -> String {
        match self {
            Topic::All => format!("{prefix}:{ALL}"),
            Topic::Room(room) => format!("{prefix}:{ROOM}{room}"),
            Topic::Requests => format!("{prefix}:{REQUESTS}"),
            Topic::Node(node) => format!("{prefix}:{NODE}{node}"),
            Topic::Log(room) => format!("{prefix}:{LOG}{room}"),
        }
    }

    /// The topic a channel name under `prefix` stands for.
    pub fn parse(prefix: &str, channel: &str) -> Option<Topic> {
        let rest = channel.strip_prefix(prefix)?.strip_prefix(':')?;
        if rest == ALL {
            Some(Topic::All)
        } else if rest == REQUESTS {
            Some(Topic::Requests)
        } else if let Some(room) = rest.strip_prefix(ROOM) {
            Some(Topic::Room(room.to_owned()))
        } else if let Some(room) = rest.strip_prefix(LOG) {
            Some(Topic::Log(room.to_owned()))
        } else {
            rest.strip_prefix(NODE)
                .map(|node| Topic::Node(node.to_owned()))
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::All => f.write_str(ALL),
            Topic::Room(room) => write!(f, "{ROOM}{room}"),
            Topic::Requests => f.write_str(REQUESTS),
            Topic::Node(node) => write!(f, "{NODE}{node}"),
            Topic::Log(room) => write!(f, "{LOG}{room}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn names_round_trip(prefix in "[a-z:]{0,8}", room in ".{0,20}") {
            for topic in [Topic::All, Topic::Requests, Topic::Room(room.clone()), Topic::Node(room.clone()), Topic::Log(room.clone())] {
                prop_assert_eq!(Topic::parse(&prefix, &topic.channel(&prefix)), Some(topic));
            }
        }
    }

    #[test]
    fn a_room_may_be_named_like_a_topic() {
        let odd = Topic::Room("all".into());
        assert_eq!(Topic::parse("p", &odd.channel("p")), Some(odd));
    }
}
