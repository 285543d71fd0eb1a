//! Which web pages may open sessions: the origin policy every transport
//! applies before it opens one.
//!
//! A browser says where the page that makes a request comes from in the
//! `Origin` header (on WebSocket handshakes, cross-origin XHR and
//! EventSource, and every POST). A script or frame load carries no `Origin`
//! but says `Sec-Fetch-Site: cross-site` (or `same-site`) when it comes
//! from another site: such a request is treated as coming from an origin
//! that is not allowed, or JSONP would let any page read a session opened
//! with the visitor's cookies.

use http::header::{self, HeaderMap};

/// Which origins may open sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Allowed {
    /// The page's origin must be the server's own: its host and port match
    /// the request's `Host` (or the host a trusted proxy forwarded).
    SameOrigin,
    /// These origins (`scheme://host[:port]`), exactly, and the server's own.
    List(Vec<String>),
    /// Any origin: for public APIs that authenticate without cookies.
    Any,
}

/// The origin policy of a layer (see
/// [`ChannelConfig::allowed_origins`](crate::ChannelConfig::allowed_origins)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OriginPolicy {
    pub(crate) allowed: Allowed,
    /// Requests that name no origin at all (non-browser clients) may open
    /// sessions.
    pub(crate) allow_missing: bool,
}

impl Default for OriginPolicy {
    fn default() -> Self {
        Self {
            allowed: Allowed::SameOrigin,
            allow_missing: true,
        }
    }
}

/// What a request says of the page that made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claimed<'a> {
    /// `Origin: <this>`.
    Origin(&'a str),
    /// No `Origin`, but a browser says the request comes from another site.
    OtherSite,
    /// Nothing: a non-browser client, or a same-origin GET.
    Nothing,
}

fn claimed(headers: &HeaderMap) -> Claimed<'_> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        return match origin.to_str() {
            Ok(origin) => Claimed::Origin(origin.trim()),
            Err(_) => Claimed::OtherSite,
        };
    }
    match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
        Some(b"cross-site") | Some(b"same-site") => Claimed::OtherSite,
        _ => Claimed::Nothing,
    }
}

/// `scheme://host[:port]` split, the port made explicit.
fn origin_authority(origin: &str) -> Option<(&str, String)> {
    let (scheme, rest) = origin.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "80",
        "https" | "wss" => "443",
        _ => return None,
    };
    if rest.is_empty() || rest.contains('/') {
        return None;
    }
    Some((scheme, with_port(rest, default_port)))
}

/// `host` with its port, `default_port` when it has none (IPv6 literals kept whole).
fn with_port(host: &str, default_port: &str) -> String {
    let host = host.to_ascii_lowercase();
    let has_port = match host.rfind(']') {
        Some(bracket) => host[bracket..].contains(':'),
        None => host.contains(':'),
    };
    if has_port {
        host
    } else {
        format!("{host}:{default_port}")
    }
}

impl OriginPolicy {
    /// Why a request with these headers may not open a session, if it may
    /// not. `host` is the host the client asked for (the `Host` header, or
    /// the one a trusted proxy forwarded).
    pub(crate) fn refusal(&self, headers: &HeaderMap, host: Option<&str>) -> Option<&'static str> {
        let origin = match claimed(headers) {
            Claimed::Nothing if self.allow_missing => return None,
            Claimed::Nothing => return Some("Origin required"),
            _ if self.allowed == Allowed::Any => return None,
            Claimed::OtherSite => return Some("Origin not allowed"),
            Claimed::Origin(origin) => origin,
        };
        if let Allowed::List(list) = &self.allowed {
            if list
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(origin))
            {
                return None;
            }
        }
        if is_same_origin(origin, host) {
            return None;
        }
        Some("Origin not allowed")
    }

    /// True when a reply may tell the page at `origin` that it can read it
    /// (SockJS's CORS headers): the origin is allowed.
    pub(crate) fn allows_origin(&self, origin: &str, host: Option<&str>) -> bool {
        match &self.allowed {
            Allowed::Any => true,
            Allowed::List(list) => {
                list.iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(origin))
                    || is_same_origin(origin, host)
            }
            Allowed::SameOrigin => is_same_origin(origin, host),
        }
    }
}

