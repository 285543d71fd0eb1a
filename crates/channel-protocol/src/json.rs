//! JSON encoding that is safe inside any transport frame.
//!
//! BrowserChannel prefixes every back channel chunk with its length, and the
//! JavaScript client counts that length in UTF-16 code units, not bytes. Text
//! that is pure ASCII has the same length in bytes, characters and UTF-16 code
//! units, so every encoder here escapes non-ASCII characters as `\uXXXX`
//! (surrogate pairs above U+FFFF). This also escapes U+2028 and U+2029, which
//! JSON allows raw but older JavaScript parsers reject.

use serde_json::ser::{CharEscape, Formatter, Serializer};
use serde_json::Value;
use std::io::{self, Write};

/// Which characters an [`EscapingFormatter`] writes as `\uXXXX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapePolicy {
    /// Every non-ASCII character.
    Ascii,
    /// Every non-ASCII character, and `<`, `>` and `&`, so the output can
    /// never close a `<script>` element it is embedded in.
    Html,
    /// The characters SockJS escapes: the ones some browsers mangle or
    /// treat as line breaks (U+200C-U+200F, U+2028-U+202F, U+2060-U+206F,
    /// U+FFF0-U+FFFF) and everything outside the Basic Multilingual Plane,
    /// written as a UTF-16 surrogate pair.
    SockJs,
}

impl EscapePolicy {
    fn escapes(self, ch: char) -> bool {
        match self {
            EscapePolicy::Ascii => !ch.is_ascii(),
            EscapePolicy::Html => !ch.is_ascii() || matches!(ch, '<' | '>' | '&'),
            EscapePolicy::SockJs => matches!(ch,
                '\u{200c}'..='\u{200f}'
                | '\u{2028}'..='\u{202f}'
                | '\u{2060}'..='\u{206f}'
                | '\u{fff0}'..='\u{ffff}'
                | '\u{10000}'..),
        }
    }
}

/// A [`Formatter`] that writes compact JSON and escapes the characters its
/// [`EscapePolicy`] names.
#[derive(Debug, Clone, Copy)]
pub struct EscapingFormatter {
    policy: EscapePolicy,
}

impl EscapingFormatter {
    /// A formatter with the given policy.
    pub fn new(policy: EscapePolicy) -> Self {
        Self { policy }
    }
}

fn write_unicode_escape<W: ?Sized + Write>(writer: &mut W, unit: u16) -> io::Result<()> {
    write!(writer, "\\u{unit:04x}")
}

impl Formatter for EscapingFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (index, ch) in fragment.char_indices() {
            if !self.policy.escapes(ch) {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..index])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write_unicode_escape(writer, *unit)?;
            }
            start = index + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        let escaped: &[u8] = match char_escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"\\/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write_unicode_escape(writer, byte.into()),
        };
        writer.write_all(escaped)
    }
}

/// Encodes `value` as compact JSON, escaping what `policy` names.
pub fn encode<T: serde::Serialize + ?Sized>(value: &T, policy: EscapePolicy) -> String {
    let mut out = Vec::with_capacity(64);
    let mut serializer = Serializer::with_formatter(&mut out, EscapingFormatter::new(policy));
    // Serializing a JSON value into memory cannot fail: every map key is a string.
    value
        .serialize(&mut serializer)
        .expect("serializing JSON into memory");
    String::from_utf8(out).expect("JSON text is UTF-8")
}

/// Encodes `value` as compact JSON that contains ASCII characters only.
///
/// ```
/// use serde_json::json;
///
/// let text = axum_channel_protocol::json::to_ascii_string(&json!({"text": "café ☕"}));
/// assert_eq!(text, r#"{"text":"caf\u00e9 \u2615"}"#);
/// ```
pub fn to_ascii_string(value: &Value) -> String {
    encode(value, EscapePolicy::Ascii)
}

/// Encodes `text` as a JSON string literal that is ASCII only and safe to place
/// inside an HTML `<script>` element.
pub fn to_html_script_string(text: &str) -> String {
    encode(text, EscapePolicy::Html)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ascii_text_is_unchanged() {
        assert_eq!(to_ascii_string(&json!(["a", 1, null])), r#"["a",1,null]"#);
    }

    #[test]
    fn non_ascii_is_escaped_and_round_trips() {
        let value = json!({"k": "é\u{2028}😀"});
        let text = to_ascii_string(&value);
        assert!(text.is_ascii());
        assert_eq!(text, r#"{"k":"\u00e9\u2028\ud83d\ude00"}"#);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(to_ascii_string(&json!("\u{1}\n\"\\")), r#""\u0001\n\"\\""#);
    }

    #[test]
    fn sockjs_escapes_its_ranges_and_astral_characters_only() {
        let text = "é\u{200d}\u{2028}\u{2063}\u{fff9}😀\u{1}";
        assert_eq!(
            encode(text, EscapePolicy::SockJs),
            r#""é\u200d\u2028\u2063\ufff9\ud83d\ude00\u0001""#
        );
    }

    #[test]
    fn html_escaping_hides_script_end_tags() {
        let text = to_html_script_string("</script><b>&");
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        assert_eq!(
            serde_json::from_str::<String>(&text).unwrap(),
            "</script><b>&"
        );
    }
}
