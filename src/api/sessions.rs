//! Our sessions: refresh, logout, logout everywhere; for browsers also the logout page and the
//! way on to the provider's own logout.
use poem::{
    Request,
    web::{Form, cookie::CookieJar},
};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path},
    payload::Json,
};
use secrecy::ExposeSecret;
use serde::Deserialize;
use uuid::Uuid;

use super::{
    ApiTags, Resource,
    pages::{self, HtmlPage},
};
use crate::{
    auth::{
        cookies::{self, csrf_failed},
        login,
        providers::ProviderEntry,
        sessions::{self, RefreshOutcome, Refused},
    },
    domain::audit,
    error::{ApiError, ApiResult},
    http::audit_context,
    ratelimit::{self, Policy},
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
    /// The same, for a page's form (it carries `csrf`): back to the start page.
    #[oai(status = 303)]
    SeeOther(#[oai(header = "Location")] String),
    /// The same, for a page's form that asked to end the provider's session too: a page
    /// leading there.
    #[oai(status = 200)]
    Page(HtmlPage),
}

impl LoggedOut {
    /// The answer for how the logout was asked: an API call, or a page's form (which may have
    /// asked to go on to `end_at`'s logout).
    fn answer(form: Option<&LogoutForm>, end_at: Option<&ProviderEntry>) -> Self {
        match (form.filter(|f| f.sent_by_a_page()), end_at) {
            (None, _) => LoggedOut::Done,
            (Some(_), Some(provider)) => LoggedOut::Page(pages::signed_out_page(provider)),
            (Some(_), None) => LoggedOut::SeeOther("/".into()),
        }
    }
}

/// What the logout forms on the pages send (`application/x-www-form-urlencoded`).
#[derive(Deserialize)]
struct LogoutForm {
    /// The CSRF cookie's value, as the page rendered it ([`pages::session_forms`]).
    csrf: Option<String>,
    /// Present: end the session at the provider too, where it allows that.
    end_session: Option<String>,
}

impl LogoutForm {
    /// Sent by one of our pages, which always render the `csrf` field: answered for a
    /// browser (a redirect or a page). Any other form body (`curl -d ''`) is an API call,
    /// answered 204 as ever.
    fn sent_by_a_page(&self) -> bool {
        self.csrf.is_some()
    }
}

#[derive(ApiResponse)]
enum ToProvider {
    /// To the provider's logout (RP-Initiated Logout), which sends the browser back to `/`.
    #[oai(status = 303)]
    SeeOther(#[oai(header = "Location")] String),
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
            RefreshOutcome::Refused(refused) => Err(self.refused(req, jar, refused).await),
        }
    }

    /// Ends this session: its refresh tokens are spent and its access tokens refused by every
    /// instance until they expire. Works with the access token, or with only the refresh
    /// cookie once the access token has expired.
    ///
    /// Pages post a form instead (`csrf`: the CSRF cookie's value; `end_session`: offer the
    /// provider's logout next) and are answered with a redirect to `/` or a page.
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(
        &self,
        req: &Request,
        jar: &CookieJar,
        form: Option<Form<LogoutForm>>,
    ) -> ApiResult<LoggedOut> {
        let state = &self.state;
        let form = form.map(|Form(form)| form);
        let ending = self.session_to_end(req, jar, form.as_ref()).await?;
        let ctx = audit_context(req).as_user(ending.user);
        let action = audit::action::LOGOUT;
        sessions::end(state, ending.session, ending.token, &ctx, action).await?;
        cookies::clear_session(jar);
        let provider = if form.as_ref().is_some_and(|f| f.end_session.is_some()) {
            login::provider_to_end(state, ending.session).await?
        } else {
            None
        };
        Ok(LoggedOut::answer(form.as_ref(), provider.as_deref()))
    }

    /// A page for a browser that opened the logout address: logging out changes state, so it
    /// is a POST, and this page offers the button that sends it.
    #[oai(path = "/auth/logout", method = "get")]
    async fn logout_page(&self, req: &Request) -> HtmlPage {
        let visitor = pages::visitor(&self.state, req).await;
        pages::logout_page(visitor.as_ref())
    }

    /// Sends the browser on to end its session at the provider (OpenID RP-Initiated Logout),
    /// for providers configured with `end_session`; it comes back to `/`. Changes nothing here.
    #[oai(path = "/auth/end-session/:provider", method = "get")]
    async fn end_session(&self, provider: Path<String>) -> ApiResult<ToProvider> {
        let url = login::end_session_url(&self.state, &provider.0).await?;
        Ok(ToProvider::SeeOther(url))
    }

    /// Ends every session of the user, on every device. Authenticated like `/auth/logout` (a
    /// spent or expired refresh token ends nothing here), and counted against the user's
    /// per-principal rate limit; a page's form is answered with a redirect to `/`.
    #[oai(path = "/auth/logout-all", method = "post")]
    async fn logout_all(
        &self,
        req: &Request,
        jar: &CookieJar,
        form: Option<Form<LogoutForm>>,
    ) -> ApiResult<LoggedOut> {
        let form = form.map(|Form(form)| form);
        let ending = self.session_to_end(req, jar, form.as_ref()).await?;
        let limiter = &self.state.limiter;
        let key = ratelimit::user_key(ending.user);
        ratelimit::spend(limiter, req, Policy::PerPrincipal, &key).await?;
        let ctx = audit_context(req).as_user(ending.user);
        for session in sessions::live_sessions(&self.state.db, ending.user).await? {
            let action = audit::action::LOGOUT_ALL;
            sessions::end(&self.state, session.id, None, &ctx, action).await?;
        }
        cookies::clear_session(jar);
        Ok(LoggedOut::answer(form.as_ref(), None))
    }
}

