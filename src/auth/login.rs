//! The login flow around a provider: server-side flow state (PKCE verifier, nonce, state;
//! single use, 10 minutes, bound to the browser that started it) and mapping the provider's
//! identity to our user.
//!
//! A provider's verified address counts only where the provider is configured to vouch for
//! it (`link_verified_email`, within `allowed_email_domains`): only such an address is held
//! by a user (and so accepts invitations) or links to the user already holding it. Any other
//! provider's address stays on its identity row: a provider that lets its users mark any
//! address verified can neither take an account over nor plant an address for later.
use std::time::Duration;

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{
    providers::{ExternalIdentity, ProviderEntry, ProviderError},
    secrets::{self, random_token, sha256_hex as hash},
    sessions,
};
use crate::{
    config::Linking,
    db::{
        BeginWrite,
        entities::{identity, user},
    },
    domain::{self, audit, fields, users},
    error::{ApiError, ApiResult},
    state::AppState,
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

/// The user for `(provider, subject)`: found; or, for a new identity, the existing user with
/// the address this provider vouches for ([`Linking`]); else a new user. One
/// transaction. Invitations are not accepted here: the user accepts or declines each.
pub async fn sign_in(
    db: &DatabaseConnection,
    provider: &str,
    linking: &Linking,
    identity: &ExternalIdentity,
) -> domain::Result<user::Model> {
    let now = Utc::now();
    let verified_email = identity
        .email
        .as_deref()
        .filter(|_| identity.email_verified)
        .filter(|email| linking.allows(email));
    let txn = db.begin_write().await?;
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
            let holder = match verified_email {
                Some(email) => {
                    user::Entity::find()
                        .filter(user::Column::Email.eq(email))
                        .one(&txn)
                        .await?
                }
                None => None,
            };
            let user = match holder {
                // The provider vouches for the address: its holder signs in.
                Some(user) => user,
                None => {
                    user::ActiveModel {
                        email: Set(verified_email.map(str::to_owned)),
                        display_name: Set(display_name(identity)),
                        ..Default::default()
                    }
                    .insert(&txn)
                    .await?
                }
            };
            identity::ActiveModel {
                user_id: Set(user.id),
                provider: Set(provider.to_owned()),
                subject: Set(identity.subject.clone()),
                email: Set(identity.email.clone()),
                email_verified: Set(identity.email_verified),
                last_login_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
            user
        }
    };
    let user = take_name(&txn, user, display_name(identity)).await?;
    txn.commit().await?;
    Ok(user)
}

/// The name the provider gives the user, made fit to show ([`fields::printable`]): at most
/// 200 characters.
fn display_name(identity: &ExternalIdentity) -> Option<String> {
    let name = fields::printable(identity.name.as_deref()?, 200);
    (!name.is_empty()).then_some(name)
}

/// The user as the provider names them on this login: people change their names, and the
/// latest login's provider is the best source there is.
async fn take_name(
    txn: &impl sea_orm::ConnectionTrait,
    user: user::Model,
    name: Option<String>,
) -> Result<user::Model, sea_orm::DbErr> {
    match name {
        Some(name) if user.display_name.as_ref() != Some(&name) => {
            user::ActiveModel {
                id: Set(user.id),
                display_name: Set(Some(name)),
                ..Default::default()
            }
            .update(txn)
            .await
        }
        _ => Ok(user),
    }
}

/// The flow state could not be kept or read: nobody can log in until the store is back.
pub fn unavailable(err: StoreError) -> ApiError {
    tracing::error!(error = %err, "login state unavailable");
    ApiError::Unavailable("login is temporarily unavailable".into())
}

fn provider_failure(err: ProviderError) -> ApiError {
    tracing::warn!(error = %err, "login failed at the identity provider");
    match err {
        ProviderError::Unavailable(_) => {
            ApiError::Unavailable("the identity provider is unreachable".into())
        }
        ProviderError::Invalid(_) => {
            ApiError::BadRequest("the identity provider's answer failed validation".into())
        }
    }
}

/// Where to send a browser to end its session at `provider` too (RP-Initiated Logout), if
/// that provider is configured for it and offers it; it comes back to the start page.
pub async fn end_session_url(state: &AppState, provider: &str) -> ApiResult<String> {
    let entry = state
        .providers
        .get(provider)
        .filter(|p| p.end_session)
        .ok_or(ApiError::NotFound)?;
    let back = state
        .public_url
        .join("/")
        .map_err(|e| ApiError::Internal(e.into()))?;
    let url = entry
        .provider
        .end_session_url(&back)
        .await
        .map_err(provider_failure)?
        .ok_or(ApiError::NotFound)?;
    Ok(url.to_string())
}

/// The provider `session` logged in through, if logout may end its session there too.
pub async fn provider_to_end(
    state: &AppState,
    session: uuid::Uuid,
) -> Result<Option<std::sync::Arc<ProviderEntry>>, sea_orm::DbErr> {
    Ok(sessions::provider_of(&state.db, session)
        .await?
        .and_then(|name| state.providers.get(&name))
        .filter(|p| p.end_session))
}

/// A login on its way to the provider.
pub struct Started {
    /// The provider's authorization URL, with PKCE (S256), state and nonce.
    pub redirect: String,
    /// The browser-binding value, for the login cookie.
    pub binding: String,
}

