//! Login through external providers: the list, the redirect out, the callback back in. The
//! flow itself lives in [`crate::auth::login`]; these handlers only map HTTP to it.
use poem::{Request, web::cookie::CookieJar};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use secrecy::ExposeSecret;

use super::{
    ApiTags, Audit, Resource,
    pages::{self, HtmlPage},
};
use crate::{
    auth::{
        cookies,
        login::{self, Callback},
    },
    error::{ApiError, ApiResult},
    ratelimit::{self, Policy},
    state::AppState,
};

pub struct LoginApi {
    state: AppState,
}

impl Resource for LoginApi {
    fn new(state: AppState) -> Self {
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

#[derive(ApiResponse)]
enum Redirect {
    /// To the provider's login page.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
}

#[OpenApi(tag = "ApiTags::Auth")]
impl LoginApi {
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
    /// state stays on the server for 10 minutes, usable once, bound to this browser. Pending
    /// flows are capped per client address and in total (429 past either).
    #[oai(path = "/auth/login/:provider", method = "get")]
    async fn login(
        &self,
        req: &Request,
        provider: Path<String>,
        jar: &CookieJar,
    ) -> ApiResult<Redirect> {
        if self.state.providers.get(&provider.0).is_none() {
            return Err(ApiError::NotFound);
        }
        // The per-address cap first: one client's flood then never spends the total.
        let limiter = &self.state.limiter;
        let client = ratelimit::client_of(req);
        ratelimit::spend(limiter, req, Policy::LoginFlowsPerIp, &client).await?;
        if let Some(site) = ratelimit::site_of(req) {
            ratelimit::spend(limiter, req, Policy::LoginFlowsPerIp, &site).await?;
        }
        ratelimit::spend(limiter, req, Policy::LoginFlowsTotal, "all").await?;
        let started = login::start(&self.state, &provider.0).await?;
        jar.add(cookies::login(&started.binding, login::FLOW_TTL));
        Ok(Redirect::Found(started.redirect))
    }

    /// Where the provider sends the browser back. Verifies state (single use, this browser),
    /// exchanges the code, validates the identity, starts a session in cookies.
    #[oai(path = "/auth/callback/:provider", method = "get")]
    #[allow(clippy::too_many_arguments)] // each argument is a documented request parameter
    async fn callback(
        &self,
        req: &Request,
        provider: Path<String>,
        code: Query<Option<String>>,
        state: Query<Option<String>>,
        error: Query<Option<String>>,
        error_description: Query<Option<String>>,
        jar: &CookieJar,
        audit: Audit,
    ) -> ApiResult<HtmlPage> {
        let binding = jar.get(cookies::LOGIN).map(|c| c.value_str().to_owned());
        cookies::clear(jar, cookies::LOGIN);
        let callback = Callback {
            provider: &provider.0,
            state: state.0,
            code: code.0,
            error: error.0,
            error_description: error_description.0,
            binding: binding.as_deref(),
            audit: &audit.0,
            sampling_key: ratelimit::sampling_key(req),
        };
        let signed_in = login::finish(&self.state, callback).await?;
        let (access, refresh) = (&signed_in.access_token, &signed_in.refresh_token);
        cookies::set_session(
            jar,
            &self.state.settings.auth,
            access,
            refresh.expose_secret(),
        );
        let user = signed_in.user;
        let who = user
            .display_name
            .or(user.email)
            .unwrap_or_else(|| "you".into());
        Ok(pages::signed_in_page(&who))
    }
}
