//! Login through external providers, and our sessions: refresh, logout, the public keys.
use poem::{Request, web::cookie::CookieJar};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path, Query},
    payload::{Html, Json},
};
use secrecy::ExposeSecret;

use super::{ApiTags, security::Auth};
use crate::{
    app::AppState,
    auth::{
        cookies,
        login::{self, Flow},
        providers::ProviderError,
        secrets::{self, random_token},
        sessions::{self, RefreshOutcome},
        tokens::Jwk,
    },
    domain::audit::{self, Event},
    error::{ApiError, ApiResult},
};

pub struct AuthApi {
    state: AppState,
}

impl AuthApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[derive(Object)]
struct ProviderInfo {
    name: String,
    display_name: String,
    /// Where a browser goes to log in with this provider.
    login_url: String,
}

#[derive(Object)]
struct ProviderList {
    items: Vec<ProviderInfo>,
}

#[derive(Object)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: i64,
    /// The next refresh token, when the presented one came in `X-Refresh-Token` (native
    /// clients). Browsers get it as a cookie instead.
    refresh_token: Option<String>,
}

#[derive(Object)]
struct JwkSet {
    keys: Vec<JwkView>,
}

#[derive(Object)]
struct JwkView {
    kty: String,
    crv: String,
    alg: String,
    #[oai(rename = "use")]
    use_: String,
    kid: String,
    x: String,
}

impl From<Jwk> for JwkView {
    fn from(k: Jwk) -> Self {
        Self {
            kty: k.kty.into(),
            crv: k.crv.into(),
            alg: k.alg.into(),
            use_: k.use_.into(),
            kid: k.kid,
            x: k.x,
        }
    }
}

#[derive(ApiResponse)]
enum Redirect {
    /// To the provider's login page.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
}

#[derive(ApiResponse)]
enum SignedIn {
    /// Signed in: the session cookies are set; the page continues to `/`.
    #[oai(status = 200)]
    Page(Html<String>),
}

#[derive(ApiResponse)]
enum LoggedOut {
    /// The session is over; its tokens are refused everywhere from now on.
    #[oai(status = 204)]
    Done,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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

fn csrf_failed() -> ApiError {
    ApiError::Forbidden("CSRF check failed: send X-CSRF-Token with the CSRF cookie's value".into())
}

fn store_down(err: crate::store::StoreError) -> ApiError {
    tracing::error!(error = %err, "login state unavailable");
    ApiError::Unavailable("login is temporarily unavailable".into())
}

impl AuthApi {
    /// Sets the session cookies for a fresh access token and refresh token.
    fn set_session_cookies(&self, jar: &CookieJar, access: &str, refresh: &str) {
        let auth = &self.state.settings.auth;
        let refresh_ttl = auth.refresh_ttl();
        jar.add(cookies::token(cookies::ACCESS, access, auth.access_ttl()));
        jar.add(cookies::token(cookies::REFRESH, refresh, refresh_ttl));
        jar.add(cookies::csrf(&random_token(), refresh_ttl));
    }

    /// How long a revocation must be remembered: past the expiry of any access token the
    /// session could still hold, plus the verifier's clock leeway.
    fn revocation_ttl(&self) -> std::time::Duration {
        self.state.settings.auth.access_ttl() + std::time::Duration::from_secs(30)
    }

    /// Ends a session: the database first (its refresh tokens die even if the store is down),
    /// then the revocation list (every instance refuses its access tokens at once).
    async fn end_session(&self, session: uuid::Uuid, token: Option<uuid::Uuid>) -> ApiResult<()> {
        sessions::revoke_session(&self.state.db, session).await?;
        sessions::announce_revoked(&self.state.store, session, token, self.revocation_ttl())
            .await
            .map_err(store_down)
    }

