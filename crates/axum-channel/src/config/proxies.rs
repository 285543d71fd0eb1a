//! The client behind trusted proxies: its address and the host it asked
//! for, from `Forwarded` (RFC 7239) or `X-Forwarded-For` /
//! `X-Forwarded-Host`, believed only when the connection comes from a
//! configured proxy.

use http::header::{self, HeaderMap};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The proxies whose forwarded headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TrustedProxies {
    pub(crate) networks: Vec<IpNet>,
}

/// Who a request comes from, as far as the layer can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Client {
    /// The client's address (port 0 when a proxy forwarded none); `None`
    /// without connect info.
    pub(crate) addr: Option<SocketAddr>,
    /// The host the client asked for.
    pub(crate) host: Option<String>,
}

/// One hop of a forwarding chain, oldest first.
#[derive(Debug, Default)]
struct Hop {
    /// `None` for `unknown` or an obfuscated identifier.
    addr: Option<SocketAddr>,
    host: Option<String>,
}

/// Parses a node of `Forwarded: for=` or an `X-Forwarded-For` entry:
/// `1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`, possibly quoted.
fn node(text: &str) -> Option<SocketAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0))
}

/// The hops of `Forwarded`, or else of `X-Forwarded-For` (with the
/// leftmost `X-Forwarded-Host` for the first hop).
fn hops(headers: &HeaderMap) -> Vec<Hop> {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let forwarded: Vec<Hop> = values(header::FORWARDED.as_str())
        .map(|element| {
            let mut hop = Hop::default();
            for pair in element.split(';') {
                let Some((key, value)) = pair.split_once('=') else {
                    continue;
                };
                match key.trim().to_ascii_lowercase().as_str() {
                    "for" => hop.addr = node(value),
                    "host" => hop.host = Some(value.trim().trim_matches('"').to_owned()),
                    _ => {}
                }
            }
            hop
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    let mut hops: Vec<Hop> = values("x-forwarded-for")
        .map(|entry| Hop {
            addr: node(entry),
            host: None,
        })
        .collect();
    if let Some(first) = hops.first_mut() {
        first.host = values("x-forwarded-host").next().map(str::to_owned);
    }
    hops
}

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// Who sent a request that came from `peer` with these headers: the
    /// peer itself, unless it is a trusted proxy; then the nearest hop of
    /// the forwarding chain that is not one (walking from the proxy back
    /// towards the client), with the host the client asked for.
    pub(crate) fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Client {
        let own_host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let direct = Client {
            addr: peer,
            host: own_host.clone(),
        };
        let Some(peer) = peer.filter(|peer| self.trusts(peer.ip())) else {
            return direct;
        };
        let hops = hops(headers);
        // The host the client asked for: its own hop's, else the one the
        // outermost proxy recorded.
        let forwarded_host = hops.iter().find_map(|hop| hop.host.clone());
        let mut client = Client {
            addr: Some(peer),
            host: forwarded_host.or(own_host),
        };
        for hop in hops.iter().rev() {
            let Some(addr) = hop.addr else {
                // An unknown hop: the nearest known address is the best guess.
                break;
            };
            client.addr = Some(addr);
            if !self.trusts(addr.ip()) {
                if let Some(host) = &hop.host {
                    client.host = Some(host.clone());
                }
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies {
            networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn addr(text: &str) -> Option<SocketAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn forwarded_headers_from_strangers_are_ignored() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let spoofed = headers(&[("x-forwarded-for", "1.2.3.4"), ("host", "app.example")]);
        let client = trusted.client(addr("203.0.113.9:5000"), &spoofed);
        assert_eq!(client.addr, addr("203.0.113.9:5000"));
        assert_eq!(client.host.as_deref(), Some("app.example"));
    }

    #[test]
    fn the_nearest_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client lied about 6.6.6.6; 198.51.100.7 connected to the
        // outer proxy 10.0.0.2, which reached the inner one.
        let chain = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("x-forwarded-for", "10.0.0.2"),
            ("x-forwarded-host", "app.example"),
            ("host", "backend:3000"),
        ]);
        let client = trusted.client(addr("127.0.0.1:40000"), &chain);
        assert_eq!(client.addr, addr("198.51.100.7:0"));
        assert_eq!(client.host.as_deref(), Some("app.example"));
    }

    #[test]
    fn rfc_7239_forwarded_wins_with_ports_and_ipv6() {
        let trusted = proxies(&["127.0.0.1/32"]);
        let forwarded = headers(&[
            (
                "forwarded",
                r#"for="[2001:db8::1]:4711";host=app.example;proto=https"#,
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        let client = trusted.client(addr("127.0.0.1:1"), &forwarded);
        assert_eq!(client.addr, addr("[2001:db8::1]:4711"));
        assert_eq!(client.host.as_deref(), Some("app.example"));
        let mapped = trusted.client(addr("[::ffff:127.0.0.1]:1"), &forwarded);
        assert_eq!(mapped.addr, addr("[2001:db8::1]:4711"));
    }

    #[test]
    fn unknown_hops_and_missing_connect_info() {
        let trusted = proxies(&["127.0.0.1/32"]);
        let unknown = headers(&[("forwarded", "for=unknown")]);
        let client = trusted.client(addr("127.0.0.1:1"), &unknown);
        assert_eq!(client.addr, addr("127.0.0.1:1"));
        assert_eq!(trusted.client(None, &unknown).addr, None);
    }
}
