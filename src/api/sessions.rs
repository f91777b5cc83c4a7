//! Our sessions: refresh, logout, logout everywhere.
use poem::{Request, web::cookie::CookieJar};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Header, payload::Json};
use secrecy::ExposeSecret;

use super::{ApiTags, Audit, Auth, Resource};
use crate::{
    auth::{
        cookies::{self, csrf_failed},
        login,
        sessions::{self, RefreshOutcome},
    },
    domain::audit,
    error::{ApiError, ApiResult},
    http::audit_context,
    state::AppState,
    telemetry::metrics,
};

pub struct SessionsApi {
    state: AppState,
}

impl Resource for SessionsApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A refreshed session. Native clients (`X-Refresh-Token`) get both tokens here; browsers get
/// them only as `HttpOnly` cookies, so no script on the page can read them from this body.
#[derive(Object)]
struct TokenResponse {
    #[oai(skip_serializing_if_is_none)]
    access_token: Option<String>,
    token_type: String,
    expires_in: i64,
    #[oai(skip_serializing_if_is_none)]
    refresh_token: Option<String>,
}

#[derive(ApiResponse)]
enum LoggedOut {
    /// The session is over; its tokens are refused everywhere from now on.
    #[oai(status = 204)]
    Done,
}

#[OpenApi(tag = "ApiTags::Auth")]
impl SessionsApi {
    /// Rotates the refresh token (cookie, or `X-Refresh-Token` for native clients) and issues a
    /// new access token. A refresh token works once: presenting a spent one ends its session.
    #[oai(path = "/auth/refresh", method = "post")]
    async fn refresh(
        &self,
        req: &Request,
        #[oai(name = "X-Refresh-Token")] header_token: Header<Option<String>>,
        jar: &CookieJar,
    ) -> ApiResult<Json<TokenResponse>> {
        let state = &self.state;
        let (presented, via_cookie) = match header_token.0 {
            Some(token) => (token, false),
            None => (
                jar.get(cookies::REFRESH)
                    .map(|c| c.value_str().to_owned())
                    .ok_or(ApiError::Unauthorized)?,
                true,
            ),
        };
        if via_cookie && !state.auth.csrf_ok(req) {
            return Err(csrf_failed());
        }
        let lifetimes = sessions::Lifetimes::from_settings(&state.settings.auth);
        let ctx = audit_context(req);
        match sessions::rotate(&state.db, &presented, lifetimes, &ctx).await? {
            RefreshOutcome::Rotated { session, refresh } => {
                let (access, _) = state.tokens.issue(session.user_id, session.id)?;
                if via_cookie {
                    let auth = &state.settings.auth;
                    cookies::set_session(jar, auth, &access, refresh.expose_secret());
                }
                Ok(Json(TokenResponse {
                    access_token: (!via_cookie).then_some(access),
                    token_type: "Bearer".into(),
                    expires_in: state.tokens.ttl_secs(),
                    refresh_token: (!via_cookie).then(|| refresh.expose_secret().to_owned()),
                }))
            }
            // Leave the cookies alone: the request that won has just set the new ones.
            RefreshOutcome::JustSpent => Err(ApiError::Conflict(
                "this refresh token was just used by a concurrent request; retry with the current one"
                    .into(),
            )),
            RefreshOutcome::Reused { session } => {
                let ttl = state.settings.auth.revocation_ttl();
                sessions::announce_revoked(&state.store, session.id, None, ttl)
                    .await
                    .map_err(login::unavailable)?;
                metrics::refresh_token_reuse();
                state.auth.failed(req, "refresh_token", "reused").await;
                cookies::clear_session(jar);
                Err(ApiError::Unauthorized)
            }
            RefreshOutcome::Invalid => {
                state.auth.failed(req, "refresh_token", "unknown").await;
                cookies::clear_session(jar);
                Err(ApiError::Unauthorized)
            }
        }
    }

    /// Ends this session: its refresh tokens are spent and its access tokens refused by every
    /// instance until they expire. Works with the access token, or with only the refresh
    /// cookie once the access token has expired.
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(&self, req: &Request, jar: &CookieJar) -> ApiResult<LoggedOut> {
        let state = &self.state;
        // Resolved here rather than by the middleware: a browser whose access token has
        // expired must still be able to end its session with the refresh cookie.
        let (session_id, token_id, user_id) = match state.auth.resolve(req).await {
            Ok(principal) => {
                let grant = principal.session().ok_or_else(|| {
                    ApiError::BadRequest(
                        "logout ends a session; API keys are revoked instead".into(),
                    )
                })?;
                if grant.via_cookie && !state.auth.csrf_ok(req) {
                    return Err(csrf_failed());
                }
                (grant.session_id, Some(grant.token_id), principal.user_id)
            }
            Err(ApiError::Unauthorized) => {
                let refresh = jar.get(cookies::REFRESH).ok_or(ApiError::Unauthorized)?;
                if !state.auth.csrf_ok(req) {
                    return Err(csrf_failed());
                }
                let session = sessions::find_by_refresh(&state.db, refresh.value_str()).await?;
                cookies::clear_session(jar);
                let Some(session) = session else {
                    state.auth.failed(req, "refresh_token", "unknown").await;
                    return Err(ApiError::Unauthorized);
                };
                if session.revoked_at.is_some() {
                    state.auth.failed(req, "refresh_token", "revoked").await;
                    return Err(ApiError::Unauthorized);
                }
                (session.id, None, session.user_id)
            }
            Err(other) => return Err(other),
        };
        let ctx = audit_context(req).as_user(user_id);
        sessions::end(state, session_id, token_id, &ctx, audit::action::LOGOUT).await?;
        cookies::clear_session(jar);
        Ok(LoggedOut::Done)
    }

    /// Ends every session of the user, on every device.
    #[oai(path = "/auth/logout-all", method = "post")]
    async fn logout_all(&self, auth: Auth, jar: &CookieJar, audit: Audit) -> ApiResult<LoggedOut> {
        let principal = auth.principal();
        if principal.session().is_none() {
            return Err(ApiError::BadRequest(
                "logout ends sessions; API keys are revoked instead".into(),
            ));
        }
        for session in sessions::live_sessions(&self.state.db, principal.user_id).await? {
            let action = audit::action::LOGOUT_ALL;
            sessions::end(&self.state, session.id, None, &audit.0, action).await?;
        }
        cookies::clear_session(jar);
        Ok(LoggedOut::Done)
    }
}
