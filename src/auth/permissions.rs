//! What an API key may do, on top of what its owner's role allows.
//!
//! Kept as an enum with a string form so finer scopes (`posts:write`, say) are added as
//! variants without changing storage: the database holds a JSON array of these strings.
use std::{fmt, str::FromStr};

use poem::http::Method;
use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    poem_openapi::Enum,
)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum Permission {
    /// Safe methods only (GET, HEAD, OPTIONS).
    Read,
    /// Unsafe methods (POST, PUT, PATCH, DELETE).
    Write,
}

impl Permission {
    /// Every permission, in the order sets list them.
    pub const ALL: [Permission; 2] = [Permission::Read, Permission::Write];

    /// Its bit in a [`Permissions`] set (a new variant must be given one to compile).
    const fn bit(self) -> u16 {
        match self {
            Permission::Read => 1,
            Permission::Write => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
        }
    }

    /// The permission an HTTP method needs.
    pub fn for_method(method: &Method) -> Self {
        if method.is_safe() {
            Permission::Read
        } else {
            Permission::Write
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Permission::Read),
            "write" => Ok(Permission::Write),
            other => Err(format!(
                "unknown permission {other:?}; expected read or write"
            )),
        }
    }
}

/// A non-empty set of permissions: one bit per [`Permission`], so a principal carrying it is
/// copied on every request without an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Permission>", into = "Vec<Permission>")]
pub struct Permissions(u16);

impl Permissions {
    pub fn all() -> Self {
        Self(Permission::ALL.iter().fold(0, |bits, p| bits | p.bit()))
    }

    pub fn contains(&self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn is_subset(&self, other: &Permissions) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn to_vec(&self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| self.contains(*p))
            .collect()
    }

    /// An OAuth `scope` (RFC 6749 §3.3: space-separated): each scope is a permission's name,
    /// so `read` is the safe methods and `write` the unsafe ones. The one place the two meet.
    pub fn from_scope(scope: &str) -> Result<Self, String> {
        let permissions = scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(Permission::from_str)
            .collect::<Result<Vec<_>, _>>()?;
        Self::try_from(permissions).map_err(str::to_owned)
    }

    /// The `scope` string of these permissions.
    pub fn scope(&self) -> String {
        let names: Vec<&str> = self.to_vec().into_iter().map(Permission::as_str).collect();
        names.join(" ")
    }

    /// What both allow; `None` when nothing is left.
    pub fn intersection(&self, other: &Permissions) -> Option<Permissions> {
        let common = self.0 & other.0;
        (common != 0).then_some(Self(common))
    }
}

impl TryFrom<Vec<Permission>> for Permissions {
    type Error = &'static str;

    fn try_from(v: Vec<Permission>) -> Result<Self, Self::Error> {
        if v.is_empty() {
            return Err("at least one permission is required");
        }
        Ok(Self(v.into_iter().fold(0, |bits, p| bits | p.bit())))
    }
}

impl From<Permissions> for Vec<Permission> {
    fn from(p: Permissions) -> Self {
        p.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_methods_need_write() {
        assert_eq!(Permission::for_method(&Method::GET), Permission::Read);
        assert_eq!(Permission::for_method(&Method::HEAD), Permission::Read);
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(Permission::for_method(&m), Permission::Write);
        }
    }

    #[test]
    fn a_scope_names_permissions_and_nothing_else() {
        let read = Permissions::from_scope("read").unwrap();
        assert_eq!(read.scope(), "read");
        assert_eq!(
            Permissions::from_scope("write  read").unwrap(),
            Permissions::all()
        );
        assert_eq!(Permissions::all().scope(), "read write");
        assert!(Permissions::from_scope("admin").is_err());
        assert!(Permissions::from_scope(" ").is_err());
        assert_eq!(Permissions::all().intersection(&read), Some(read.clone()));
        let write = Permissions::from_scope("write").unwrap();
        assert_eq!(read.intersection(&write), None);
    }

    #[test]
    fn each_permission_has_its_own_bit_and_a_place_in_all() {
        let bits: Vec<u16> = Permission::ALL.iter().map(|p| p.bit()).collect();
        for (i, bit) in bits.iter().enumerate() {
            assert_eq!(bit.count_ones(), 1);
            assert!(!bits[..i].contains(bit), "{bit} twice");
        }
        // An exhaustive match: a new variant fails to compile here until it is listed in ALL.
        let listed = |p: Permission| match p {
            Permission::Read | Permission::Write => Permission::ALL.contains(&p),
        };
        for p in [Permission::Read, Permission::Write] {
            assert!(
                listed(p) && Permissions::all().contains(p),
                "{p} missing from ALL"
            );
        }
        let read = Permissions::from_scope("read").unwrap();
        assert!(read.is_subset(&Permissions::all()));
        assert!(!Permissions::all().is_subset(&read));
        assert_eq!(
            Permissions::all().to_vec(),
            vec![Permission::Read, Permission::Write]
        );
    }

    #[test]
    fn an_empty_set_is_refused() {
        assert!(Permissions::try_from(vec![]).is_err());
        let json: Result<Permissions, _> = serde_json::from_str("[]");
        assert!(json.is_err());
        let ok: Permissions = serde_json::from_str(r#"["write","read","read"]"#).unwrap();
        assert_eq!(ok, Permissions::all());
    }
}
