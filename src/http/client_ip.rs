//! The client's address: the peer, or, when the peer is a trusted proxy, the right-most
//! address in its `Forwarded` (RFC 7239) or `X-Forwarded-For` header that is not itself a
//! trusted proxy. Everything else in those headers is whatever the client chose to send, so
//! it is believed only as far as the chain of trusted proxies vouches for it.
use std::{net::IpAddr, sync::Arc};

use ipnet::{IpNet, Ipv4Net};
use poem::{Endpoint, Middleware, Request, Result, http::HeaderMap};

pub use crate::config::ForwardedHeader;

/// The address of the client that sent this request: one value per request, for logs, rate
/// limits and the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The client of `req`: set by [`ClientAddress`] on every request, else (a request built
    /// outside the middleware stack) the peer.
    pub fn of(req: &poem::Request) -> Option<IpAddr> {
        req.extensions()
            .get::<ClientIp>()
            .map(|c| c.0)
            .or_else(|| req.remote_addr().as_socket_addr().map(|a| a.ip()))
    }

    /// On this machine: loopback, in either IP version.
    pub fn is_loopback(&self) -> bool {
        self.0.to_canonical().is_loopback()
    }
}

/// A network as an operator or client writes it: a CIDR (`203.0.113.0/24`, `2001:db8::/32`)
/// or a bare address, a network of one. An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`)
/// is read as the IPv4 network it maps: client addresses are compared in canonical form, so
/// as written it could never match.
pub fn parse_network(entry: &str) -> Option<IpNet> {
    let entry = entry.trim();
    let net = entry
        .parse::<IpNet>()
        .ok()
        .or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))?;
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && let Some(len) = v6.prefix_len().checked_sub(96)
        && let Ok(mapped) = Ipv4Net::new(v4, len)
    {
        return Some(IpNet::V4(mapped));
    }
    Some(net)
}

/// The IPv6 network of `prefix` bits holding `v6`: one host usually holds a whole /64, a site
/// a /48, so limits that counted single addresses could be rotated past.
pub fn ipv6_network(v6: std::net::Ipv6Addr, prefix: u8) -> ipnet::Ipv6Net {
    ipnet::Ipv6Net::new(v6, prefix).map_or_else(|_| ipnet::Ipv6Net::from(v6), |net| net.trunc())
}

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>, header: ForwardedHeader) -> Self {
        Self { networks, header }
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that arrived from `peer` with `headers`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> ClientIp {
        if !self.is_trusted(peer) {
            return ClientIp(peer);
        }
        // Only the header the proxies write: the other arrives from the client as it wrote it.
        let chain = match self.header {
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
            ForwardedHeader::Forwarded => forwarded_for(headers),
        };
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                // A hop a trusted proxy vouches for: the client, unless it is a proxy too.
                Some(ip) if self.is_trusted(*ip) => client = *ip,
                Some(ip) => return ClientIp(*ip),
                // Unknown or obfuscated: nothing further left can be believed.
                None => break,
            }
        }
        ClientIp(client)
    }
}

/// The `for=` addresses of every `Forwarded` element, in order.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    values
        .iter()
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_node(value.trim().trim_matches('"')))
            })
        })
        .collect()
}

fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| parse_node(hop.trim()))
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`. Anything else (`unknown`, `_hidden`) is `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

/// Middleware: puts the [`ClientIp`] in the request's extensions, first thing.
pub struct ClientAddress {
    trusted: Arc<TrustedProxies>,
}

impl ClientAddress {
    pub fn new(trusted: TrustedProxies) -> Self {
        Self {
            trusted: Arc::new(trusted),
        }
    }
}

impl<E: Endpoint> Middleware<E> for ClientAddress {
    type Output = ClientAddressEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        ClientAddressEndpoint {
            inner: ep,
            trusted: self.trusted.clone(),
        }
    }
}

pub struct ClientAddressEndpoint<E> {
    inner: E,
    trusted: Arc<TrustedProxies>,
}

