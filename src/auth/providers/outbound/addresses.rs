//! Which IP addresses a provider may live at. A provider's host is named by configuration or
//! by another server's discovery document; unless the operator says the provider is on a
//! private network, its addresses must be public, so a hostile or hijacked name cannot point
//! our requests (with the client secret) at the metadata service or an internal admin port.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not public, or `None` when it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if a == 0 {
        Some("unspecified (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private (RFC 1918)")
    } else if ip.is_link_local() {
        // 169.254.169.254 is the cloud metadata service.
        Some("link-local")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("shared carrier-grade NAT (100.64.0.0/10)")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("IETF protocol assignments (192.0.0.0/24)")
    } else if a == 198 && (b & 0xfe) == 18 {
        Some("benchmarking (198.18.0.0/15)")
    } else if ip.is_documentation() {
        Some("documentation")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast or reserved")
    } else {
        None
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if let Some(v4) = embedded_v4(ip) {
        // ::ffff:10.0.0.1 reaches 10.0.0.1: judge the address it stands for.
        non_public_v4(v4)
    } else if ip.segments()[..3] == [0x64, 0xff9b, 1] {
        // RFC 8215's local-use NAT64 prefix translates to whatever the operator's NAT64
        // reaches, private networks included.
        Some("local-use NAT64 (64:ff9b:1::/48)")
    } else if ip.segments()[..2] == [0x2001, 0] {
        // Teredo hides the IPv4 address it reaches.
        Some("Teredo (2001::/32)")
    } else if (first & 0xfe00) == 0xfc00 {
        Some("unique-local (fc00::/7)")
    } else if (first & 0xffc0) == 0xfe80 || (first & 0xffc0) == 0xfec0 {
        Some("link-local or site-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else {
        None
    }
}

/// The IPv4 address an IPv6 one reaches: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-translated
/// (`::ffff:0:a.b.c.d`), the deprecated IPv4-compatible form (`::a.b.c.d`), the NAT64
/// well-known prefix (`64:ff9b::/96`) and 6to4 (`2002:aabb:ccdd::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, ..] | [0, 0, 0, 0, 0, 0, ..] => Some(v4(s[6], s[7])),
        [0, 0, 0, 0, 0xffff, 0, ..] => Some(v4(s[6], s[7])),
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => Some(v4(s[6], s[7])),
        [0x2002, ..] => Some(v4(s[1], s[2])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(s: &str) -> Option<&'static str> {
        non_public(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "142.250.74.46",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.255.255",
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "2002:0808:0808::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(verdict(ip), None, "{ip} is public");
        }
    }

    #[test]
    fn loopback_private_link_local_and_unspecified_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(verdict(ip).is_some(), "{ip} must be refused");
        }
    }

    #[test]
    fn ipv6_forms_of_private_ipv4_addresses_are_refused() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::ffff:100.64.0.1",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::ffff:0:10.0.0.1",
            "2002:0a00:0001::1",
            "2002:7f00:0001::1",
            "64:ff9b:1::a00:1",
            "2001:0:4136:e378::1",
            "192.0.0.8",
            "198.18.0.1",
            "192.0.2.1",
        ] {
            assert!(verdict(ip).is_some(), "{ip} must be refused");
        }
    }

    #[test]
    fn the_reason_names_the_kind_of_address() {
        assert_eq!(verdict("169.254.169.254"), Some("link-local"));
        assert_eq!(verdict("::ffff:192.168.0.1"), Some("private (RFC 1918)"));
        assert_eq!(verdict("fd00::1"), Some("unique-local (fc00::/7)"));
    }
}
