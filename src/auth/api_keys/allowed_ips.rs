//! The client addresses a key may be used from (`allowed_ips`).
//!
//! A key copied out of a CI system or a server is useless from anywhere else: used from an
//! address outside its networks it is refused exactly like a wrong key.
use std::{net::IpAddr, sync::Arc};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{
    error::{ApiError, ApiResult},
    http::parse_network,
};

pub const FIELD: &str = "allowed_ips";
/// Enough for any real deployment's egress ranges; a longer list is a mistake, and every
/// request with the key walks it.
pub const MAX_NETWORKS: usize = 32;

/// A non-empty list of networks, each truncated to its prefix, without repeats. Where a key
/// has no restriction it holds no `AllowedIps` at all (`None`), so an empty list never means
/// "anywhere" by accident. Stored as a JSON array of CIDR strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct AllowedIps(Arc<[IpNet]>);

impl AllowedIps {
    /// The networks a client asked for: CIDRs or bare addresses. An empty list is the same as
    /// none given (`None`); an invalid entry is a 422 naming it (`allowed_ips[2]`).
    pub fn parse(entries: &[String]) -> ApiResult<Option<Self>> {
        if entries.len() > MAX_NETWORKS {
            return Err(ApiError::validation(
                FIELD,
                format!("at most {MAX_NETWORKS} networks"),
            ));
        }
        let mut networks = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let net = parse_network(entry).ok_or_else(|| {
                ApiError::validation(
                    format!("{FIELD}[{i}]"),
                    "must be a CIDR (203.0.113.0/24, 2001:db8::/48) or an IP address",
                )
            })?;
            let net = net.trunc();
            if !networks.contains(&net) {
                networks.push(net);
            }
        }
        Ok((!networks.is_empty()).then(|| Self(networks.into())))
    }

    /// Whether a client at `ip` may use the key. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn admits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether every network here lies inside one of `outer`'s: nothing wider is granted.
    pub fn within(&self, outer: &AllowedIps) -> bool {
        self.0
            .iter()
            .all(|net| outer.0.iter().any(|o| o.contains(net)))
    }

    /// The networks as CIDR strings, in the order given.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(IpNet::to_string).collect()
    }
}

impl TryFrom<Vec<String>> for AllowedIps {
    type Error = String;

    /// The stored form: written by [`AllowedIps::parse`], so anything else is refused.
    fn try_from(stored: Vec<String>) -> Result<Self, Self::Error> {
        let networks = stored
            .iter()
            .map(|s| s.parse::<IpNet>().map_err(|e| format!("{s:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if networks.is_empty() {
            return Err("an empty list is stored as no restriction (NULL)".into());
        }
        Ok(Self(networks.into()))
    }
}

impl From<AllowedIps> for Vec<String> {
    fn from(allowed: AllowedIps) -> Self {
        allowed.to_strings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> AllowedIps {
        let entries: Vec<String> = entries.iter().map(|&e| e.to_owned()).collect();
        AllowedIps::parse(&entries).unwrap().expect("a restriction")
    }

    fn field_of(entries: &[&str]) -> String {
        let entries: Vec<String> = entries.iter().map(|&e| e.to_owned()).collect();
        match AllowedIps::parse(&entries) {
            Err(ApiError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn networks_are_normalised_and_repeats_dropped() {
        let ips = allowed(&["10.1.2.3/8", "192.0.2.7", "10.0.0.0/8", "2001:db8::1/32"]);
        assert_eq!(
            ips.to_strings(),
            ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
        );
        assert_eq!(AllowedIps::parse(&[]).unwrap(), None, "empty: unrestricted");
    }

    #[test]
    fn invalid_entries_and_long_lists_name_the_field() {
        assert_eq!(field_of(&["10.0.0.0/8", "10.0.0.0/33"]), "allowed_ips[1]");
        assert_eq!(field_of(&["example.com"]), "allowed_ips[0]");
        let many: Vec<String> = (0..=MAX_NETWORKS).map(|i| format!("10.0.0.{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(field_of(&many), "allowed_ips");
    }

    #[test]
    fn clients_are_admitted_in_either_ip_version_form() {
        let ips = allowed(&["192.0.2.0/24", "2001:db8::/32"]);
        for inside in ["192.0.2.1", "::ffff:192.0.2.200", "2001:db8:1::7"] {
            assert!(ips.admits(inside.parse().unwrap()), "{inside}");
        }
        for outside in ["192.0.3.1", "::ffff:198.51.100.1", "2001:db9::1", "::1"] {
            assert!(!ips.admits(outside.parse().unwrap()), "{outside}");
        }
    }

    #[test]
    fn containment_is_per_network_and_per_family() {
        let outer = allowed(&["10.0.0.0/8", "2001:db8::/32"]);
        assert!(allowed(&["10.1.0.0/16", "10.2.3.4", "2001:db8:5::/48"]).within(&outer));
        assert!(outer.within(&outer));
        assert!(!allowed(&["10.1.0.0/16", "11.0.0.0/24"]).within(&outer));
        assert!(!allowed(&["0.0.0.0/0"]).within(&outer));
        assert!(!allowed(&["::/0"]).within(&allowed(&["0.0.0.0/0"])));
    }

    #[test]
    fn the_stored_form_round_trips_and_refuses_garbage() {
        let ips = allowed(&["192.0.2.0/24", "2001:db8::/32"]);
        let stored = serde_json::to_value(&ips).unwrap();
        assert_eq!(stored, serde_json::json!(["192.0.2.0/24", "2001:db8::/32"]));
        assert_eq!(serde_json::from_value::<AllowedIps>(stored).unwrap(), ips);
        for bad in [serde_json::json!([]), serde_json::json!(["nope"])] {
            assert!(serde_json::from_value::<AllowedIps>(bad).is_err());
        }
    }
}