/// Starts a login: the flow state stays on the server for [`FLOW_TTL`], usable once, bound to
/// the browser that receives `binding`.
pub async fn start(state: &AppState, provider: &str) -> ApiResult<Started> {
    let entry = state.providers.get(provider).ok_or(ApiError::NotFound)?;
    let start = entry.provider.start().await.map_err(provider_failure)?;
    let binding = random_token();
    let flow = Flow {
        provider: entry.name.clone(),
        pkce_verifier: start.pkce_verifier,
        nonce: start.nonce,
        binding: hash(&binding),
    };
    save_flow(&state.store, &start.state, &flow)
        .await
        .map_err(unavailable)?;
    Ok(Started {
        redirect: start.url.to_string(),
        binding,
    })
}

/// What the provider's redirect back to us carries.
pub struct Callback<'a> {
    pub provider: &'a str,
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The login cookie this browser sent.
    pub binding: Option<&'a str>,
    /// Who is logging in from where (the user is named once known).
    pub audit: &'a audit::Context,
    /// Whom failed logins are sampled by ([`crate::ratelimit::sampling_key`]).
    pub sampling_key: String,
}

/// A finished login: the user and the new session's tokens.
pub struct SignedIn {
    pub user: user::Model,
    pub access_token: String,
    pub refresh_token: SecretString,
}

/// A login that did not finish: why (a fixed word, for the audit trail) and the answer.
struct Failed {
    reason: &'static str,
    error: ApiError,
}

fn failed(reason: &'static str) -> impl FnOnce(ApiError) -> Failed {
    move |error| Failed { reason, error }
}

/// Finishes a login: the state (single use, this browser), the provider's answer, the code
/// exchange and the ID token's validation; then the user, a new session, and the record.
/// A failed login is recorded too (the first per client address and reason each minute).
pub async fn finish(state: &AppState, callback: Callback<'_>) -> ApiResult<SignedIn> {
    // Only a configured provider's name: the path segment is whatever the client sent.
    let provider = state
        .providers
        .get(callback.provider)
        .map_or_else(|| "unknown".to_owned(), |p| p.name.clone());
    let ctx = callback.audit.clone();
    let key = format!("login:{}", callback.sampling_key);
    match attempt(state, callback).await {
        Ok(signed_in) => Ok(signed_in),
        Err(Failed { reason, error }) => {
            let event = audit::Event::failure(audit::action::LOGIN)
                .detail(serde_json::json!({ "provider": provider, "reason": reason }));
            state
                .audit
                .sampled(format!("{key}:{reason}"), &ctx, event)
                .await;
            Err(error)
        }
    }
}

async fn attempt(state: &AppState, callback: Callback<'_>) -> Result<SignedIn, Failed> {
    let state_param = callback
        .state
        .ok_or_else(|| ApiError::BadRequest("missing state".into()))
        .map_err(failed("missing_state"))?;
    let flow = take_flow(&state.store, &state_param)
        .await
        .map_err(unavailable)
        .map_err(failed("store_unavailable"))?
        .ok_or_else(|| ApiError::BadRequest("unknown, expired or already used login state".into()))
        .map_err(failed("unknown_state"))?;
    let binding = callback.binding.map(hash);
    if flow.provider != callback.provider
        || !binding.is_some_and(|b| secrets::equal(&b, &flow.binding))
    {
        return Err(failed("other_browser")(ApiError::BadRequest(
            "this login was not started by this browser".into(),
        )));
    }
    if let Some(error) = callback.error {
        let clean = |s: String| fields::printable(&s, 200);
        let description = callback.error_description.map(clean).unwrap_or_default();
        return Err(failed("provider_refused")(ApiError::BadRequest(
            format!(
                "the identity provider refused the login: {} {description}",
                clean(error)
            )
            .trim_end()
            .to_owned(),
        )));
    }
    let code = callback
        .code
        .ok_or_else(|| ApiError::BadRequest("missing code".into()))
        .map_err(failed("missing_code"))?;
    let entry = state
        .providers
        .get(callback.provider)
        .ok_or(ApiError::NotFound)
        .map_err(failed("unknown_provider"))?;
    let identity = entry
        .provider
        .finish(&code, &flow.pkce_verifier, flow.nonce.as_deref())
        .await
        .map_err(|err| {
            let reason = match err {
                ProviderError::Unavailable(_) => "provider_unavailable",
                ProviderError::Invalid(_) => "identity_invalid",
            };
            failed(reason)(provider_failure(err))
        })?;
    let internal = |err: ApiError| failed("internal")(err);
    let user = sign_in(&state.db, &entry.name, &entry.linking, &identity)
        .await
        .map_err(|e| internal(e.into()))?;
    let lifetimes = sessions::Lifetimes::from_settings(&state.settings.auth);
    let (session, refresh_token) =
        sessions::start(&state.db, user.id, &entry.name, lifetimes, callback.audit)
            .await
            .map_err(|e| internal(e.into()))?;
    let (access_token, _) = state
        .tokens
        .issue(user.id, session.id)
        .map_err(|e| internal(e.into()))?;
    Ok(SignedIn {
        user,
        access_token,
        refresh_token,
    })
}
