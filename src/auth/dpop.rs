//! DPoP (RFC 9449): a machine token bound to a key the client holds (`cnf.jkt`, the key's
//! RFC 7638 thumbprint), usable only with a fresh proof signed by that key for each request.
//! A stolen bound token is useless without the private key.
use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::store::{EphemeralStore, Store, StoreError};

/// The request header carrying the proof, and the `Authorization` scheme of a bound token.
pub const HEADER: &str = "dpop";
pub const SCHEME: &str = "DPoP";
/// The proof algorithms accepted (discovery's `dpop_signing_alg_values_supported`).
pub const ALGORITHMS: &[&str] = &["ES256", "EdDSA"];
/// `typ` of a proof (RFC 9449 §4.2): no other JWT can pass as one.
const PROOF_TYP: &str = "dpop+jwt";
/// How far a proof's `iat` may be from our clock: a proof is made just before its request, so
/// a minute covers clock skew and a slow network, and bounds how long replays are remembered.
const IAT_WINDOW_SECS: i64 = 60;
/// How far instances sharing the store may disagree about the time: a proof accepted by a
/// fast clock must still be remembered by a slow one.
const CLOCK_SKEW_SECS: u64 = 30;
/// A `jti` is remembered as long as its proof could be accepted (the window either side), plus
/// the skew between instances.
const JTI_TTL: Duration = Duration::from_secs(2 * IAT_WINDOW_SECS.unsigned_abs() + CLOCK_SKEW_SECS);

/// Why a proof was refused (the client hears `invalid_dpop_proof`; the reason is logged).
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("invalid DPoP proof: {0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the proof must be bound to: this request, and on resource requests the access token.
pub struct Expected<'a> {
    pub method: &'a str,
    /// `public_url` + path, without query or fragment.
    pub url: &'a str,
    pub access_token: Option<&'a str>,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    ath: Option<String>,
}

/// Verifies `proof` for `expected` and returns the thumbprint of its key (`jkt`). Its `jti` is
/// spent: the same proof again, on any instance sharing the store, is refused.
pub async fn verify(
    store: &Store,
    proof: &str,
    expected: &Expected<'_>,
) -> Result<String, ProofError> {
    let header = jsonwebtoken::decode_header(proof).map_err(|_| ProofError::Invalid("header"))?;
    if header.typ.as_deref() != Some(PROOF_TYP) {
        return Err(ProofError::Invalid("typ"));
    }
    let jwk_json = public_jwk(proof)?;
    key_fits(header.alg, &jwk_json)?;
    let jwk: Jwk =
        serde_json::from_value(jwk_json.clone()).map_err(|_| ProofError::Invalid("jwk"))?;
    let jkt = thumbprint(&jwk_json)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| ProofError::Invalid("jwk"))?;
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
        .map_err(|_| ProofError::Invalid("signature or claims"))?
        .claims;
    if claims.htm != expected.method {
        return Err(ProofError::Invalid("htm"));
    }
    if without_query(&claims.htu) != expected.url {
        return Err(ProofError::Invalid("htu"));
    }
    if (claims.iat - Utc::now().timestamp()).abs() > IAT_WINDOW_SECS {
        return Err(ProofError::Invalid("iat"));
    }
    if let Some(token) = expected.access_token
        && claims.ath.as_deref() != Some(token_hash(token).as_str())
    {
        return Err(ProofError::Invalid("ath"));
    }
    // First use of this jti for this key within the window: the atomic counter's first tick.
    let seen = Sha256::digest(format!("{jkt}.{}", claims.jti));
    if store.incr(&spent_proof_key(&seen), JTI_TTL).await? != 1 {
        return Err(ProofError::Invalid("replayed jti"));
    }
    Ok(jkt)
}

/// Only our algorithms, each with its own curve (P-256 for ES256, Ed25519 for EdDSA): a key is
/// never used with an algorithm it was not made for.
fn key_fits(alg: Algorithm, jwk: &serde_json::Value) -> Result<(), ProofError> {
    let curve = match alg {
        Algorithm::ES256 => "P-256",
        Algorithm::EdDSA => "Ed25519",
        _ => return Err(ProofError::Invalid("alg")),
    };
    if jwk.get("crv").and_then(|v| v.as_str()) != Some(curve) {
        return Err(ProofError::Invalid("crv does not match alg"));
    }
    Ok(())
}

