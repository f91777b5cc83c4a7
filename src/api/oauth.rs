//! `POST /oauth/token`: the client credentials grant (RFC 6749 §4.4) for programs holding an
//! API key, and its discovery document (RFC 8414).
//!
//! Errors here are RFC 6749 §5.2 JSON (`{"error": "...", "error_description": "..."}`), not
//! problem+json like the rest of the API: OAuth client libraries parse this format and no other.
//! Only a server-side failure (store or database down) is a problem document.
use poem::{Request, http::header};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    payload::{Form, Json},
};
use serde::Deserialize;

use super::{ApiTags, Resource};
use crate::{
    auth::{
        api_keys::VerifyError,
        client_credentials::{
            self, CLIENT_ID, GRANT_TYPE, GrantError, Issued, TOKEN_PATH, TokenRequest,
        },
        dpop::{self, ProofError},
    },
    domain::audit,
    error::ApiResult,
    http::{ClientIp, audit_context},
    ratelimit::{self, Policy},
    state::AppState,
};

pub struct OAuthApi {
    state: AppState,
}

impl Resource for OAuthApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A token request (`application/x-www-form-urlencoded`). Authenticate with HTTP Basic (user
/// `apikey`, the key as password) or with `client_id=apikey` and `client_secret=<key>` here.
#[derive(Object, Deserialize)]
struct TokenForm {
    /// `client_credentials`.
    grant_type: Option<String>,
    /// Space-separated permissions (`read`, `write`) within the key's; default: all of them.
    scope: Option<String>,
    /// `apikey`, with `client_secret` (client_secret_post).
    client_id: Option<String>,
    /// The API key (client_secret_post).
    client_secret: Option<String>,
}

/// A machine access token: send it as `Authorization: Bearer <access_token>`, or when bound
/// to a DPoP key (`token_type` `DPoP`) as `Authorization: DPoP <access_token>` with a proof.
#[derive(Object)]
struct ClientToken {
    access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to the proof's key.
    token_type: String,
    /// Seconds until it expires.
    expires_in: i64,
    /// The permissions it carries, space-separated.
    scope: String,
}

/// An OAuth error (RFC 6749 §5.2).
#[derive(Object)]
struct OAuthError {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type` or `invalid_scope`.
    error: String,
    #[oai(skip_serializing_if_is_none)]
    error_description: Option<String>,
}

/// Tokens and their errors are never cached (RFC 6749 §5.1).
const NO_STORE: &str = "no-store";
/// The scheme a client retries `invalid_client` with (RFC 6749 §5.2).
const CHALLENGE: &str = "Basic realm=\"oauth\", charset=\"UTF-8\"";

#[derive(ApiResponse)]
enum TokenReply {
    /// A short-lived access token for the key.
    #[oai(status = 200)]
    Issued(
        Json<ClientToken>,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "Pragma")] String,
    ),
    /// `invalid_request`, `unsupported_grant_type`, `invalid_scope` or `invalid_dpop_proof`.
    #[oai(status = 400)]
    BadRequest(Json<OAuthError>, #[oai(header = "Cache-Control")] String),
    /// `invalid_client`: no key, or a wrong, revoked or expired one, or one used from outside
    /// its `allowed_ips`.
    #[oai(status = 401)]
    Unauthorized(
        Json<OAuthError>,
        #[oai(header = "WWW-Authenticate")] String,
        #[oai(header = "Cache-Control")] String,
    ),
}

impl TokenReply {
    fn issued(issued: Issued) -> Self {
        TokenReply::Issued(
            Json(ClientToken {
                access_token: issued.access_token,
                token_type: issued.token_type.into(),
                expires_in: issued.expires_in,
                scope: issued.scope,
            }),
            NO_STORE.into(),
            "no-cache".into(),
        )
    }

    fn refused(err: &GrantError) -> Self {
        let body = Json(OAuthError {
            error: err.code().into(),
            error_description: Some(err.to_string()),
        });
        match err {
            GrantError::InvalidClient { .. } => {
                TokenReply::Unauthorized(body, CHALLENGE.into(), NO_STORE.into())
            }
            _ => TokenReply::BadRequest(body, NO_STORE.into()),
        }
    }
}

/// The generator lets the shared error responses (problem+json) override the token endpoint's
/// own 400 and 401: the document lists the RFC 6749 JSON body beside them (a request the
/// framework cannot parse still gets a problem document).
pub(super) fn document_errors(doc: &mut serde_json::Value) {
    let pointer = format!("/paths/{}/post/responses", TOKEN_PATH.replace('/', "~1"));
    let Some(responses) = doc.pointer_mut(&pointer) else {
        return;
    };
    for status in ["400", "401"] {
        if let Some(content) = responses
            .pointer_mut(&format!("/{status}/content"))
            .and_then(serde_json::Value::as_object_mut)
        {
            content.insert(
                "application/json; charset=utf-8".into(),
                serde_json::json!({"schema": {"$ref": "#/components/schemas/OAuthError"}}),
            );
        }
    }
}

/// The authorization server's metadata (RFC 8414), for OAuth client libraries.
#[derive(Object)]
struct ServerMetadata {
    issuer: String,
    token_endpoint: String,
    jwks_uri: String,
    grant_types_supported: Vec<String>,
    token_endpoint_auth_methods_supported: Vec<String>,
    scopes_supported: Vec<String>,
    /// Send a `DPoP` proof with the token request to get a sender-constrained token (RFC 9449).
    dpop_signing_alg_values_supported: Vec<String>,
    /// Empty: there is no authorization endpoint (programs only).
    response_types_supported: Vec<String>,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl OAuthApi {
    /// Exchanges an API key for a short-lived access token (OAuth 2.0 client credentials).
    /// The token carries the key's user, tenant and permissions, narrowed by `scope`, and is
    /// refused as soon as the key is revoked or rotated. No refresh token: ask again.
    #[oai(path = "/oauth/token", method = "post")]
    async fn token(&self, req: &Request, form: Form<TokenForm>) -> ApiResult<TokenReply> {
        let state = &self.state;
        let request = TokenRequest {
            grant_type: form.grant_type.as_deref(),
            scope: form.scope.as_deref(),
            client_id: form.client_id.as_deref(),
            client_secret: form.client_secret.as_deref(),
            authorization: req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        };
        let granted = self.grant(req, &request).await?;
        match granted {
            Ok(issued) => {
                self.record(req, &issued).await;
                Ok(TokenReply::issued(issued))
            }
            // The key could not be checked: fails closed, as everywhere (a problem document).
            Err(GrantError::Verify(VerifyError::Store(err))) => Err(err.into()),
            Err(GrantError::Verify(VerifyError::Db(err))) => Err(err.into()),
            Err(GrantError::Unexpected(err)) => Err(err.into()),
            Err(err) => {
                if let GrantError::InvalidClient { reason } = err {
                    state.auth.failed(req, GRANT_TYPE, reason).await;
                }
                Ok(TokenReply::refused(&err))
            }
        }
    }

    /// Where and how to get a token (RFC 8414).
    #[oai(path = "/.well-known/oauth-authorization-server", method = "get")]
    async fn metadata(&self) -> Json<ServerMetadata> {
        let issuer = self.state.tokens.issuer().to_owned();
        Json(ServerMetadata {
            token_endpoint: format!("{issuer}{TOKEN_PATH}"),
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            issuer,
            grant_types_supported: vec![GRANT_TYPE.into()],
            token_endpoint_auth_methods_supported: vec![
                "client_secret_basic".into(),
                "client_secret_post".into(),
            ],
            scopes_supported: vec!["read".into(), "write".into()],
            dpop_signing_alg_values_supported: dpop::ALGORITHMS
                .iter()
                .map(|&alg| alg.into())
                .collect(),
            response_types_supported: vec![],
        })
    }
}

impl OAuthApi {
    /// Authenticates the client, then spends its per-key budget and checks its proof: only an
    /// authenticated client can spend a jti or a budget. `Err` for what fails closed (503, 429).
    async fn grant(
        &self,
        req: &Request,
        request: &TokenRequest<'_>,
    ) -> ApiResult<Result<Issued, GrantError>> {
        let state = &self.state;
        let principal =
            match client_credentials::authenticate(&state.keys, request, ClientIp::of(req)).await {
                Ok(principal) => principal,
                Err(err) => return Ok(Err(err)),
            };
        let key = ratelimit::principal_key(&principal);
        ratelimit::spend(&state.limiter, req, Policy::PerPrincipal, &key).await?;
        let jkt = match self.proof_key(req).await {
            Ok(jkt) => jkt,
            Err(ProofError::Store(err)) => return Err(err.into()),
            Err(ProofError::Invalid(reason)) => {
                return Ok(Err(GrantError::InvalidDpopProof(reason)));
            }
        };
        Ok(client_credentials::issue(
            &state.tokens,
            principal,
            request.scope,
            jkt,
        ))
    }

    /// The thumbprint of the key of the request's DPoP proof, if it sent one.
    async fn proof_key(&self, req: &Request) -> Result<Option<String>, ProofError> {
        let mut proofs = req.headers().get_all(dpop::HEADER).iter();
        let (Some(proof), None) = (proofs.next(), proofs.next()) else {
            return if req.headers().contains_key(dpop::HEADER) {
                Err(ProofError::Invalid("one DPoP header at most"))
            } else {
                Ok(None)
            };
        };
        let proof = proof.to_str().map_err(|_| ProofError::Invalid("header"))?;
        let url = format!("{}{TOKEN_PATH}", self.state.tokens.issuer());
        let expected = dpop::Expected {
            method: "POST",
            url: &url,
            access_token: None,
        };
        dpop::verify(&self.state.store, proof, &expected)
            .await
            .map(Some)
    }

    /// The audit trail's `client_token_issued`, on behalf of the key.
    async fn record(&self, req: &Request, issued: &Issued) {
        let Some(key) = issued.principal.api_key() else {
            return;
        };
        let mut ctx = audit_context(req).as_user(issued.principal.user_id);
        ctx.actor_api_key_id = Some(key.key_id);
        let event = audit::Event::success(audit::action::CLIENT_TOKEN_ISSUED)
            .in_tenant(key.tenant_id)
            .target("api_key", key.key_id)
            .detail(serde_json::json!({
                "client_id": CLIENT_ID,
                "scope": issued.scope,
                "expires_in": issued.expires_in,
            }));
        audit::record(&self.state.db, &ctx, event).await;
    }
}