    fn clear_session_cookies(jar: &CookieJar) {
        for name in [cookies::ACCESS, cookies::REFRESH, cookies::CSRF] {
            cookies::clear(jar, name);
        }
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// The configured identity providers and where to log in with each.
    #[oai(path = "/auth/providers", method = "get")]
    async fn providers(&self) -> Json<ProviderList> {
        let base = self.state.public_url.as_str().trim_end_matches('/');
        let items = self
            .state
            .providers
            .all()
            .map(|p| ProviderInfo {
                name: p.name.clone(),
                display_name: p.display_name.clone(),
                login_url: format!("{base}/auth/login/{}", p.name),
            })
            .collect();
        Json(ProviderList { items })
    }

    /// Starts a login: redirects to the provider with PKCE (S256), state and nonce. The flow
    /// state stays on the server for 10 minutes, usable once, bound to this browser.
    #[oai(path = "/auth/login/:provider", method = "get")]
    async fn login(&self, provider: Path<String>, jar: &CookieJar) -> ApiResult<Redirect> {
        let entry = self
            .state
            .providers
            .get(&provider.0)
            .ok_or(ApiError::NotFound)?;
        let start = entry.provider.start().await.map_err(provider_failure)?;
        let binding = random_token();
        let flow = Flow {
            provider: entry.name.clone(),
            pkce_verifier: start.pkce_verifier,
            nonce: start.nonce,
            binding: secrets::sha256_hex(&binding),
        };
        login::save_flow(&self.state.store, &start.state, &flow)
            .await
            .map_err(store_down)?;
        jar.add(cookies::login(&binding, login::FLOW_TTL));
        Ok(Redirect::Found(start.url.to_string()))
    }

    /// Where the provider sends the browser back. Verifies state (single use, this browser),
    /// exchanges the code, validates the identity, starts a session in cookies.
    #[oai(path = "/auth/callback/:provider", method = "get")]
    #[allow(clippy::too_many_arguments)] // each argument is a documented request parameter
    async fn callback(
        &self,
        provider: Path<String>,
        code: Query<Option<String>>,
        state: Query<Option<String>>,
        error: Query<Option<String>>,
        error_description: Query<Option<String>>,
        #[oai(name = "User-Agent")] user_agent: Header<Option<String>>,
        jar: &CookieJar,
    ) -> ApiResult<SignedIn> {
        let state_param = state
            .0
            .ok_or_else(|| ApiError::BadRequest("missing state".into()))?;
        let flow = login::take_flow(&self.state.store, &state_param)
            .await
            .map_err(store_down)?
            .ok_or_else(|| {
                ApiError::BadRequest("unknown, expired or already used login state".into())
            })?;
        let binding = jar
            .get(cookies::LOGIN)
            .map(|c| secrets::sha256_hex(c.value_str()));
        cookies::clear(jar, cookies::LOGIN);
        if flow.provider != provider.0
            || !binding.is_some_and(|b| secrets::equal(&b, &flow.binding))
        {
            return Err(ApiError::BadRequest(
                "this login was not started by this browser".into(),
            ));
        }
        if let Some(error) = error.0 {
            let clean = |s: String| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            };
            let description = error_description.0.map(clean).unwrap_or_default();
            return Err(ApiError::BadRequest(
                format!(
                    "the identity provider refused the login: {} {description}",
                    clean(error)
                )
                .trim_end()
                .to_owned(),
            ));
        }
        let code = code
            .0
            .ok_or_else(|| ApiError::BadRequest("missing code".into()))?;
        let entry = self
            .state
            .providers
            .get(&provider.0)
            .ok_or(ApiError::NotFound)?;
        let identity = entry
            .provider
            .finish(&code, &flow.pkce_verifier, flow.nonce.as_deref())
            .await
            .map_err(provider_failure)?;
        let signed_in = login::sign_in(&self.state.db, &entry.name, &identity).await?;
        if signed_in.joined_tenants {
            self.state.authz.membership_changed().await;
        }
        let user = signed_in.user;
        let ttl = self.state.settings.auth.refresh_ttl();
        let (session, refresh) = sessions::start(
            &self.state.db,
            user.id,
            &entry.name,
            user_agent.0.as_deref(),
            ttl,
        )
        .await?;
        let (access, _) = self.state.tokens.issue(user.id, session.id)?;
        self.set_session_cookies(jar, &access, refresh.expose_secret());
        audit::record(
            &self.state.db,
            Event {
                tenant_id: None,
                actor_user_id: Some(user.id),
                action: "login",
                outcome: "success",
                target_type: Some("session"),
                target_id: Some(session.id.to_string()),
            },
        )
        .await;
        let who = user
            .email
            .or(user.display_name)
            .unwrap_or_else(|| "you".into());
        Ok(SignedIn::Page(Html(format!(
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=\"0;url=/\"><title>Signed in</title>\
             <p>Signed in as {}. <a href=\"/\">Continue</a></p>",
            escape(&who)
        ))))
    }

    /// Rotates the refresh token (cookie, or `X-Refresh-Token` for native clients) and issues a
    /// new access token. A refresh token works once: presenting a spent one ends its session.
    #[oai(path = "/auth/refresh", method = "post")]
    async fn refresh(
        &self,
        req: &Request,
        #[oai(name = "X-Refresh-Token")] header_token: Header<Option<String>>,
        jar: &CookieJar,
    ) -> ApiResult<Json<TokenResponse>> {
        let (presented, via_cookie) = match header_token.0 {
            Some(token) => (token, false),
            None => (
                jar.get(cookies::REFRESH)
                    .map(|c| c.value_str().to_owned())
                    .ok_or(ApiError::Unauthorized)?,
                true,
            ),
        };
        if via_cookie && !self.state.auth.csrf_ok(req) {
            return Err(csrf_failed());
        }
        let ttl = self.state.settings.auth.refresh_ttl();
        match sessions::rotate(&self.state.db, &presented, ttl).await? {
            RefreshOutcome::Rotated { session, refresh } => {
                let (access, _) = self.state.tokens.issue(session.user_id, session.id)?;
                if via_cookie {
                    self.set_session_cookies(jar, &access, refresh.expose_secret());
                }
                Ok(Json(TokenResponse {
                    access_token: access,
                    token_type: "Bearer".into(),
                    expires_in: self.state.tokens.ttl_secs(),
                    refresh_token: (!via_cookie).then(|| refresh.expose_secret().to_owned()),
                }))
            }
            RefreshOutcome::Reused { session } => {
                sessions::announce_revoked(
                    &self.state.store,
                    session.id,
                    None,
                    self.revocation_ttl(),
                )
                .await
                .map_err(store_down)?;
                audit::record(
                    &self.state.db,
                    Event {
                        tenant_id: None,
                        actor_user_id: Some(session.user_id),
                        action: "refresh_token_reuse",
                        outcome: "session_revoked",
                        target_type: Some("session"),
                        target_id: Some(session.id.to_string()),
                    },
                )
                .await;
                Self::clear_session_cookies(jar);
                Err(ApiError::Unauthorized)
            }
            RefreshOutcome::Invalid => {
                Self::clear_session_cookies(jar);
                Err(ApiError::Unauthorized)
            }
        }
    }

