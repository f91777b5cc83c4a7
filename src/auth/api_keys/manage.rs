//! Creating, listing, revoking and rotating a user's API keys.
//!
//! A key acting on keys is held to its own limits: it sees only keys of its tenant and cannot
//! mint or rotate a key with permissions, a lifetime or client networks it lacks, so a leaked
//! key cannot escalate.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    NotSet, QueryFilter, QueryOrder, QuerySelect, Set,
};
use secrecy::SecretString;
use uuid::Uuid;

use super::{AllowedIps, KeyVerifier, token};
use crate::{
    auth::{Principal, permissions::Permissions},
    db::{
        BeginWrite,
        entities::{api_key, tenant},
    },
    domain::{OnUnique, Page, PageRequest, TenantScope, audit, memberships},
    error::{ApiError, ApiResult},
};

const LABEL_MAX: usize = 100;
/// Labels the admin CLI gives its keys (`cli:<tenant>`); reserved so the CLI finds only its own.
pub const CLI_LABEL_PREFIX: &str = "cli:";

/// What a client may set when creating a key; everything else is ours.
pub struct NewApiKey {
    pub label: String,
    pub tenant: TenantScope,
    pub permissions: Permissions,
    pub expires_at: Option<DateTime<Utc>>,
    /// `None`: unrestricted, or, asked for by a confined key, that key's own networks.
    pub allowed_ips: Option<AllowedIps>,
    pub require_dpop: bool,
}

/// What limits a stored key besides its permissions.
#[derive(Default)]
pub struct KeyLimits<'a> {
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_ips: Option<&'a AllowedIps>,
    /// Its machine tokens must be DPoP-bound.
    pub require_dpop: bool,
}

/// A key as listed: never the secret, never its hash.
#[derive(Debug, Clone)]
pub struct ApiKeyInfo {
    pub id: Uuid,
    pub label: String,
    pub prefix: String,
    pub tenant: String,
    pub tenant_id: Uuid,
    pub permissions: Permissions,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_ips: Option<AllowedIps>,
    pub require_dpop: bool,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Whose keys, seen by whom: the user, confined to a tenant when the caller is itself a key.
pub struct KeyScope<'a> {
    pub principal: &'a Principal,
}

impl KeyScope<'_> {
    fn visible(&self, key: &api_key::Model) -> bool {
        key.user_id == self.principal.user_id && self.principal.can_reach(key.tenant_id)
    }

    /// Creating, rotating and revoking keys takes the key itself or a session: a machine token
    /// is a short-lived, possibly DPoP-bound stand-in, and a leaked one must not turn into a
    /// permanent or unbound key, nor take its own key from its owner.
    fn may_manage(&self) -> ApiResult<()> {
        if self
            .principal
            .api_key()
            .is_some_and(|grant| grant.via_token.is_some())
        {
            return Err(ApiError::Forbidden(
                "a machine token cannot manage API keys".into(),
            ));
        }
        Ok(())
    }

    /// A key may hand out only what it holds itself: no permission it lacks, no lifetime
    /// beyond its own (so a leaked expiring key cannot mint or take over a permanent one), no
    /// client network outside its own (so a key confined to a CI runner's range cannot mint
    /// one usable from anywhere), and no escape from its DPoP requirement.
    fn may_grant(
        &self,
        permissions: &Permissions,
        expires_at: Option<DateTime<Utc>>,
        allowed_ips: Option<&AllowedIps>,
        require_dpop: bool,
    ) -> ApiResult<()> {
        self.may_manage()?;
        let Some(grant) = self.principal.api_key() else {
            return Ok(());
        };
        if !permissions.is_subset(&grant.permissions) {
            return Err(ApiError::Forbidden(
                "an API key cannot grant permissions it does not have".into(),
            ));
        }
        let outlives = match (grant.expires_at, expires_at) {
            (Some(mine), Some(theirs)) => theirs > mine,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if outlives {
            return Err(ApiError::Forbidden(
                "an API key cannot grant a lifetime beyond its own expiry".into(),
            ));
        }
        if let Some(mine) = &grant.allowed_ips
            && !allowed_ips.is_some_and(|theirs| theirs.within(mine))
        {
            return Err(ApiError::Forbidden(
                "an API key cannot grant allowed_ips beyond its own".into(),
            ));
        }
        if grant.require_dpop && !require_dpop {
            return Err(ApiError::Forbidden(
                "an API key that requires DPoP cannot grant a key that does not".into(),
            ));
        }
        Ok(())
    }

    /// A confined key's own networks: what a key it creates gets when none are given, since
    /// that is all it may grant.
    fn inherited_allowed_ips(&self) -> Option<AllowedIps> {
        self.principal.api_key()?.allowed_ips.clone()
    }
}

fn validate_label(label: &str) -> ApiResult<String> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > LABEL_MAX {
        return Err(ApiError::validation(
            "label",
            format!("must be 1 to {LABEL_MAX} characters"),
        ));
    }
    if label.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "label",
            "must not contain control characters",
        ));
    }
    if label.starts_with(CLI_LABEL_PREFIX) {
        return Err(ApiError::validation(
            "label",
            format!("{CLI_LABEL_PREFIX:?} is reserved for keys the admin CLI issues"),
        ));
    }
    Ok(label.to_owned())
}

