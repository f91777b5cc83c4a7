//! Our own access tokens: short-lived JWTs signed with Ed25519 (asymmetric, so services that
//! only verify never hold a signing key), `kid` in the header so keys can rotate. The newest
//! configured key signs; every configured key verifies; public halves are served as a JWKS.
use std::{path::Path, sync::Arc};

use anyhow::{Context, anyhow};
use chrono::Utc;
use data_encoding::BASE64URL_NOPAD;
use ed25519_dalek::{
    SigningKey,
    pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{AppEnv, Settings};

/// The `typ` of our access tokens (RFC 9068): verification requires it, so no other JWT we
/// ever sign can be replayed as an access token (RFC 8725 §3.11).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Ours and intact, but past its expiry.
    Expired,
    /// Anything else: malformed, forged, another issuer's or audience's, another algorithm.
    Invalid,
}

/// The claims of an access token, validated. A token belongs either to a session (`sid`) or
/// to an API key (`client_id`, `scope`: a machine token from the client credentials grant),
/// never both: [`TokenIssuer::verify`] refuses any other mix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    /// The session (login) this token belongs to: logout revokes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    /// The API key's lookup id (a machine token): revoking or rotating the key ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A machine token's permissions, as an OAuth scope (a subset of its key's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A machine token bound to the client's DPoP key (RFC 9449 §6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    pub jti: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

/// The key a token is bound to: its RFC 7638 thumbprint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

/// Whose an access token is.
pub enum Holder<'a> {
    Session(Uuid),
    Client {
        lookup_id: &'a str,
        scope: &'a str,
        /// The DPoP key it is bound to, if any.
        jkt: Option<&'a str>,
    },
}

impl AccessClaims {
    /// The session or the API key this token stands for; `None` for a token that names both or
    /// neither (never issued by us).
    pub fn holder(&self) -> Option<Holder<'_>> {
        let jkt = self.cnf.as_ref().map(|c| c.jkt.as_str());
        match (self.sid, self.client_id.as_deref(), self.scope.as_deref()) {
            (Some(sid), None, None) if jkt.is_none() => Some(Holder::Session(sid)),
            (None, Some(lookup_id), Some(scope)) => Some(Holder::Client {
                lookup_id,
                scope,
                jkt,
            }),
            _ => None,
        }
    }
}

struct KeyPair {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_x: String,
}

pub struct TokenIssuer {
    keys: Vec<KeyPair>,
    issuer: String,
    audience: String,
    ttl_secs: i64,
    client_ttl_secs: i64,
    verified: VerifiedTokens,
}

/// Tokens verified moments ago, by the SHA-256 of the whole token: a hit is the very string
/// whose signature and claims were checked, so only the time is checked again (never past
/// `exp`). Revocation is not cached: the caller checks the revocation list on every request.
type VerifiedTokens = crate::cache::TtlCache<[u8; 32], Arc<AccessClaims>>;

/// How long a verified token is remembered (bounded by its own expiry).
const VERIFIED_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// Clock skew allowed on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: i64 = 5;

fn verified_cache() -> VerifiedTokens {
    crate::cache::TtlCache::new(100_000, VERIFIED_TTL)
}

#[derive(Debug, Clone, Serialize)]
pub struct Jwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub kid: String,
    pub x: String,
}

fn key_pair(kid: String, pem: &str) -> anyhow::Result<KeyPair> {
    let signing = SigningKey::from_pkcs8_pem(pem)
        .map_err(|e| anyhow!("signing key {kid}: not an Ed25519 PKCS#8 PEM key: {e}"))?;
    let public_x = BASE64URL_NOPAD.encode(signing.verifying_key().as_bytes());
    Ok(KeyPair {
        encoding: EncodingKey::from_ed_pem(pem.as_bytes())
            .with_context(|| format!("signing key {kid}"))?,
        decoding: DecodingKey::from_ed_components(&public_x)
            .with_context(|| format!("signing key {kid}"))?,
        public_x,
        kid,
    })
}

fn generate_pem() -> anyhow::Result<String> {
    let seed = crate::auth::secrets::random_bytes::<32>();
    let pem = SigningKey::from_bytes(&seed)
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| anyhow!("could not encode a generated key: {e}"))?;
    Ok(pem.to_string())
}

