//! `/api/v1/me/api-keys`: the caller's API keys. The secret is in the response to create and
//! rotate only; it is never stored and never listed.
use chrono::{DateTime, Utc};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::{ApiTags, Audit, Auth, JsonBody, OptionalJsonBody, Page};
use crate::{
    auth::{
        api_keys::{self, AllowedIps, ApiKeyInfo, KeyScope, NewApiKey},
        permissions::{Permission, Permissions},
    },
    domain::{PageRequest, tenants},
    error::{ApiError, ApiResult},
    state::AppState,
};

pub struct ApiKeysApi {
    state: AppState,
}

impl super::Resource for ApiKeysApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A new key: only these fields can be set.
#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateApiKey {
    /// Unique among your active keys in that tenant, 1–100 characters.
    label: String,
    /// The slug of the tenant the key is bound to; it is useless anywhere else.
    tenant: String,
    /// `read` (safe methods) and/or `write` (unsafe methods). Never more than your role allows.
    permissions: Vec<Permission>,
    /// Optional expiry, in the future.
    #[oai(nullable)]
    expires_at: Option<DateTime<Utc>>,
    /// The client addresses the key works from: at most 32 CIDRs (`203.0.113.0/24`,
    /// `2001:db8::/48`) or single addresses. From any other address it is refused like a wrong
    /// key, so a copy leaked from a CI runner or server is useless elsewhere. Left out, `null`
    /// or empty: usable from anywhere, except that a key creating a key gives it its own
    /// networks, and cannot grant any beyond them.
    #[oai(nullable)]
    allowed_ips: Option<Vec<String>>,
    /// Its machine tokens (`POST /oauth/token`) must be bound to a DPoP key (RFC 9449), so a
    /// copied token is useless alone. Default false; kept on rotation.
    #[serde(default)]
    require_dpop: Option<bool>,
}

/// What a rotation may change besides the secret; the body may be left out.
#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateApiKey {
    /// New client networks replacing the key's, as on creation (a key rotating a key cannot
    /// grant networks beyond its own). Left out, `null` or empty: the key keeps its networks.
    #[oai(nullable)]
    allowed_ips: Option<Vec<String>>,
}

/// The networks a request body names, if any; an empty list names none.
fn parse_allowed_ips(entries: Option<Vec<String>>) -> ApiResult<Option<AllowedIps>> {
    AllowedIps::parse(&entries.unwrap_or_default())
}

/// A key as listed: no secret.
#[derive(Object)]
struct ApiKey {
    id: Uuid,
    label: String,
    /// The non-secret start of the key (`iq_` and the lookup id), to recognise it.
    prefix: String,
    tenant: String,
    permissions: Vec<Permission>,
    #[oai(nullable)]
    expires_at: Option<DateTime<Utc>>,
    /// The client networks (CIDRs) the key works from; `null`: anywhere.
    #[oai(nullable)]
    allowed_ips: Option<Vec<String>>,
    /// Its machine tokens must be DPoP-bound.
    require_dpop: bool,
    #[oai(nullable)]
    last_used_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<ApiKeyInfo> for ApiKey {
    fn from(k: ApiKeyInfo) -> Self {
        Self {
            id: k.id,
            label: k.label,
            prefix: k.prefix,
            tenant: k.tenant,
            permissions: k.permissions.to_vec(),
            expires_at: k.expires_at,
            allowed_ips: k.allowed_ips.as_ref().map(AllowedIps::to_strings),
            require_dpop: k.require_dpop,
            last_used_at: k.last_used_at,
            created_at: k.created_at,
        }
    }
}

/// A key with its secret: shown this once, store it now.
#[derive(Object)]
struct ApiKeyWithSecret {
    #[oai(flatten)]
    key: ApiKey,
    /// The full key. It cannot be shown again.
    api_key: String,
}

#[derive(ApiResponse)]
enum CreatedKey {
    /// Created; the response holds the only copy of the secret.
    #[oai(status = 201)]
    Created(Json<ApiKeyWithSecret>),
}

#[derive(ApiResponse)]
enum Revoked {
    /// Revoked: the key is refused from now on, on every instance.
    #[oai(status = 204)]
    Revoked,
}

fn with_secret((info, secret): (ApiKeyInfo, secrecy::SecretString)) -> ApiKeyWithSecret {
    ApiKeyWithSecret {
        key: info.into(),
        api_key: secret.expose_secret().to_owned(),
    }
}

#[OpenApi(prefix_path = "/api/v1/me/api-keys", tag = "ApiTags::ApiKeys")]
impl ApiKeysApi {
    /// Your active keys, newest first. Never includes secrets.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        auth: Auth,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
        /// Rows to skip, at most 10000.
        offset: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<ApiKey>>> {
        let page = PageRequest::parse(limit.0, offset.0)?;
        let scope = KeyScope {
            principal: auth.principal(),
        };
        let page = api_keys::list(&self.state.db, &scope, page).await?;
        Ok(Json(Page::from_domain(page)))
    }

    /// Creates a key bound to one of your tenants. The secret is returned once.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        auth: Auth,
        body: JsonBody<CreateApiKey>,
        audit: Audit,
    ) -> ApiResult<CreatedKey> {
        let body = body.0;
        let permissions = Permissions::try_from(body.permissions)
            .map_err(|e| ApiError::validation("permissions", e))?;
        let allowed_ips = parse_allowed_ips(body.allowed_ips)?;
        let tenant = tenants::resolve(&self.state.db, &body.tenant)
            .await?
            .ok_or_else(|| ApiError::validation("tenant", "no such tenant among yours"))?;
        let scope = KeyScope {
            principal: auth.principal(),
        };
        let new = NewApiKey {
            label: body.label,
            tenant,
            permissions,
            expires_at: body.expires_at,
            allowed_ips,
            require_dpop: body.require_dpop.unwrap_or(false),
        };
        let created = api_keys::create(&self.state.db, &scope, new, &audit.0).await?;
        Ok(CreatedKey::Created(Json(with_secret(created))))
    }

    /// Revokes a key at once.
    #[oai(path = "/:id", method = "delete")]
    async fn revoke(&self, auth: Auth, id: Path<Uuid>, audit: Audit) -> ApiResult<Revoked> {
        let scope = KeyScope {
            principal: auth.principal(),
        };
        let (db, keys) = (&self.state.db, &self.state.keys);
        api_keys::revoke(db, keys, &scope, id.0, &audit.0).await?;
        Ok(Revoked::Revoked)
    }

    /// Replaces the key's secret; label, tenant, permissions and expiry stay, and so do its
    /// `allowed_ips` unless the body gives new ones. The old secret stops working at once.
    #[oai(path = "/:id/rotate", method = "post")]
    async fn rotate(
        &self,
        auth: Auth,
        id: Path<Uuid>,
        body: OptionalJsonBody<RotateApiKey>,
        audit: Audit,
    ) -> ApiResult<Json<ApiKeyWithSecret>> {
        let allowed_ips = parse_allowed_ips(body.0.and_then(|b| b.allowed_ips))?;
        let scope = KeyScope {
            principal: auth.principal(),
        };
        let (db, keys) = (&self.state.db, &self.state.keys);
        let rotated = api_keys::rotate(db, keys, &scope, id.0, allowed_ips, &audit.0).await?;
        Ok(Json(with_secret(rotated)))
    }
}
