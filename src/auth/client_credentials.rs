//! The OAuth 2.0 client credentials grant (RFC 6749 §4.4) over our API keys: a program trades
//! its long-lived key for a short-lived access token carrying the key's user, tenant binding
//! and permissions (narrowed by the requested `scope`, never widened). The token is checked
//! against its key on every request, so revoking or rotating the key ends it at once. No
//! refresh token: the program asks again with its key.
use std::net::IpAddr;

use secrecy::{ExposeSecret, SecretString};

use super::{
    Principal,
    api_keys::{KeyVerifier, VerifyError},
    permissions::Permissions,
    tokens::TokenIssuer,
};

/// Where the token endpoint is served (the route, its rate limit, the discovery document).
pub const TOKEN_PATH: &str = "/oauth/token";
/// The one grant type served.
pub const GRANT_TYPE: &str = "client_credentials";
/// The `client_id` of every API key: the key itself is the client's secret.
pub const CLIENT_ID: &str = "apikey";

/// What the client sent: the form's fields and its `Authorization` header.
pub struct TokenRequest<'a> {
    pub grant_type: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub client_secret: Option<&'a str>,
    pub authorization: Option<&'a str>,
}

/// A refused token request, as RFC 6749 §5.2 names it.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// The client's authentication failed (`reason` for metrics and the audit trail): 401.
    #[error("client authentication failed")]
    InvalidClient { reason: &'static str },
    #[error("only grant_type=client_credentials is supported")]
    UnsupportedGrantType,
    #[error("{0}")]
    InvalidScope(String),
    /// The `DPoP` header's proof was refused (the reason is for the description).
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(&'static str),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl GrantError {
    /// The RFC 6749 `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            GrantError::InvalidRequest(_) => "invalid_request",
            GrantError::InvalidClient { .. } => "invalid_client",
            GrantError::UnsupportedGrantType => "unsupported_grant_type",
            GrantError::InvalidScope(_) => "invalid_scope",
            GrantError::InvalidDpopProof(_) => "invalid_dpop_proof",
            GrantError::Verify(_) | GrantError::Unexpected(_) => "server_error",
        }
    }
}

/// A machine token, and the key's principal it was issued to.
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
    /// `DPoP` for a bound token, else `Bearer`.
    pub token_type: &'static str,
    pub principal: Principal,
}

/// Checks the request and authenticates the key (from `client`'s address). The caller checks
/// any DPoP proof only after this, so a stranger cannot make us spend proofs, then `issue`s.
pub async fn authenticate(
    keys: &KeyVerifier,
    request: &TokenRequest<'_>,
    client: Option<IpAddr>,
) -> Result<Principal, GrantError> {
    match request.grant_type {
        None => return Err(GrantError::InvalidRequest("grant_type is required")),
        Some(GRANT_TYPE) => {}
        Some(_) => return Err(GrantError::UnsupportedGrantType),
    }
    let secret = client_secret(request)?;
    let principal = keys
        .verify(secret.expose_secret(), client)
        .await?
        .ok_or(GrantError::InvalidClient { reason: "rejected" })?;
    if principal.api_key().is_none() {
        return Err(GrantError::InvalidClient { reason: "rejected" });
    }
    Ok(principal)
}

/// Issues the authenticated key's token, narrowed to `scope` and bound to `dpop_jkt` (the
/// thumbprint of the key of a proof already verified) when given.
pub fn issue(
    tokens: &TokenIssuer,
    principal: Principal,
    scope: Option<&str>,
    dpop_jkt: Option<String>,
) -> Result<Issued, GrantError> {
    let key = principal
        .api_key()
        .ok_or(GrantError::InvalidClient { reason: "rejected" })?;
    if key.require_dpop && dpop_jkt.is_none() {
        return Err(GrantError::InvalidDpopProof(
            "this key's tokens must be DPoP-bound",
        ));
    }
    let permissions = match scope {
        None => key.permissions.clone(),
        Some(scope) => narrowed(&key.permissions, scope)?,
    };
    let scope = permissions.scope();
    let (access_token, claims) = tokens.issue_client(
        principal.user_id,
        &key.lookup_id,
        scope.clone(),
        key.expires_at.map(|at| at.timestamp()),
        dpop_jkt,
    )?;
    Ok(Issued {
        access_token,
        expires_in: claims.exp - claims.iat,
        scope,
        token_type: if claims.cnf.is_some() {
            super::dpop::SCHEME
        } else {
            "Bearer"
        },
        principal,
    })
}

