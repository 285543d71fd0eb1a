//! Encoding of what the server writes: back channel chunks, connection test
//! replies and error pages.
//!
//! A back channel uses one of two encodings, chosen by the client's `TYPE`:
//!
//! - `xmlhttp`: each chunk is its length in characters, a newline, then the
//!   chunk (`12\n[[0,["x"]]]\n`). Chunks here are ASCII, so length in bytes
//!   equals length in the client's UTF-16 characters.
//! - `html`: an iframe page; each chunk is a `<script>` element that calls
//!   `parent.m(chunk)`, the end calls `parent.d()`, and an error calls
//!   `parent.rpcClose(message)`. Old IE renders nothing until it has about a
//!   kilobyte, so some noise follows the first chunk.

use crate::json;

/// Noise written once after the first html chunk so that old IE starts
/// running scripts instead of buffering the page.
const HTML_JUNK: &str = concat!(
    "2e1ac4325b872323e48c931678e46835449f296146924936f01442c633a2240c",
    "caf4088e07b92a557676bb0776ec407ccb84cbcce1793bdbfd5d9292aab59c5a",
    "984b95cf047795ce63ae7704a5681f188934bfb7b1c6ef48d59ebb4fe6e62dbf",
    "b0ac1b29bd8bdb75f66770cb047e436824d1ccb8603cb951d0de0461b6c830d4",
    "a4fe49b45909652a8547251336f5e8c81624579cc4645fdce7dd03737a104a56",
    "8c18e8c9ef8f2a4877d3881f84bc202b7f5b613987e97779134bf1a7c871964c",
    "74fc737d23bf007ee6d6291c9638bfeee7a8e346f28fd0ed25303000f008c140",
    "1934233473ecd5c780ff7eb31bfa41966715334dedf750505f71dd3c4458e686",
    "81d4ef43542c9bdd09319f9151d97ff9e051043b4b22b4a8dcfdfc4c07f525b8",
    "573d0d933f9ae88aff7a28edde7af8cb78b9a16b37caaf6891161b1f2587ebb0",
    "16265845d96a408a53c287635bcb18546bb5935ccd9b5129a4d566ad1d95df71",
    "4708f01f8e92ee58f833418dadae4e6cdb993e4f94097355d152f35fca64914c",
    "aa1ffe84b5044a7fb4542dfb6e46db26f7eae1908fb1d8305445dc2b20424977",
    "f9dbfa3edb89f30ace358d980cb4886124b8d6118c83ddb567291e58066f020b",
    "b4fc19bba3c5d4bd3f8ad34624b5df1d3ec2bdf46844155d1a47320bad3fcf62",
    "4adb407689b0a2eaa392099b82ddd2468957da98fa1f1f33f89fcc8c50b52169",
    "\n"
);

/// The `Content-Type` of an html (iframe) back channel.
pub const HTML_CONTENT_TYPE: &str = "text/html";

/// The `Content-Type` of every other BrowserChannel reply.
pub const TEXT_CONTENT_TYPE: &str = "text/plain";

/// Writes one back channel response in the encoding the client asked for.
#[derive(Debug, Clone)]
pub struct BackChannelEncoder {
    html: bool,
    junk_sent: bool,
}

impl BackChannelEncoder {
    /// Length-prefixed chunks for `TYPE=xmlhttp`.
    pub fn xmlhttp() -> Self {
        Self {
            html: false,
            junk_sent: false,
        }
    }

    /// `<script>` chunks for `TYPE=html`.
    pub fn html() -> Self {
        Self {
            html: true,
            junk_sent: false,
        }
    }

    /// True for the html (iframe) encoding.
    pub fn is_html(&self) -> bool {
        self.html
    }