/// The header's `jwk`, which must be a public key: a private part (`d`) is refused.
fn public_jwk(proof: &str) -> Result<serde_json::Value, ProofError> {
    let encoded = proof.split('.').next().unwrap_or_default();
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(ProofError::Invalid("header"))?;
    let jwk = header.get("jwk").ok_or(ProofError::Invalid("no jwk"))?;
    if jwk.get("d").is_some() {
        return Err(ProofError::Invalid("jwk holds a private key"));
    }
    Ok(jwk.clone())
}

/// RFC 7638: SHA-256 over the required members in lexicographic order, base64url.
pub fn thumbprint(jwk: &serde_json::Value) -> Result<String, ProofError> {
    let member = |name: &str| {
        jwk.get(name)
            .and_then(|v| v.as_str())
            .ok_or(ProofError::Invalid("jwk members"))
    };
    // serde_json writes no whitespace and keeps the order given here.
    let canonical = match member("kty")? {
        "EC" => format!(
            r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
            quoted(member("crv")?),
            quoted(member("x")?),
            quoted(member("y")?)
        ),
        "OKP" => format!(
            r#"{{"crv":{},"kty":"OKP","x":{}}}"#,
            quoted(member("crv")?),
            quoted(member("x")?)
        ),
        _ => return Err(ProofError::Invalid("kty")),
    };
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// `ath`: base64url(SHA-256(access token)).
pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// The store key of a spent proof: its key's thumbprint and `jti`, hashed.
pub(crate) fn spent_proof_key(seen: &[u8]) -> String {
    format!("dpop:jti:{}", URL_SAFE_NO_PAD.encode(seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        // RFC 7638 §3.1 uses an RSA key; this is the EC example of RFC 9449 §6.1's key
        // computed independently: members sorted, no whitespace, SHA-256, base64url.
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        });
        let canonical = r#"{"crv":"P-256","kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#;
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            URL_SAFE_NO_PAD.encode(Sha256::digest(canonical))
        );
        // The `jkt` RFC 9449 §6.1 gives for this key.
        assert_eq!(
            thumbprint(&jwk).unwrap(),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
        assert!(thumbprint(&serde_json::json!({"kty": "RSA", "n": "x", "e": "AQAB"})).is_err());
    }

    /// A proof's header segment (the rest is not read by `public_jwk`).
    fn proof_with_jwk(jwk: serde_json::Value) -> String {
        let header = serde_json::json!({"typ": PROOF_TYP, "alg": "ES256", "jwk": jwk});
        format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(header.to_string()))
    }

    #[test]
    fn a_jwk_with_a_private_part_is_refused() {
        let public = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"});
        assert_eq!(public_jwk(&proof_with_jwk(public.clone())).unwrap(), public);
        let mut private = public;
        private["d"] = "AA".into();
        assert!(matches!(
            public_jwk(&proof_with_jwk(private)),
            Err(ProofError::Invalid("jwk holds a private key"))
        ));
        assert!(public_jwk("e30.e30.sig").is_err(), "no jwk at all");
    }

    #[test]
    fn the_curve_must_be_the_algorithms() {
        let ec = serde_json::json!({"kty": "EC", "crv": "P-256"});
        let okp = serde_json::json!({"kty": "OKP", "crv": "Ed25519"});
        assert!(key_fits(Algorithm::ES256, &ec).is_ok());
        assert!(key_fits(Algorithm::EdDSA, &okp).is_ok());
        assert!(key_fits(Algorithm::ES256, &okp).is_err());
        assert!(key_fits(Algorithm::EdDSA, &ec).is_err());
        let p384 = serde_json::json!({"kty": "EC", "crv": "P-384"});
        assert!(key_fits(Algorithm::ES256, &p384).is_err());
        assert!(key_fits(Algorithm::HS256, &ec).is_err());
        assert!(key_fits(Algorithm::ES384, &p384).is_err());
    }

    #[test]
    fn htu_is_compared_without_query_or_fragment() {
        assert_eq!(
            without_query("https://a.example/x?y=1#z"),
            "https://a.example/x"
        );
        assert_eq!(without_query("https://a.example/x"), "https://a.example/x");
    }
}
