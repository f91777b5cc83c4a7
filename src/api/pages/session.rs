//! Who is signed in with this browser, and the forms that end the session.
//!
//! The forms are plain same-origin POSTs, so they work without script. Browsers send `Origin`
//! and `Sec-Fetch-Site` with them, which the CSRF check accepts; where something strips those,
//! the form also carries the CSRF token: the page echoes the `__Host-iq_csrf` cookie into a
//! hidden field, and the logout handler compares the two in constant time (a double submit,
//! like the `X-CSRF-Token` header). Another site can neither read that cookie nor make the
//! browser send it (`SameSite=Strict`), so it cannot fill in the field.
use std::sync::Arc;

use poem::Request;

use super::escape;
use crate::{
    auth::{cookies, login, providers::ProviderEntry},
    db::entities::user,
    domain::users,
    state::AppState,
};

/// The person behind a request, as the pages show them.
pub struct Visitor {
    pub user: user::Model,
    /// Signed in with the session cookies (not a key or a bearer token): the forms apply.
    pub in_browser_session: bool,
    pub csrf: Option<String>,
    /// The provider of this login, when it is configured to end its own session too.
    pub provider_logout: Option<Arc<ProviderEntry>>,
}

impl Visitor {
    /// The name to greet with: the provider's name for the user, else the address.
    pub fn name(&self) -> String {
        let user = &self.user;
        user.display_name
            .clone()
            .or_else(|| user.email.clone())
            .unwrap_or_else(|| user.id.to_string())
    }
}

/// The signed-in visitor, if the request carries a valid credential.
pub async fn visitor(state: &AppState, req: &Request) -> Option<Visitor> {
    let principal = state.auth.resolve(req).await.ok()?;
    let user = users::find(&state.db, principal.user_id).await.ok()??;
    let grant = principal.session().filter(|s| s.via_cookie);
    let provider_logout = match grant {
        Some(grant) => login::provider_to_end(state, grant.session_id)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    Some(Visitor {
        user,
        in_browser_session: grant.is_some(),
        csrf: req
            .cookie()
            .get(cookies::CSRF)
            .map(|c| c.value_str().to_owned()),
        provider_logout,
    })
}

/// Log out, log out everywhere, and (where configured) log out at the provider as well.
pub fn session_forms(visitor: &Visitor) -> String {
    let csrf = visitor
        .csrf
        .as_deref()
        .map(|token| {
            format!(
                "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
                escape(token)
            )
        })
        .unwrap_or_default();
    let form = |action: &str, extra: &str, class: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"{action}\">{csrf}{extra}\
             <button type=\"submit\"{class}>{label}</button></form>"
        )
    };
    let mut html = form("/auth/logout", "", "", "Log out");
    if let Some(provider) = &visitor.provider_logout {
        html.push_str(&form(
            "/auth/logout",
            "<input type=\"hidden\" name=\"end_session\" value=\"1\">",
            " class=\"secondary\"",
            &format!("Log out here and at {}", escape(&provider.display_name)),
        ));
    }
    html.push_str(&form(
        "/auth/logout-all",
        "",
        " class=\"secondary\"",
        "Log out everywhere",
    ));
    format!("<div class=\"actions\">{html}</div>")
}