    /// The response's `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        if self.html {
            HTML_CONTENT_TYPE
        } else {
            TEXT_CONTENT_TYPE
        }
    }

    /// What opens the response: for html, the page start and, when the client
    /// gave `DOMAIN`, a script that sets `document.domain` to it.
    pub fn prelude(&self, domain: Option<&str>) -> String {
        if !self.html {
            return String::new();
        }
        let mut out = String::from("<html><body>");
        if let Some(domain) = domain {
            out.push_str("<script>try{document.domain=");
            out.push_str(&json::to_html_script_string(domain));
            out.push_str(";}catch(e){}</script>\n");
        }
        out
    }

    /// Encodes one chunk of array data (`[[id,data],...]\n`).
    pub fn chunk(&mut self, data: &str) -> String {
        if self.html {
            self.script_chunk(data)
        } else {
            format!("{}\n{}", data.len(), data)
        }
    }

    /// Encodes connection test data, which xmlhttp writes without a length prefix.
    pub fn raw(&mut self, data: &str) -> String {
        if self.html {
            self.script_chunk(data)
        } else {
            data.to_owned()
        }
    }

    fn script_chunk(&mut self, data: &str) -> String {
        let mut out = format!(
            "<script>try{{parent.m({})}}catch(e){{}}</script>\n",
            json::to_html_script_string(data)
        );
        if !self.junk_sent {
            out.push_str(HTML_JUNK);
            self.junk_sent = true;
        }
        out
    }

    /// What closes the response: for html, the call that tells the client the
    /// request is done.
    pub fn end(&self) -> &'static str {
        if self.html {
            "<script>try{parent.d()}catch(e){}</script>\n"
        } else {
            ""
        }
    }
}

/// The body of the first connection test phase: `[hostPrefix, blockedPrefix]`.
/// Blocked prefixes are not supported, so the second entry is always `null`.
pub fn test_init_body(host_prefix: Option<&str>) -> String {
    let prefix = host_prefix.map_or_else(|| "null".to_owned(), json::to_html_script_string);
    format!("[{prefix},null]")
}

/// The first write of the second connection test phase.
pub const TEST_FIRST_CHUNK: &str = "11111";

/// The write that follows [`TEST_FIRST_CHUNK`] after the configured delay.
pub const TEST_SECOND_CHUNK: &str = "2";

/// The body of an error reply. The client looks for the message inside it
/// (for example `Unknown SID`), so the message must appear verbatim.
pub fn error_body(message: &str) -> String {
    let mut escaped = String::with_capacity(message.len());
    for ch in message.chars() {
        match ch {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            _ => escaped.push(ch),
        }
    }
    format!("<html><body><h1>{escaped}</h1></body></html>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xmlhttp_chunks_are_length_prefixed() {
        let mut encoder = BackChannelEncoder::xmlhttp();
        assert_eq!(encoder.prelude(Some("x")), "");
        assert_eq!(encoder.chunk("[[0,[\"a\"]]]\n"), "12\n[[0,[\"a\"]]]\n");
        assert_eq!(encoder.raw("11111"), "11111");
        assert_eq!(encoder.end(), "");
        assert_eq!(encoder.content_type(), "text/plain");
    }

    #[test]
    fn html_chunks_are_scripts_and_junk_follows_the_first_only() {
        let mut encoder = BackChannelEncoder::html();
        assert_eq!(encoder.prelude(None), "<html><body>");
        let first = encoder.chunk("[[0,[\"</script>\"]]]\n");
        assert!(first
            .starts_with("<script>try{parent.m(\"[[0,[\\\"\\u003c/script\\u003e\\\"]]]\\n\")}"));
        assert!(first.ends_with(HTML_JUNK));
        assert!(first.len() > 1024);
        let second = encoder.chunk("[]");
        assert_eq!(second, "<script>try{parent.m(\"[]\")}catch(e){}</script>\n");
        assert_eq!(
            encoder.end(),
            "<script>try{parent.d()}catch(e){}</script>\n"
        );
        assert_eq!(encoder.content_type(), "text/html");
    }

    #[test]
    fn html_domain_is_escaped_never_raw() {
        let encoder = BackChannelEncoder::html();
        let prelude = encoder.prelude(Some("x\";alert(1)</script>"));
        assert!(prelude.contains(r#"document.domain="x\";alert(1)\u003c/script\u003e";"#));
        assert_eq!(prelude.matches("</script>").count(), 1);
    }

    #[test]
    fn test_init_lists_the_host_prefix() {
        assert_eq!(test_init_body(None), "[null,null]");
        assert_eq!(test_init_body(Some("b")), "[\"b\",null]");
    }

    #[test]
    fn error_pages_contain_the_message() {
        assert_eq!(
            error_body("Unknown SID"),
            "<html><body><h1>Unknown SID</h1></body></html>"
        );
        assert!(error_body("<x>").contains("&lt;x&gt;"));
    }
}