impl OriginPolicy {
    /// Who may frame the layer's pages: the sources of a
    /// `Content-Security-Policy: frame-ancestors`, `None` when anyone may.
    pub(crate) fn frame_ancestors(&self) -> Option<String> {
        match &self.allowed {
            Allowed::Any => None,
            Allowed::SameOrigin => Some("'self'".into()),
            Allowed::List(list) => Some(
                std::iter::once("'self'")
                    .chain(list.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        }
    }
}

/// The page's origin is the server's own: same host and port (the scheme
/// gives the port when the origin names none).
fn is_same_origin(origin: &str, host: Option<&str>) -> bool {
    let (Some((scheme, authority)), Some(host)) = (origin_authority(origin), host) else {
        return false;
    };
    let default_port = if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss")
    {
        "443"
    } else {
        "80"
    };
    authority == with_port(host.trim(), default_port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_default_allows_the_servers_own_origin_and_clients_without_one() {
        let policy = OriginPolicy::default();
        let own = headers(&[("origin", "http://app.example:8080")]);
        assert_eq!(policy.refusal(&own, Some("app.example:8080")), None);
        let https = headers(&[("origin", "https://app.example")]);
        assert_eq!(policy.refusal(&https, Some("app.example")), None);
        assert_eq!(policy.refusal(&https, Some("app.example:443")), None);
        assert_eq!(policy.refusal(&headers(&[]), Some("app.example")), None);
    }

    #[test]
    fn the_default_refuses_other_origins_and_cross_site_loads() {
        let policy = OriginPolicy::default();
        let evil = headers(&[("origin", "https://evil.example")]);
        assert_eq!(
            policy.refusal(&evil, Some("app.example")),
            Some("Origin not allowed")
        );
        let other_port = headers(&[("origin", "http://app.example:9000")]);
        assert!(policy
            .refusal(&other_port, Some("app.example:8080"))
            .is_some());
        let null = headers(&[("origin", "null")]);
        assert!(policy.refusal(&null, Some("app.example")).is_some());
        let script = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(policy.refusal(&script, Some("app.example")).is_some());
        let same_site = headers(&[("sec-fetch-site", "same-site")]);
        assert!(policy.refusal(&same_site, Some("app.example")).is_some());
        let no_host = headers(&[("origin", "https://app.example")]);
        assert!(policy.refusal(&no_host, None).is_some());
    }

    #[test]
    fn lists_any_and_required_origins() {
        let listed = OriginPolicy {
            allowed: Allowed::List(vec!["https://app.example".into()]),
            allow_missing: true,
        };
        let app = headers(&[("origin", "https://app.example")]);
        assert_eq!(listed.refusal(&app, Some("api.example")), None);
        assert!(listed.allows_origin("https://app.example", Some("api.example")));
        assert!(!listed.allows_origin("https://evil.example", Some("api.example")));
        let any = OriginPolicy {
            allowed: Allowed::Any,
            allow_missing: true,
        };
        let evil = headers(&[("origin", "https://evil.example")]);
        assert_eq!(any.refusal(&evil, Some("api.example")), None);
        let required = OriginPolicy {
            allowed: Allowed::Any,
            allow_missing: false,
        };
        assert_eq!(
            required.refusal(&headers(&[]), None),
            Some("Origin required")
        );
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let policy = OriginPolicy::default();
        let own = headers(&[("origin", "http://[::1]:3000")]);
        assert_eq!(policy.refusal(&own, Some("[::1]:3000")), None);
        let own = headers(&[("origin", "http://[::1]")]);
        assert_eq!(policy.refusal(&own, Some("[::1]")), None);
    }
}
