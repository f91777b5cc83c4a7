//! Operator commands for a fresh install and for scripts: `admin bootstrap`, `admin add-user`.
//!
//! Each prints `{"tenant", "user_id", "api_key"}` on stdout. They are idempotent: running one
//! again finds the tenant and user and rotates their CLI key (label `cli:<tenant>`), so a lost
//! key is replaced rather than duplicated, and the previous one stops working.
use anyhow::{Context, anyhow, bail};
use secrecy::ExposeSecret;
use serde::Serialize;
use uuid::Uuid;

use crate::{
    auth::{
        api_keys::{self, KeyVerifier},
        permissions::Permissions,
    },
    db::{BeginWrite, entities::Role},
    domain::{
        TenantScope, audit, members, memberships, retention,
        tenants::{self, TenantSlug},
        users::{self, Email},
    },
    error::ApiError,
    state::AppState,
};

/// What the commands print. Holds a secret, so it has no `Debug`: it is only ever serialised
/// to stdout.
#[derive(Serialize)]
pub struct Issued {
    pub tenant: String,
    pub user_id: Uuid,
    pub api_key: String,
}

/// Client-facing validation errors read well on a terminal too; the rest keep their context.
fn cli_error(err: impl Into<ApiError>) -> anyhow::Error {
    match err.into() {
        ApiError::Internal(inner) => inner,
        other => anyhow!("{other}"),
    }
}

/// Creates the tenant (if new) with `email` as its owner, and issues the owner's CLI key.
pub async fn bootstrap(state: &AppState, tenant_slug: &str, email: &str) -> anyhow::Result<Issued> {
    let (db, keys) = (&state.db, state.keys.as_ref());
    let slug = TenantSlug::parse(tenant_slug).map_err(|e| anyhow!("--tenant: {e}"))?;
    let email = Email::parse(email).map_err(|e| anyhow!("--email: {e}"))?;
    let txn = db
        .begin_write()
        .await
        .context("could not start a transaction")?;
    let (user, _) = users::find_or_create_by_email(&txn, &email).await?;
    let scope = match tenants::resolve(&txn, slug.as_str())
        .await
        .map_err(cli_error)?
    {
        Some(existing) => {
            if memberships::role_of(&txn, &existing, user.id).await? != Some(Role::Owner) {
                bail!(
                    "tenant {} already exists and {} is not its owner",
                    slug.as_str(),
                    email.as_str()
                );
            }
            existing
        }
        None => {
            tenants::create_with_owner(
                &txn,
                &slug,
                slug.as_str(),
                user.id,
                None,
                &audit::Context::operator(),
            )
            .await
            .map_err(cli_error)?
            .1
        }
    };
    let issued = issue_cli_key(&txn, keys, &scope, user.id).await?;
    txn.commit().await.context("could not commit")?;
    // With Redis, running servers pick the new role up on their next request.
    state.authz.membership_changed().await;
    Ok(issued)
}

/// Adds (or finds) the user by email, gives it `role` in the tenant through the same call
/// the members API uses (with its last-owner guard), and issues its CLI key.
pub async fn add_user(
    state: &AppState,
    tenant_slug: &str,
    email: &str,
    role: &str,
) -> anyhow::Result<Issued> {
    let role: Role = role.parse().map_err(|e| anyhow!("--role: {e}"))?;
    let email = Email::parse(email).map_err(|e| anyhow!("--email: {e}"))?;
    let txn = state
        .db
        .begin_write()
        .await
        .context("could not start a transaction")?;
    let scope = tenants::resolve(&txn, tenant_slug)
        .await
        .map_err(cli_error)?
        .ok_or_else(|| anyhow!("--tenant: no tenant with slug {tenant_slug:?}"))?;
    let (user, _) = users::find_or_create_by_email(&txn, &email).await?;
    // The same call the members API makes, with its last-owner guard; all or nothing.
    let previous = members::grant_in(&txn, &scope, user.id, role)
        .await
        .map_err(|e| anyhow!("{}: {}", email.as_str(), cli_error(e)))?;
    if previous != Some(role) {
        let event = audit::Event::success(audit::action::MEMBER_ROLE_CHANGED)
            .in_tenant(scope.id())
            .target("user", user.id)
            .detail(serde_json::json!({ "from": previous, "to": role }));
        audit::write(&txn, &audit::Context::operator(), event)
            .await
            .map_err(cli_error)?;
    }
    let issued = issue_cli_key(&txn, state.keys.as_ref(), &scope, user.id).await?;
    txn.commit().await.context("could not commit")?;
    // With Redis, running servers pick the new role up on their next request.
    state.authz.membership_changed().await;
    Ok(issued)
}

async fn issue_cli_key(
    db: &impl sea_orm::ConnectionTrait,
    keys: &KeyVerifier,
    tenant: &TenantScope,
    user_id: Uuid,
) -> anyhow::Result<Issued> {
    let label = format!("{}{}", api_keys::CLI_LABEL_PREFIX, tenant.slug());
    let slug = tenant.slug().to_owned();
    let existing = api_keys::find_active_by_label(db, user_id, tenant.id(), &label).await?;
    let (action, issued) = match existing {
        Some(existing) => (
            audit::action::API_KEY_ROTATED,
            api_keys::replace_secret(db, keys, existing, slug.clone()).await,
        ),
        None => (
            audit::action::API_KEY_CREATED,
            api_keys::insert_key(
                db,
                user_id,
                tenant,
                &label,
                &Permissions::all(),
                api_keys::KeyLimits::default(),
            )
            .await,
        ),
    };
    let (info, secret) = issued.map_err(cli_error)?;
    let event = api_keys::key_event(action, &info);
    audit::write(db, &audit::Context::operator(), event)
        .await
        .map_err(cli_error)?;
    Ok(Issued {
        tenant: slug,
        user_id,
        api_key: secret.expose_secret().to_owned(),
    })
}

/// Deletes what is past keeping (see [`crate::domain::retention`]).
pub async fn purge(state: &AppState) -> anyhow::Result<retention::Purged> {
    let days = state.settings.audit.retention_days;
    retention::purge(&state.db, chrono::Utc::now(), days)
        .await
        .map_err(cli_error)
}