/// What a logout ends: the caller's session, the access token it came with, its user.
struct Ending {
    session: Uuid,
    token: Option<Uuid>,
    user: Uuid,
}

impl SessionsApi {
    /// The session a logout ends. Resolved here rather than by the middleware: a browser
    /// whose access token has expired must still be able to end its session with the refresh
    /// cookie, and a page's form carries its CSRF token in a field only the handler reads.
    async fn session_to_end(
        &self,
        req: &Request,
        jar: &CookieJar,
        form: Option<&LogoutForm>,
    ) -> ApiResult<Ending> {
        let state = &self.state;
        let csrf_ok = || {
            let token = form.and_then(|f| f.csrf.as_deref());
            state.auth.csrf_ok_with_form(req, token)
        };
        match state.auth.resolve(req).await {
            Ok(principal) => {
                let grant = principal.session().ok_or_else(|| {
                    ApiError::BadRequest(
                        "logout ends sessions; API keys are revoked instead".into(),
                    )
                })?;
                if grant.via_cookie && !csrf_ok() {
                    return Err(csrf_failed());
                }
                Ok(Ending {
                    session: grant.session_id,
                    token: Some(grant.token_id),
                    user: principal.user_id,
                })
            }
            Err(ApiError::Unauthorized) => {
                let refresh = jar.get(cookies::REFRESH).ok_or(ApiError::Unauthorized)?;
                if !csrf_ok() {
                    return Err(csrf_failed());
                }
                let lifetimes = sessions::Lifetimes::from_settings(&state.settings.auth);
                let presented = refresh.value_str();
                let ctx = audit_context(req);
                match sessions::to_end_by_refresh(&state.db, presented, lifetimes, &ctx).await? {
                    Ok(session) => Ok(Ending {
                        session: session.id,
                        token: None,
                        user: session.user_id,
                    }),
                    Err(refused) => Err(self.refused(req, jar, refused).await),
                }
            }
            Err(other) => Err(other),
        }
    }

    /// The answer to a refresh token that was refused, on refresh and logout alike.
    async fn refused(&self, req: &Request, jar: &CookieJar, refused: Refused) -> ApiError {
        let state = &self.state;
        match refused {
            // Leave the cookies alone: the request that won has just set the new ones.
            Refused::JustSpent => ApiError::Conflict(
                "this refresh token was just used by a concurrent request; retry with the current one"
                    .into(),
            ),
            Refused::Reused { session } => {
                let ttl = state.settings.auth.revocation_ttl();
                let announced = sessions::announce_revoked(&state.store, session.id, None, ttl);
                if let Err(err) = announced.await {
                    return login::unavailable(err);
                }
                metrics::refresh_token_reuse();
                state.auth.failed(req, "refresh_token", "reused").await;
                cookies::clear_session(jar);
                ApiError::Unauthorized
            }
            Refused::Invalid => {
                state.auth.failed(req, "refresh_token", "unknown").await;
                cookies::clear_session(jar);
                ApiError::Unauthorized
            }
        }
    }
}
