//! The chat's messages, as `../shared/README.md` fixes them: JSON objects
//! with a `type`, the same on every transport.

use serde::{Deserialize, Serialize};

/// What a client asks.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Request {
    /// `since`: the last position the client saw in the room; anything but
    /// a position this server gave answers `recovered: false`.
    Join {
        room: String,
        #[serde(default)]
        since: Option<serde_json::Value>,
    },
    Leave {
        room: String,
    },
    Say {
        room: String,
        text: String,
    },
    Count {
        room: String,
    },
}

/// What the server answers or broadcasts.
#[derive(Debug, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Reply<'a> {
    Joined {
        room: &'a str,
        members: usize,
        /// Present when the join named a position: whether every message
        /// after it follows.
        #[serde(skip_serializing_if = "Option::is_none")]
        recovered: Option<bool>,
    },
    Left {
        room: &'a str,
    },
    Said {
        room: &'a str,
        text: &'a str,
        from: &'a str,
    },
    Count {
        room: &'a str,
        members: usize,
    },
    Error {
        error: String,
    },
}

/// Room names are 1 to 64 characters.
pub fn check_room(room: &str) -> Result<&str, String> {
    match room.chars().count() {
        1..=64 => Ok(room),
        0 => Err("a room name cannot be empty".into()),
        _ => Err("a room name has at most 64 characters".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_have_the_shared_shapes() {
        let said = Reply::Said {
            room: "r",
            text: "t",
            from: "sid",
        };
        assert_eq!(
            serde_json::to_value(&said).unwrap(),
            json!({"type": "said", "room": "r", "text": "t", "from": "sid"})
        );
        let request: Request =
            serde_json::from_value(json!({"type": "join", "room": "r"})).unwrap();
        assert!(matches!(request, Request::Join { room, since: None } if room == "r"));
        let joined = Reply::Joined {
            room: "r",
            members: 2,
            recovered: Some(false),
        };
        assert_eq!(
            serde_json::to_value(&joined).unwrap(),
            json!({"type": "joined", "room": "r", "members": 2, "recovered": false})
        );
        assert!(serde_json::from_value::<Request>(json!({"type": "dance"})).is_err());
        assert!(check_room(&"x".repeat(64)).is_ok());
        assert!(check_room(&"é".repeat(65)).is_err());
        assert!(check_room("").is_err());
    }
}