    /// Ends this session: its refresh tokens are spent and its access tokens refused by every
    /// instance until they expire. Works with the access token, or with only the refresh
    /// cookie once the access token has expired.
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(&self, req: &Request, jar: &CookieJar) -> ApiResult<LoggedOut> {
        // Resolved here rather than by the middleware: a browser whose access token has
        // expired must still be able to end its session with the refresh cookie.
        let (session_id, token_id) = match self.state.auth.resolve(req).await {
            Ok(principal) => {
                let grant = principal.session().ok_or_else(|| {
                    ApiError::BadRequest(
                        "logout ends a session; API keys are revoked instead".into(),
                    )
                })?;
                if grant.via_cookie && !self.state.auth.csrf_ok(req) {
                    return Err(csrf_failed());
                }
                (grant.session_id, Some(grant.token_id))
            }
            Err(ApiError::Unauthorized) => {
                let refresh = jar.get(cookies::REFRESH).ok_or(ApiError::Unauthorized)?;
                if !self.state.auth.csrf_ok(req) {
                    return Err(csrf_failed());
                }
                let session =
                    sessions::find_by_refresh(&self.state.db, refresh.value_str()).await?;
                Self::clear_session_cookies(jar);
                (session.ok_or(ApiError::Unauthorized)?.id, None)
            }
            Err(other) => return Err(other),
        };
        self.end_session(session_id, token_id).await?;
        Self::clear_session_cookies(jar);
        Ok(LoggedOut::Done)
    }

    /// Ends every session of the user, on every device.
    #[oai(path = "/auth/logout-all", method = "post")]
    async fn logout_all(&self, auth: Auth, jar: &CookieJar) -> ApiResult<LoggedOut> {
        let principal = auth.principal();
        if principal.session().is_none() {
            return Err(ApiError::BadRequest(
                "logout ends sessions; API keys are revoked instead".into(),
            ));
        }
        for session in sessions::live_sessions(&self.state.db, principal.user_id).await? {
            self.end_session(session.id, None).await?;
        }
        Self::clear_session_cookies(jar);
        Ok(LoggedOut::Done)
    }

    /// A plain page: what this server is, how to log in, who is logged in.
    #[oai(path = "/", method = "get")]
    async fn landing(&self, req: &Request) -> Html<String> {
        let state = &self.state;
        let me = match state.auth.resolve(req).await {
            Ok(principal) => crate::domain::users::find(&state.db, principal.user_id)
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
        let providers: String = state
            .providers
            .all()
            .map(|p| {
                format!(
                    "<li><a href=\"/auth/login/{}\">Log in with {}</a></li>",
                    escape(&p.name),
                    escape(&p.display_name)
                )
            })
            .collect();
        let providers = if providers.is_empty() {
            "<p>No identity provider is configured yet (see the README).</p>".to_owned()
        } else {
            format!("<ul>{providers}</ul>")
        };
        let who = match me {
            Some(user) => format!(
                "<p>Signed in as <strong>{}</strong>.</p>",
                escape(
                    &user
                        .email
                        .or(user.display_name)
                        .unwrap_or_else(|| user.id.to_string())
                )
            ),
            None => "<p>Not signed in.</p>".to_owned(),
        };
        Html(format!(
            "<!doctype html><html lang=en><meta charset=utf-8><title>ironquill</title>\
             <h1>ironquill</h1><p>A secure multi-tenant REST service. The API is documented at \
             <a href=\"/docs\">/docs</a> (<a href=\"/openapi.json\">OpenAPI</a>).</p>{who}{providers}</html>"
        ))
    }

    /// The public keys that verify our access tokens (JWKS).
    #[oai(path = "/.well-known/jwks.json", method = "get")]
    async fn jwks(&self) -> Json<JwkSet> {
        Json(JwkSet {
            keys: self
                .state
                .tokens
                .jwks()
                .into_iter()
                .map(JwkView::from)
                .collect(),
        })
    }
}
