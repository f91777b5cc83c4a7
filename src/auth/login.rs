//! The login flow around a provider: server-side flow state (PKCE verifier, nonce, state;
//! single use, 10 minutes, bound to the browser that started it) and mapping the provider's
//! identity to our user.
//!
//! Accounts are linked only on an address the provider says it verified: an unverified email
//! never links to an existing user nor accepts an invitation.
use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{providers::ExternalIdentity, secrets::sha256_hex as hash};
use crate::{
    db::entities::{identity, invitation, user},
    domain::{memberships, users},
    store::{EphemeralStore, Store, StoreError},
};

pub const FLOW_TTL: Duration = Duration::from_secs(600);

#[derive(Serialize, Deserialize)]
pub struct Flow {
    pub provider: String,
    pub pkce_verifier: String,
    pub nonce: Option<String>,
    /// Hash of the browser-binding cookie set when the flow started.
    pub binding: String,
}

fn flow_key(state: &str) -> String {
    format!("login:{}", hash(state))
}

pub async fn save_flow(store: &Store, state: &str, flow: &Flow) -> Result<(), StoreError> {
    let value = serde_json::to_vec(flow).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    store.set(&flow_key(state), &value, FLOW_TTL).await
}

/// Takes the flow for `state`: a state works once, then never again.
pub async fn take_flow(store: &Store, state: &str) -> Result<Option<Flow>, StoreError> {
    Ok(store
        .take(&flow_key(state))
        .await?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
}

pub struct LoggedIn {
    pub user: user::Model,
    /// Whether pending invitations became memberships (the policy must reload).
    pub joined_tenants: bool,
}

/// The user for `(provider, subject)`: found, linked by verified email, or created; and any
/// pending invitations for a verified address accepted. One transaction.
pub async fn sign_in(
    db: &DatabaseConnection,
    provider: &str,
    identity: &ExternalIdentity,
) -> Result<LoggedIn, sea_orm::DbErr> {
    let now = Utc::now();
    let verified_email = identity
        .email
        .as_deref()
        .filter(|_| identity.email_verified);
    let txn = db.begin().await?;
    let existing = identity::Entity::find()
        .filter(identity::Column::Provider.eq(provider))
        .filter(identity::Column::Subject.eq(&identity.subject))
        .one(&txn)
        .await?;
    let user = match existing {
        Some(row) => {
            identity::ActiveModel {
                id: Set(row.id),
                email: Set(identity.email.clone()),
                email_verified: Set(identity.email_verified),
                last_login_at: Set(now),
                ..Default::default()
            }
            .update(&txn)
            .await?;
            let user = users::find(&txn, row.user_id)
                .await?
                .ok_or_else(|| sea_orm::DbErr::RecordNotFound("identity without user".into()))?;
            // The provider has verified the address since this user was created: adopt it,
            // unless another user already holds it (accounts are never merged silently).
            match verified_email {
                Some(email) if user.email.is_none() => {
                    let taken = user::Entity::find()
                        .filter(user::Column::Email.eq(email))
                        .one(&txn)
                        .await?
                        .is_some();
                    if taken {
                        user
                    } else {
                        user::ActiveModel {
                            id: Set(user.id),
                            email: Set(Some(email.to_owned())),
                            updated_at: Set(now),
                            ..Default::default()
                        }
                        .update(&txn)
                        .await?
                    }
                }
                _ => user,
            }
        }
        None => {
            let linked = match verified_email {
                Some(email) => {
                    user::Entity::find()
                        .filter(user::Column::Email.eq(email))
                        .one(&txn)
                        .await?
                }
                None => None,
            };
            let user = match linked {
                Some(user) => user,
                None => {
                    user::ActiveModel {
                        id: Set(Uuid::now_v7()),
                        email: Set(verified_email.map(str::to_owned)),
                        display_name: Set(identity.name.clone()),
                        created_at: Set(now),
                        updated_at: Set(now),
                    }
                    .insert(&txn)
                    .await?
                }
            };
            identity::ActiveModel {
                id: Set(Uuid::now_v7()),
                user_id: Set(user.id),
                provider: Set(provider.to_owned()),
                subject: Set(identity.subject.clone()),
                email: Set(identity.email.clone()),
                email_verified: Set(identity.email_verified),
                created_at: Set(now),
                last_login_at: Set(now),
            }
            .insert(&txn)
            .await?;
            user
        }
    };
    let mut joined_tenants = false;
    // Invitations go to the user's own verified address only.
    if let Some(email) = verified_email.filter(|e| user.email.as_deref() == Some(*e)) {
        let pending = invitation::Entity::find()
            .filter(invitation::Column::Email.eq(email))
            .filter(invitation::Column::AcceptedAt.is_null())
            .filter(invitation::Column::ExpiresAt.gt(now))
            .all(&txn)
            .await?;
        for invite in pending {
            if memberships::role_of(&txn, invite.tenant_id, user.id)
                .await?
                .is_none()
            {
                memberships::set_role(&txn, invite.tenant_id, user.id, invite.role).await?;
                joined_tenants = true;
            }
            invitation::ActiveModel {
                id: Set(invite.id),
                accepted_at: Set(Some(now)),
                ..Default::default()
            }
            .update(&txn)
            .await?;
        }
    }
    txn.commit().await?;
    Ok(LoggedIn {
        user,
        joined_tenants,
    })
}
