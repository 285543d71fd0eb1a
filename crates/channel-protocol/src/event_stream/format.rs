//! The `text/event-stream` wire format: events, comments and `retry`, with
//! every line end the HTML standard knows treated alike.

/// Splits text at every line end the HTML standard knows: `\r\n`, `\n`, `\r`.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(end) => {
                let skip = if current[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[end + skip..]);
                Some(&current[..end])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Encodes one event. Multi-line data becomes one `data:` line per line, so
/// the client joins them back with `\n`. Line ends inside `event` and `id`
/// would start new fields, so they are dropped.
///
/// ```
/// use axum_channel_protocol::event_stream::encode_event;
///
/// assert_eq!(encode_event("a\rb", Some("t"), Some("7")), "event: t\nid: 7\ndata: a\ndata: b\n\n");
/// ```
pub fn encode_event(data: &str, event: Option<&str>, id: Option<&str>) -> String {
    let mut out = String::with_capacity(data.len() + 16);
    if let Some(event) = event {
        push_field(&mut out, "event", event);
    }
    if let Some(id) = id {
        push_field(&mut out, "id", id);
    }
    for line in lines(data) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

fn push_field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.extend(lines(value));
    out.push('\n');
}

/// A comment line, which clients ignore: used as a keep-alive ping.
pub fn encode_comment(text: &str) -> String {
    let mut out = String::from(":");
    out.extend(lines(text));
    out.push_str("\n\n");
    out
}

/// Tells the client how many milliseconds to wait before reconnecting.
pub fn encode_retry(milliseconds: u64) -> String {
    format!("retry: {milliseconds}\n\n")
}

/// A comment of 2 KiB sent first: some EventSource polyfills (old IE's XDR)
/// show nothing until that much has arrived.
pub fn padding() -> String {
    format!(":{}\n", " ".repeat(2048))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_fields() {
        assert_eq!(encode_event("hi", None, None), "data: hi\n\n");
        assert_eq!(
            encode_event("tick 3", Some("tick"), Some("3")),
            "event: tick\nid: 3\ndata: tick 3\n\n"
        );
    }

    #[test]
    fn multi_line_data_is_split() {
        assert_eq!(
            encode_event("a\r\nb\n\nc", None, None),
            "data: a\ndata: b\ndata: \ndata: c\n\n"
        );
    }

    #[test]
    fn a_lone_carriage_return_is_a_line_end_too() {
        assert_eq!(
            encode_event("x\revent: evil\r\rid: 9", None, None),
            "data: x\ndata: event: evil\ndata: \ndata: id: 9\n\n"
        );
        assert_eq!(encode_event("end\r", None, None), "data: end\ndata: \n\n");
        assert_eq!(encode_event("", None, None), "data: \n\n");
        assert_eq!(
            encode_event("d", Some("a\rretry: 1"), Some("1\r2")),
            "event: aretry: 1\nid: 12\ndata: d\n\n"
        );
        assert_eq!(encode_comment("p\ri\r\nng"), ":ping\n\n");
    }

    #[test]
    fn newlines_cannot_inject_fields() {
        assert_eq!(
            encode_event("x", Some("e\ndata: evil"), Some("1\r\n")),
            "event: edata: evil\nid: 1\ndata: x\n\n"
        );
        assert_eq!(encode_comment("p\ni"), ":pi\n\n");
    }

    #[test]
    fn retry_and_padding() {
        assert_eq!(encode_retry(1500), "retry: 1500\n\n");
        assert_eq!(padding().len(), 2050);
    }
}
