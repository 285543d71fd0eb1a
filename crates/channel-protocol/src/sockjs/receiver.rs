//! How each transport wraps frames in its response.

use crate::json::{self, EscapePolicy};

/// The encoding of one receiving request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverEncoding {
    /// `xhr` and `xhr_streaming`: one frame a line.
    Xhr,
    /// `eventsource`: one frame an event.
    EventSource,
    /// `htmlfile`: one frame a `<script>` element calling `p(frame)`.
    HtmlFile,
    /// `jsonp`: one frame a call of the client's callback.
    Jsonp {
        /// The callback's name, already validated.
        callback: String,
    },
}

/// Checks a JSONP or htmlfile callback name: letters, digits, `-`, `_`, `.`
/// (and, for JSONP, at most 32 characters).
pub fn valid_callback(callback: &str, max_len: Option<usize>) -> bool {
    !callback.is_empty()
        && max_len.is_none_or(|max| callback.len() <= max)
        && callback
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The `xhr_streaming` prelude: 2 KiB of `h` and a newline, without which
/// old IE shows nothing of a streamed response.
pub fn xhr_streaming_prelude() -> String {
    let mut prelude = "h".repeat(2048);
    prelude.push('\n');
    prelude
}

/// The `eventsource` prelude: one blank line (old Opera wants it).
pub const EVENTSOURCE_PRELUDE: &str = "\r\n";

/// The `htmlfile` page start, with `{{ callback }}` where the callback goes.
const HTMLFILE_TEMPLATE: &str = "<!doctype html>
<html><head>
  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />
  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.{{ callback }};
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>";

/// The `htmlfile` page start for `callback`, as sockjs-node writes it: the
/// template padded with spaces to 1,024 bytes (counted with the
/// placeholder's 14 characters) so browsers start running its scripts,
/// then a blank line.
pub fn htmlfile_prelude(callback: &str) -> String {
    let padding = (1024 + 14 - 1) - HTMLFILE_TEMPLATE.len();
    let mut page = HTMLFILE_TEMPLATE.replace("{{ callback }}", callback);
    page.push_str(&" ".repeat(padding));
    page.push_str("\r\n\r\n");
    page
}

/// Escapes `%`, CR, LF and NUL as `%XX`, which would otherwise break an event's
/// `data:` line; the client undoes it.
fn escape_event_data(frame: &str) -> String {
    let mut out = String::with_capacity(frame.len());
    for ch in frame.chars() {
        match ch {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            '\0' => out.push_str("%00"),
            _ => out.push(ch),
        }
    }
    out
}

impl ReceiverEncoding {
    /// Wraps one frame.
    pub fn wrap(&self, frame: &str) -> String {
        match self {
            ReceiverEncoding::Xhr => format!("{frame}\n"),
            ReceiverEncoding::EventSource => format!("data: {}\r\n\r\n", escape_event_data(frame)),
            ReceiverEncoding::HtmlFile => format!(
                "<script>\np({});\n</script>\r\n",
                json::encode(frame, EscapePolicy::Html)
            ),
            // The comment before the call defeats the Flash JSONP exploit (sockjs-node #163).
            ReceiverEncoding::Jsonp { callback } => format!(
                "/**/{callback}({});\r\n",
                json::encode(frame, EscapePolicy::Html)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_wrapped_per_transport() {
        assert_eq!(ReceiverEncoding::Xhr.wrap("o"), "o\n");
        assert_eq!(
            ReceiverEncoding::EventSource.wrap("a[\"50%\\r\\n\"]\n"),
            "data: a[\"50%25\\r\\n\"]%0A\r\n\r\n"
        );
        assert_eq!(
            ReceiverEncoding::HtmlFile.wrap("a[\"</script>\"]"),
            "<script>\np(\"a[\\\"\\u003c/script\\u003e\\\"]\");\n</script>\r\n"
        );
        assert_eq!(
            ReceiverEncoding::Jsonp {
                callback: "cb".into()
            }
            .wrap("o"),
            "/**/cb(\"o\");\r\n"
        );
    }

    #[test]
    fn callbacks_are_validated() {
        assert!(valid_callback("a.b_c-1", Some(32)));
        assert!(!valid_callback("", None));
        assert!(!valid_callback("alert(1)", None));
        assert!(!valid_callback(&"x".repeat(33), Some(32)));
        assert!(valid_callback(&"x".repeat(33), None));
    }

    #[test]
    fn preludes() {
        assert_eq!(xhr_streaming_prelude().len(), 2049);
        // sockjs-node's page: 1,027 bytes plus the callback's length.
        let page = htmlfile_prelude("callback");
        assert_eq!(page.len(), 1035);
        assert!(page.contains("\n    var c = parent.callback;\n"));
        assert!(page.ends_with(&format!("</script>{}\r\n\r\n", " ".repeat(653))));
        assert_eq!(htmlfile_prelude("cb").len(), 1029);
    }
}
