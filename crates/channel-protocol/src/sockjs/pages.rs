//! The fixed pages of a SockJS endpoint, byte for byte as sockjs-node
//! 0.3.24 serves them: SockJS's conformance suite compares them whole.

use md5::{Digest, Md5};

/// The greeting at the prefix itself.
pub const WELCOME: &str = "Welcome to SockJS!\n";

/// The body of a 404.
pub const NOT_FOUND: &str = "404 Error: Page not found\n";

/// The iframe page, with `{{ sockjs_url }}` where the client script goes.
const IFRAME_TEMPLATE: &str = "<!DOCTYPE html>
<html>
<head>
  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />
  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />
  <script src=\"{{ sockjs_url }}\"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>";

/// The page cross-domain clients load in an iframe; it runs the SockJS
/// client from `sockjs_url`. A quote or angle bracket in the URL, which
/// would end the attribute, is escaped.
///
/// ```
/// let page = axum_channel_protocol::sockjs::pages::iframe("/sockjs.js");
/// assert!(page.contains("  <script src=\"/sockjs.js\"></script>\n"));
/// assert_eq!(page.len(), 425 - 16 + 10);
/// ```
pub fn iframe(sockjs_url: &str) -> String {
    let url = sockjs_url
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    IFRAME_TEMPLATE.replacen("{{ sockjs_url }}", &url, 1)
}

/// The `ETag` of a page: its MD5 in lowercase hex, quoted.
pub fn etag(page: &str) -> String {
    let digest = Md5::digest(page.as_bytes());
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in digest {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('"');
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_page_is_sockjs_nodes() {
        // sockjs-node's page for its default CDN client: 472 bytes, this MD5.
        let page = iframe("https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js");
        assert_eq!(page.len(), 472);
        assert_eq!(etag(&page), "\"08c88a6396a2481f245d665a53d9dc14\"");
        assert!(!page.ends_with('\n'));
    }

    #[test]
    fn urls_cannot_break_out_of_the_attribute() {
        let page = iframe("x\"><script>alert(1)</script>");
        assert_eq!(page.matches("<script").count(), 2);
    }
}