fn info(row: api_key::Model, tenant_slug: String) -> ApiResult<ApiKeyInfo> {
    Ok(ApiKeyInfo {
        permissions: permissions_of(&row)?,
        allowed_ips: allowed_ips_of(&row)?,
        require_dpop: row.require_dpop,
        id: row.id,
        label: row.label,
        prefix: token::display_prefix(&row.lookup_id),
        tenant: tenant_slug,
        tenant_id: row.tenant_id,
        expires_at: row.expires_at,
        last_used_at: row.last_used_at,
        created_at: row.created_at,
    })
}

fn label_taken() -> crate::domain::Error {
    crate::domain::Error::conflict(
        "you already have an active API key with this label in this tenant",
    )
}

/// Creates a key; the returned secret is shown once and never stored.
pub async fn create(
    db: &DatabaseConnection,
    scope: &KeyScope<'_>,
    new: NewApiKey,
    ctx: &audit::Context,
) -> ApiResult<(ApiKeyInfo, SecretString)> {
    let label = validate_label(&new.label)?;
    let principal = scope.principal;
    if !principal.can_reach(new.tenant.id())
        || memberships::role_of(db, &new.tenant, principal.user_id)
            .await?
            .is_none()
    {
        return Err(ApiError::validation("tenant", "no such tenant among yours"));
    }
    let allowed_ips = new.allowed_ips.or_else(|| scope.inherited_allowed_ips());
    scope.may_grant(
        &new.permissions,
        new.expires_at,
        allowed_ips.as_ref(),
        new.require_dpop,
    )?;
    if new.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::validation("expires_at", "must be in the future"));
    }
    let txn = db.begin_write().await?;
    let created = insert_key(
        &txn,
        principal.user_id,
        &new.tenant,
        &label,
        &new.permissions,
        KeyLimits {
            expires_at: new.expires_at,
            allowed_ips: allowed_ips.as_ref(),
            require_dpop: new.require_dpop,
        },
    )
    .await?;
    audit::write(
        &txn,
        ctx,
        key_event(audit::action::API_KEY_CREATED, &created.0),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// The record of a change to a key: which key, in which tenant, with what (never its secret).
pub fn key_event(action: &'static str, key: &ApiKeyInfo) -> audit::Event {
    audit::Event::success(action)
        .in_tenant(key.tenant_id)
        .target("api_key", key.id)
        .detail(serde_json::json!({
            "label": key.label,
            "permissions": key.permissions,
            "expires_at": key.expires_at,
            "allowed_ips": key.allowed_ips,
            "require_dpop": key.require_dpop,
        }))
}

/// Stores a new key for `user_id` in `tenant`, after the caller's checks.
pub async fn insert_key(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    tenant: &TenantScope,
    label: &str,
    permissions: &Permissions,
    limits: KeyLimits<'_>,
) -> ApiResult<(ApiKeyInfo, SecretString)> {
    let key = token::generate();
    let row = api_key::ActiveModel {
        user_id: Set(user_id),
        tenant_id: Set(tenant.id()),
        label: Set(label.to_owned()),
        lookup_id: Set(key.lookup_id),
        secret_hash: Set(key.hash),
        permissions: Set(serde_json::to_value(permissions).map_err(anyhow::Error::from)?),
        expires_at: Set(limits.expires_at),
        allowed_ips: Set(stored_allowed_ips(limits.allowed_ips)?),
        require_dpop: Set(limits.require_dpop),
        last_used_at: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await
    .on_unique(label_taken)?;
    Ok((info(row, tenant.slug().to_owned())?, key.secret))
}

/// The caller's active keys, newest first, one page.
pub async fn list(
    db: &DatabaseConnection,
    scope: &KeyScope<'_>,
    page: PageRequest,
) -> ApiResult<Page<ApiKeyInfo>> {
    let mut query = api_key::Entity::find()
        .filter(api_key::Column::UserId.eq(scope.principal.user_id))
        .filter(api_key::Column::RevokedAt.is_null());
    if let Some(tenant_id) = scope.principal.bound_tenant() {
        query = query.filter(api_key::Column::TenantId.eq(tenant_id));
    }
    let rows = query
        .order_by_desc(api_key::Column::CreatedAt)
        .order_by_desc(api_key::Column::Id)
        .offset(page.offset)
        .limit(page.limit + 1)
        .find_also_related(tenant::Entity)
        .all(db)
        .await?;
    let items = rows
        .into_iter()
        .map(|(row, tenant)| info(row, tenant.map(|t| t.slug).unwrap_or_default()))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Page::from_overfetch(items, page))
}

/// An active key of the caller's, or 404 (also for other users' keys: no existence oracle).
async fn find_visible(
    db: &DatabaseConnection,
    scope: &KeyScope<'_>,
    id: Uuid,
) -> ApiResult<(api_key::Model, String)> {
    let found = api_key::Entity::find_by_id(id)
        .filter(api_key::Column::RevokedAt.is_null())
        .find_also_related(tenant::Entity)
        .one(db)
        .await?;
    match found {
        Some((row, Some(tenant))) if scope.visible(&row) => Ok((row, tenant.slug)),
        _ => Err(ApiError::NotFound),
    }
}

fn permissions_of(row: &api_key::Model) -> ApiResult<Permissions> {
    serde_json::from_value(row.permissions.clone()).map_err(|e| {
        ApiError::Internal(anyhow::Error::from(e).context("stored API key permissions"))
    })
}

fn allowed_ips_of(row: &api_key::Model) -> ApiResult<Option<AllowedIps>> {
    row.allowed_ips
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| {
            ApiError::Internal(anyhow::Error::from(e).context("stored API key allowed_ips"))
        })
}