impl<E: Endpoint> Endpoint for ClientAddressEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        // A peer that is not a socket (a test harness) counts as unspecified: never trusted.
        let peer = req
            .remote_addr()
            .as_socket_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let client = self.trusted.client_ip(peer, req.headers());
        req.extensions_mut().insert(client);
        self.inner.call(req).await
    }
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(nets: &[&str]) -> TrustedProxies {
        let nets = nets.iter().map(|n| n.parse().unwrap()).collect();
        TrustedProxies::new(nets, ForwardedHeader::XForwardedFor)
    }

    fn rfc7239_proxies(nets: &[&str]) -> TrustedProxies {
        let nets = nets.iter().map(|n| n.parse().unwrap()).collect();
        TrustedProxies::new(nets, ForwardedHeader::Forwarded)
    }

    #[test]
    fn networks_parse_from_cidrs_and_bare_addresses() {
        let net = |s: &str| parse_network(s).map(|n| n.to_string());
        assert_eq!(net(" 10.0.0.0/8 ").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(net("192.0.2.7").as_deref(), Some("192.0.2.7/32"));
        assert_eq!(net("2001:db8::1").as_deref(), Some("2001:db8::1/128"));
        assert_eq!(net("::ffff:192.0.2.0/120").as_deref(), Some("192.0.2.0/24"));
        assert_eq!(net("::ffff:0:0/80").as_deref(), Some("::ffff:0.0.0.0/80"));
        for bad in ["", "10.0.0.0/33", "10.0.0", "example.com", "10.0.0.0/8/8"] {
            assert_eq!(net(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let none = proxies(&[]);
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        assert_eq!(none.client_ip(ip("203.0.113.5"), &h).0, ip("203.0.113.5"));
        let lb = proxies(&["10.0.0.0/8"]);
        assert_eq!(lb.client_ip(ip("203.0.113.5"), &h).0, ip("203.0.113.5"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let lb = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        // The client prepended a forged address; the proxies appended the real one.
        let h = headers(&[("x-forwarded-for", "127.0.0.1, 198.51.100.7, 10.0.0.9")]);
        assert_eq!(lb.client_ip(peer, &h).0, ip("198.51.100.7"));
        // Split over several header lines, in order.
        let h = headers(&[
            ("x-forwarded-for", "127.0.0.1"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(lb.client_ip(peer, &h).0, ip("198.51.100.7"));
        // No header: the proxy itself.
        assert_eq!(lb.client_ip(peer, &headers(&[])).0, peer);
        // Only proxies: the left-most of them.
        let h = headers(&[("x-forwarded-for", "10.1.1.1, 10.0.0.9")]);
        assert_eq!(lb.client_ip(peer, &h).0, ip("10.1.1.1"));
        // An unknown hop: nothing left of it is believed.
        let h = headers(&[("x-forwarded-for", "198.51.100.7, unknown, 10.0.0.9")]);
        assert_eq!(lb.client_ip(peer, &h).0, ip("10.0.0.9"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let peer = ip("10.0.0.2");
        // The client's own `Forwarded`, passed through by an X-Forwarded-For proxy.
        let h = headers(&[
            ("forwarded", "for=127.0.0.1"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        let xff = proxies(&["10.0.0.0/8"]);
        assert_eq!(xff.client_ip(peer, &h).0, ip("198.51.100.7"));
        let rfc = rfc7239_proxies(&["10.0.0.0/8"]);
        assert_eq!(rfc.client_ip(peer, &h).0, ip("127.0.0.1"));
    }

    #[test]
    fn forwarded_elements_parse_in_their_forms() {
        let lb = rfc7239_proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        let h = headers(&[
            (
                "forwarded",
                "for=192.0.2.60;proto=https;by=10.0.0.2, for=\"[2001:db8:cafe::17]:4711\"",
            ),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(lb.client_ip(peer, &h).0, ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=192.0.2.60:8080")]);
        assert_eq!(lb.client_ip(peer, &h).0, ip("192.0.2.60"));
        let h = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(lb.client_ip(peer, &h).0, peer);
        // An IPv4-mapped peer is the same proxy.
        let mapped = ip("::ffff:10.0.0.2");
        let h = headers(&[("forwarded", "for=198.51.100.7")]);
        assert_eq!(lb.client_ip(mapped, &h).0, ip("198.51.100.7"));
    }
}
