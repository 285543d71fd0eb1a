//! The query parameters a BrowserChannel client puts on every request.

/// The only protocol version this implementation speaks (`VER=8`).
pub const PROTOCOL_VERSION: u32 = 8;

/// The `RID` parameter: a forward channel request number, or `rpc` on back channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestId {
    /// A forward channel request number; numbers grow by one per request.
    Number(u64),
    /// `RID=rpc`, which marks a back channel request.
    Rpc,
    /// Anything else the client sent.
    Invalid(String),
}

/// The `TYPE` parameter of a `bind` or `test` GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestType {
    /// `TYPE=xmlhttp`: length-prefixed chunks read through XMLHttpRequest.
    XmlHttp,
    /// `TYPE=html`: `<script>` calls streamed into a hidden iframe (old IE).
    Html,
    /// `TYPE=terminate`: the client closes its session.
    Terminate,
    /// Any other value.
    Other(String),
}

/// The parameters of one BrowserChannel request, as the client sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `VER`: the protocol version; this server speaks `8` only.
    pub version: Option<String>,
    /// `MODE=init` marks the first phase of the connection test.
    pub mode: Option<String>,
    /// `SID`: the session the request belongs to.
    pub session_id: Option<String>,
    /// `RID`: forward channel request number, or `rpc` on back channels.
    pub request_id: Option<RequestId>,
    /// `AID`: the last array id the client has received.
    pub acknowledged_array_id: Option<i64>,
    /// `TYPE`: back channel encoding, or `terminate`.
    pub request_type: Option<RequestType>,
    /// `CI`: `0` lets the back channel stream several chunks, `1` closes it
    /// after each one (a buffering proxy was detected).
    pub chunked_mode: Option<String>,
    /// `OSID`: the session this client held before reconnecting.
    pub old_session_id: Option<String>,
    /// `OAID`: the last array id the client received on its old session.
    pub old_acknowledged_array_id: Option<i64>,
    /// `CVER`: the application version the client reports.
    pub app_version: Option<String>,
    /// `DOMAIN`: the `document.domain` an html back channel must set.
    pub domain: Option<String>,
}

impl Query {
    /// Parses a raw, still percent-encoded query string; unknown keys are ignored.
    pub fn parse(raw: &str) -> Self {
        let mut query = Query::default();
        for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
            let value = value.into_owned();
            match key.as_ref() {
                "VER" => query.version = Some(value),
                "MODE" => query.mode = Some(value),
                "SID" => query.session_id = Some(value),
                "RID" => query.request_id = Some(parse_request_id(value)),
                "AID" => query.acknowledged_array_id = value.parse().ok(),
                "TYPE" => query.request_type = Some(parse_request_type(value)),
                "CI" => query.chunked_mode = Some(value),
                "OSID" => query.old_session_id = Some(value),
                "OAID" => query.old_acknowledged_array_id = value.parse().ok(),
                "CVER" => query.app_version = Some(value),
                "DOMAIN" => query.domain = Some(value),
                _ => {}
            }
        }
        query
    }

    /// True when the request speaks protocol version 8 (`VER=8`).
    pub fn is_version_8(&self) -> bool {
        self.version.as_deref() == Some("8")
    }

    /// True for the first connection test phase (`MODE=init`).
    pub fn is_test_init(&self) -> bool {
        self.mode.as_deref() == Some("init")
    }

    /// True when the back channel may stay open across chunks (`CI=0`).
    pub fn is_chunked(&self) -> bool {
        self.chunked_mode.as_deref() == Some("0")
    }

    /// The forward channel request number, if `RID` is a number.
    pub fn request_number(&self) -> Option<u64> {
        match self.request_id {
            Some(RequestId::Number(number)) => Some(number),
            _ => None,
        }
    }

    /// The `DOMAIN` parameter when it is present and not empty.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref().filter(|domain| !domain.is_empty())
    }
}

fn parse_request_id(value: String) -> RequestId {
    if value == "rpc" {
        RequestId::Rpc
    } else if let Ok(number) = value.parse() {
        RequestId::Number(number)
    } else {
        RequestId::Invalid(value)
    }
}

fn parse_request_type(value: String) -> RequestType {
    match value.as_str() {
        "xmlhttp" => RequestType::XmlHttp,
        "html" => RequestType::Html,
        "terminate" => RequestType::Terminate,
        _ => RequestType::Other(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_back_channel_request() {
        let query = Query::parse("VER=8&RID=rpc&SID=abc&CI=0&AID=12&TYPE=xmlhttp&zx=q1&t=1");
        assert!(query.is_version_8());
        assert_eq!(query.session_id.as_deref(), Some("abc"));
        assert_eq!(query.request_id, Some(RequestId::Rpc));
        assert_eq!(query.acknowledged_array_id, Some(12));
        assert_eq!(query.request_type, Some(RequestType::XmlHttp));
        assert!(query.is_chunked());
    }

    #[test]
    fn parses_a_forward_channel_request() {
        let query = Query::parse("VER=8&RID=5032&CVER=3&OSID=old&OAID=-1&t=1");
        assert_eq!(query.request_number(), Some(5032));
        assert_eq!(query.app_version.as_deref(), Some("3"));
        assert_eq!(query.old_session_id.as_deref(), Some("old"));
        assert_eq!(query.old_acknowledged_array_id, Some(-1));
        assert!(!query.is_chunked());
    }

    #[test]
    fn odd_values_are_kept_but_not_trusted() {
        let query = Query::parse("VER=7&RID=x1&TYPE=bogus&AID=NaN&DOMAIN=");
        assert!(!query.is_version_8());
        assert_eq!(query.request_id, Some(RequestId::Invalid("x1".into())));
        assert_eq!(query.request_number(), None);
        assert_eq!(query.request_type, Some(RequestType::Other("bogus".into())));
        assert_eq!(query.acknowledged_array_id, None);
        assert_eq!(query.domain(), None);
    }

    #[test]
    fn percent_encoding_is_decoded() {
        let query = Query::parse("MODE=init&DOMAIN=a%22b.example&VER=8");
        assert!(query.is_test_init());
        assert_eq!(query.domain(), Some("a\"b.example"));
    }
}