/// The requested scope, which must be within the key's permissions (RFC 6749 §3.3).
fn narrowed(key: &Permissions, scope: &str) -> Result<Permissions, GrantError> {
    let requested = Permissions::from_scope(scope).map_err(GrantError::InvalidScope)?;
    if !requested.is_subset(key) {
        return Err(GrantError::InvalidScope(format!(
            "the key allows only {:?}",
            key.scope()
        )));
    }
    Ok(requested)
}

/// The key, from HTTP Basic (`apikey:<key>`, `client_secret_basic`) or the form
/// (`client_id=apikey&client_secret=<key>`, `client_secret_post`); one method only (§2.3).
fn client_secret(request: &TokenRequest<'_>) -> Result<SecretString, GrantError> {
    let in_form = request.client_id.is_some() || request.client_secret.is_some();
    match (request.authorization, in_form) {
        (Some(_), true) => Err(GrantError::InvalidRequest(
            "authenticate the client one way: Authorization or the form, not both",
        )),
        (Some(authorization), false) => basic(authorization),
        (None, true) => match (request.client_id, request.client_secret) {
            (Some(CLIENT_ID), Some(secret)) => Ok(SecretString::from(secret)),
            _ => Err(GrantError::InvalidClient {
                reason: "malformed",
            }),
        },
        (None, false) => Err(GrantError::InvalidClient { reason: "missing" }),
    }
}

/// `Basic base64(apikey:<key>)`. The RFC form-encodes both parts first; ours need no escaping,
/// but an encoded one is decoded all the same.
fn basic(authorization: &str) -> Result<SecretString, GrantError> {
    let malformed = GrantError::InvalidClient {
        reason: "malformed",
    };
    let Some((scheme, encoded)) = authorization.split_once(' ') else {
        return Err(malformed);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed);
    }
    let Some((user, secret)) = super::basic_credentials(encoded) else {
        return Err(malformed);
    };
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    match (unescape(&user), unescape(&secret)) {
        (Some(user), Some(secret)) if user == CLIENT_ID => Ok(SecretString::from(secret)),
        _ => Err(malformed),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    fn request<'a>(
        authorization: Option<&'a str>,
        form: (Option<&'a str>, Option<&'a str>),
    ) -> TokenRequest<'a> {
        TokenRequest {
            grant_type: Some(GRANT_TYPE),
            scope: None,
            client_id: form.0,
            client_secret: form.1,
            authorization,
        }
    }

    fn secret(r: &TokenRequest<'_>) -> Result<String, &'static str> {
        client_secret(r)
            .map(|s| s.expose_secret().to_owned())
            .map_err(|e| e.code())
    }

    #[test]
    fn the_key_comes_from_basic_or_the_form_and_one_of_them_only() {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("apikey:iq_abc")
        );
        assert_eq!(
            secret(&request(Some(&basic), (None, None))),
            Ok("iq_abc".into())
        );
        assert_eq!(
            secret(&request(None, (Some("apikey"), Some("iq_abc")))),
            Ok("iq_abc".into())
        );
        assert_eq!(
            secret(&request(Some(&basic), (Some("apikey"), Some("iq_abc")))),
            Err("invalid_request")
        );
        assert_eq!(secret(&request(None, (None, None))), Err("invalid_client"));
        assert_eq!(
            secret(&request(None, (Some("someone"), Some("iq_abc")))),
            Err("invalid_client")
        );
        let other_user = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("admin:iq_abc")
        );
        assert_eq!(
            secret(&request(Some(&other_user), (None, None))),
            Err("invalid_client")
        );
        assert_eq!(
            secret(&request(Some("Bearer x"), (None, None))),
            Err("invalid_client")
        );
    }

    #[test]
    fn a_scope_narrows_and_never_widens() {
        let read = Permissions::from_scope("read").unwrap();
        assert_eq!(narrowed(&Permissions::all(), "read").unwrap(), read);
        assert_eq!(
            narrowed(&read, "read write").unwrap_err().code(),
            "invalid_scope"
        );
        assert_eq!(
            narrowed(&read, "admin").unwrap_err().code(),
            "invalid_scope"
        );
    }
}