/// Development: the key under `path`, generated on first start (owner-only permissions).
fn dev_key(path: &Path) -> anyhow::Result<String> {
    if let Ok(pem) = std::fs::read_to_string(path) {
        return Ok(pem);
    }
    let pem = generate_pem()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    write_private(path, &pem).with_context(|| {
        format!(
            "could not write the development signing key {}",
            path.display()
        )
    })?;
    tracing::warn!(path = %path.display(), "generated a development signing key; configure auth.signing_keys for production");
    Ok(pem)
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

impl TokenIssuer {
    /// Configured keys; else in development a key kept on disk; in tests a fresh one in memory.
    pub fn from_settings(settings: &Settings, public_url: &url::Url) -> anyhow::Result<Self> {
        let auth = &settings.auth;
        let keys = if !auth.signing_keys.is_empty() {
            auth.signing_keys
                .iter()
                .enumerate()
                .map(|(i, k)| key_pair(k.kid.clone(), &k.pem(i)?))
                .collect::<anyhow::Result<Vec<_>>>()?
        } else {
            match settings.env {
                AppEnv::Production => anyhow::bail!(
                    "invalid configuration: auth.signing_keys is required in production"
                ),
                AppEnv::Development => vec![key_pair(
                    "dev".into(),
                    &dev_key(&auth.dev_signing_key_file)?,
                )?],
                AppEnv::Test => vec![key_pair("test".into(), &generate_pem()?)?],
            }
        };
        let base = public_url.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            keys,
            issuer: base.clone(),
            audience: format!("{base}/api"),
            ttl_secs: i64::try_from(auth.access_token_ttl_secs).unwrap_or(900),
            client_ttl_secs: i64::try_from(auth.client_token_ttl_secs).unwrap_or(300),
            verified: verified_cache(),
        })
    }

    /// `iss` of our tokens: the public URL, without a trailing slash.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// A new access token for the user's session.
    pub fn issue(&self, user: Uuid, session: Uuid) -> anyhow::Result<(String, AccessClaims)> {
        let now = Utc::now().timestamp();
        self.sign(AccessClaims {
            sid: Some(session),
            ..self.claims(user, now, now + self.ttl_secs)
        })
    }

    /// A machine token for an API key (client credentials), with `scope` (already narrowed to
    /// the key's permissions); it never outlives the key (`key_expires_at`). `jkt`: bound to
    /// that DPoP key.
    pub fn issue_client(
        &self,
        user: Uuid,
        lookup_id: &str,
        scope: String,
        key_expires_at: Option<i64>,
        jkt: Option<String>,
    ) -> anyhow::Result<(String, AccessClaims)> {
        let now = Utc::now().timestamp();
        let exp = key_expires_at.map_or(now + self.client_ttl_secs, |at| {
            at.min(now + self.client_ttl_secs)
        });
        self.sign(AccessClaims {
            client_id: Some(lookup_id.to_owned()),
            scope: Some(scope),
            cnf: jkt.map(|jkt| Confirmation { jkt }),
            ..self.claims(user, now, exp)
        })
    }

    fn claims(&self, user: Uuid, now: i64, exp: i64) -> AccessClaims {
        AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user,
            sid: None,
            client_id: None,
            scope: None,
            cnf: None,
            jti: Uuid::now_v7(),
            iat: now,
            nbf: now,
            exp,
        }
    }

    fn sign(&self, claims: AccessClaims) -> anyhow::Result<(String, AccessClaims)> {
        let key = self.keys.first().ok_or_else(|| anyhow!("no signing key"))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYP.into());
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .context("could not sign an access token")?;
        Ok((token, claims))
    }

    /// Validates signature (by `kid`, EdDSA only), issuer, audience and times. The caller
    /// answers 401 either way without saying what was wrong; [`Rejected::Expired`] only tells
    /// it that the token was genuine (an expired token is routine, not an attack).
    pub fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, Rejected> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.verified.get(&digest) {
            return if claims.exp + LEEWAY_SECS > Utc::now().timestamp() {
                Ok(claims)
            } else {
                Err(Rejected::Expired)
            };
        }
        let claims = Arc::new(self.verify_signed(token)?);
        self.verified.insert(digest, claims.clone());
        Ok(claims)
    }

    /// [`TokenIssuer::verify`] without the cache: the signature and every claim, each time.
    pub fn verify_signed(&self, token: &str) -> Result<AccessClaims, Rejected> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejected::Invalid)?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(Rejected::Invalid);
        }
        let key = self
            .keys
            .iter()
            .find(|k| Some(&k.kid) == header.kid.as_ref())
            .ok_or(Rejected::Invalid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS.unsigned_abs();
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Rejected::Expired,
                _ => Rejected::Invalid,
            })?
            .claims;
        // Not issued in the future (beyond clock skew); a session's or a key's, not both.
        if claims.iat > Utc::now().timestamp() + LEEWAY_SECS || claims.holder().is_none() {
            return Err(Rejected::Invalid);
        }
        Ok(claims)
    }

    /// The public keys, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Vec<Jwk> {
        self.keys
            .iter()
            .map(|k| Jwk {
                kty: "OKP",
                crv: "Ed25519",
                alg: "EdDSA",
                use_: "sig",
                kid: k.kid.clone(),
                x: k.public_x.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(keys: Vec<KeyPair>) -> TokenIssuer {
        TokenIssuer {
            keys,
            issuer: "https://iq.example".into(),
            audience: "https://iq.example/api".into(),
            ttl_secs: 900,
            client_ttl_secs: 300,
            verified: verified_cache(),
        }
    }

    fn pair(kid: &str) -> KeyPair {
        key_pair(kid.into(), &generate_pem().unwrap()).unwrap()
    }

    #[test]
    fn issued_tokens_verify_and_carry_every_claim() {
        let iss = issuer(vec![pair("a")]);
        let (token, claims) = iss.issue(Uuid::now_v7(), Uuid::now_v7()).unwrap();
        let back = iss.verify(&token).unwrap();
        assert_eq!(back.sub, claims.sub);
        assert_eq!(back.sid, claims.sid);
        assert_eq!(back.exp - back.iat, 900);
    }

    #[test]
    fn a_machine_token_names_its_key_and_never_a_session_too() {
        let iss = issuer(vec![pair("a")]);
        let (token, _) = iss
            .issue_client(
                Uuid::now_v7(),
                "lk",
                "read".into(),
                None,
                Some("jkt".into()),
            )
            .unwrap();
        let back = iss.verify(&token).unwrap();
        assert!(matches!(
            back.holder(),
            Some(Holder::Client {
                lookup_id: "lk",
                scope: "read",
                jkt: Some("jkt")
            })
        ));
        assert_eq!(back.exp - back.iat, 300);
        // Never past the key's own expiry.
        let soon = Utc::now().timestamp() + 10;
        let (_, claims) = iss
            .issue_client(Uuid::now_v7(), "lk", "read".into(), Some(soon), None)
            .unwrap();
        assert_eq!(claims.exp, soon);
        // Claims of both kinds at once are not a token of ours.
        let mixed = AccessClaims {
            sid: Some(Uuid::now_v7()),
            ..(*back).clone()
        };
        let (forged, _) = iss.sign(mixed).unwrap();
        assert_eq!(iss.verify(&forged).unwrap_err(), Rejected::Invalid);
    }

    #[test]
    fn a_remembered_token_is_that_exact_string_and_nothing_near_it() {
        let iss = issuer(vec![pair("a")]);
        let (token, _) = iss.issue(Uuid::now_v7(), Uuid::now_v7()).unwrap();
        let first = iss.verify(&token).unwrap();
        let again = iss.verify(&token).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the second check is a cache hit"
        );
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(iss.verify(&tampered).unwrap_err(), Rejected::Invalid);
        // A token already expired is refused, and never remembered.
        let expired = TokenIssuer {
            ttl_secs: -60,
            ..issuer(vec![pair("a")])
        };
        let (old, _) = expired.issue(Uuid::now_v7(), Uuid::now_v7()).unwrap();
        assert_eq!(expired.verify(&old).unwrap_err(), Rejected::Expired);
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(old.as_bytes()).into();
        assert!(!expired.verified.contains_key(&digest));
    }

    #[test]
    fn the_old_key_still_verifies_after_rotation() {
        let old = issuer(vec![pair("old")]);
        let (token, _) = old.issue(Uuid::now_v7(), Uuid::now_v7()).unwrap();
        let pem_old = old.keys.into_iter().next().unwrap();
        let rotated = issuer(vec![pair("new"), pem_old]);
        assert!(rotated.verify(&token).is_ok());
        let (fresh, _) = rotated.issue(Uuid::now_v7(), Uuid::now_v7()).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&fresh).unwrap().kid.as_deref(),
            Some("new")
        );
    }

    #[test]
    fn foreign_keys_audiences_and_tampering_are_refused() {
        let a = issuer(vec![pair("k")]);
        let b = issuer(vec![pair("k")]);
        let (token, _) = a.issue(Uuid::now_v7(), Uuid::now_v7()).unwrap();
        assert!(b.verify(&token).is_err(), "same kid, other key");
        let mut other_aud = issuer(vec![]);
        other_aud.keys = a.keys;
        other_aud.audience = "https://elsewhere/api".into();
        assert!(other_aud.verify(&token).is_err());
        // The same issuer that accepts the token refuses it once a byte of it changes.
        let a = issuer(other_aud.keys);
        assert!(a.verify(&token).is_ok());
        // A changed byte of the payload (a claim), the signature left as it was.
        let at = token.find('.').unwrap() + 5;
        let mut bytes = token.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(a.verify(&tampered).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_development_key_is_written_for_the_owner_only_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/dev.pem");
        let first = dev_key(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            dev_key(&path).unwrap(),
            first,
            "the same key after a restart"
        );
    }
}
