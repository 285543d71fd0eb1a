//! SockJS frames.

use crate::close_code::ANOTHER_CONNECTION_STILL_OPEN;
use crate::json::{self, EscapePolicy};

/// The open frame, the first a session sends.
pub const OPEN: &str = "o";

/// The heartbeat frame.
pub const HEARTBEAT: &str = "h";

/// Quotes one message as a JSON string with SockJS's escaping.
pub fn quote(message: &str) -> String {
    json::encode(message, EscapePolicy::SockJs)
}

/// The message frame `a[...]` carrying `messages` in order.
pub fn messages<S: AsRef<str>>(messages: &[S]) -> String {
    let mut frame = String::from("a[");
    for (index, message) in messages.iter().enumerate() {
        if index > 0 {
            frame.push(',');
        }
        frame.push_str(&quote(message.as_ref()));
    }
    frame.push(']');
    frame
}

/// The close frame `c[code,"reason"]`.
pub fn close(code: u16, reason: &str) -> String {
    format!("c[{code},{}]", quote(reason))
}

/// The close frame for a second receiving request while one is open.
pub fn another_connection_still_open() -> String {
    close(
        ANOTHER_CONNECTION_STILL_OPEN,
        "Another connection still open",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_frames_are_json_arrays() {
        assert_eq!(messages(&["a", "b\"c"]), r#"a["a","b\"c"]"#);
        assert_eq!(messages::<&str>(&[]), "a[]");
    }

    #[test]
    fn message_frames_escape_what_sockjs_escapes() {
        assert_eq!(messages(&["\u{2028}x😀"]), r#"a["\u2028x\ud83d\ude00"]"#);
        assert_eq!(messages(&["ünï"]), "a[\"ünï\"]");
    }

    #[test]
    fn close_frames() {
        assert_eq!(close(3000, "Go away!"), r#"c[3000,"Go away!"]"#);
        assert_eq!(
            another_connection_still_open(),
            r#"c[2010,"Another connection still open"]"#
        );
    }
}