/// NULL for no restriction, never an empty array.
fn stored_allowed_ips(allowed_ips: Option<&AllowedIps>) -> ApiResult<Option<serde_json::Value>> {
    allowed_ips
        .map(serde_json::to_value)
        .transpose()
        .map_err(|e| ApiError::Internal(anyhow::Error::from(e).context("encode allowed_ips")))
}

/// Revokes a key: dead at once, on every instance.
pub async fn revoke(
    db: &DatabaseConnection,
    verifier: &KeyVerifier,
    scope: &KeyScope<'_>,
    id: Uuid,
    ctx: &audit::Context,
) -> ApiResult<()> {
    scope.may_manage()?;
    let (row, tenant_slug) = find_visible(db, scope, id).await?;
    // Announce first: if the store is down nothing has changed and the caller may retry.
    verifier.announce_revocation(&row.lookup_id).await?;
    let txn = db.begin_write().await?;
    let row = api_key::ActiveModel {
        id: Set(row.id),
        revoked_at: Set(Some(Utc::now())),
        ..Default::default()
    }
    .update(&txn)
    .await?;
    let revoked = info(row, tenant_slug)?;
    audit::write(
        &txn,
        ctx,
        key_event(audit::action::API_KEY_REVOKED, &revoked),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Replaces a key's secret, keeping its id, label, tenant, permissions and expiry, and its
/// `allowed_ips` unless new ones are given. The old secret is dead at once.
pub async fn rotate(
    db: &DatabaseConnection,
    verifier: &KeyVerifier,
    scope: &KeyScope<'_>,
    id: Uuid,
    allowed_ips: Option<AllowedIps>,
    ctx: &audit::Context,
) -> ApiResult<(ApiKeyInfo, SecretString)> {
    let (row, tenant_slug) = find_visible(db, scope, id).await?;
    let allowed_ips = match allowed_ips {
        Some(replacement) => Some(replacement),
        None => allowed_ips_of(&row)?,
    };
    scope.may_grant(
        &permissions_of(&row)?,
        row.expires_at,
        allowed_ips.as_ref(),
        row.require_dpop,
    )?;
    let allowed_ips = Set(stored_allowed_ips(allowed_ips.as_ref())?);
    let txn = db.begin_write().await?;
    let rotated = reissue(&txn, verifier, row, tenant_slug, allowed_ips).await?;
    audit::write(
        &txn,
        ctx,
        key_event(audit::action::API_KEY_ROTATED, &rotated.0),
    )
    .await?;
    txn.commit().await?;
    Ok(rotated)
}

/// Gives an existing key a new secret, keeping everything else; the old one is announced dead
/// first.
pub async fn replace_secret(
    db: &impl ConnectionTrait,
    verifier: &KeyVerifier,
    row: api_key::Model,
    tenant_slug: String,
) -> ApiResult<(ApiKeyInfo, SecretString)> {
    reissue(db, verifier, row, tenant_slug, NotSet).await
}

/// A new secret for `row`, and its new stored `allowed_ips` when set.
async fn reissue(
    db: &impl ConnectionTrait,
    verifier: &KeyVerifier,
    row: api_key::Model,
    tenant_slug: String,
    allowed_ips: ActiveValue<Option<serde_json::Value>>,
) -> ApiResult<(ApiKeyInfo, SecretString)> {
    verifier.announce_revocation(&row.lookup_id).await?;
    let key = token::generate();
    let row = api_key::ActiveModel {
        id: Set(row.id),
        lookup_id: Set(key.lookup_id),
        secret_hash: Set(key.hash),
        allowed_ips,
        last_used_at: Set(None),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok((info(row, tenant_slug)?, key.secret))
}

/// The user's active key with this label in this tenant, if any.
pub async fn find_active_by_label(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    tenant_id: Uuid,
    label: &str,
) -> Result<Option<api_key::Model>, sea_orm::DbErr> {
    api_key::Entity::find()
        .filter(api_key::Column::UserId.eq(user_id))
        .filter(api_key::Column::TenantId.eq(tenant_id))
        .filter(api_key::Column::Label.eq(label))
        .filter(api_key::Column::RevokedAt.is_null())
        .one(db)
        .await
}
