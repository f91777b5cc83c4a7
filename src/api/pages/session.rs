//! Who is signed in with this browser, the forms that end the session, and the pages around
//! one: logging out, signed out, signed in.
//!
//! The forms are plain same-origin POSTs, so they work without script. Browsers send `Origin`
//! and `Sec-Fetch-Site` with them, which the CSRF check accepts; where something strips those,
//! the form also carries the CSRF token: the page echoes the `__Host-iq_csrf` cookie into a
//! hidden field, and the logout handler compares the two in constant time (a double submit,
//! like the `X-CSRF-Token` header). Another site can neither read that cookie nor make the
//! browser send it (`SameSite=Strict`), so it cannot fill in the field.
use std::sync::Arc;

use poem::Request;

use super::{HtmlPage, SERVICE_NAME, escape};
use crate::{
    auth::{cookies, login, providers::ProviderEntry, sessions},
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

/// The signed-in visitor, if the request carries a valid credential. A browser whose access
/// token cookie is gone (it lives 15 minutes) but whose refresh cookie could still renew the
/// session is signed in too, with the forms to end it: the session is alive, so the page must
/// not pretend otherwise on a shared computer. That is a read, never a refresh: a GET spends
/// nothing.
pub async fn visitor(state: &AppState, req: &Request) -> Option<Visitor> {
    let (user_id, browser_session) = match state.auth.resolve(req).await {
        Ok(principal) => (
            principal.user_id,
            principal
                .session()
                .filter(|s| s.via_cookie)
                .map(|s| s.session_id),
        ),
        Err(_) => {
            let refresh = req.cookie().get(cookies::REFRESH)?;
            let lifetimes = sessions::Lifetimes::from_settings(&state.settings.auth);
            let session = sessions::live_by_refresh(&state.db, refresh.value_str(), lifetimes)
                .await
                .ok()??;
            (session.user_id, Some(session.id))
        }
    };
    let user = users::find(&state.db, user_id).await.ok()??;
    let provider_logout = match browser_session {
        Some(session) => login::provider_to_end(state, session).await.ok().flatten(),
        None => None,
    };
    Some(Visitor {
        user,
        in_browser_session: browser_session.is_some(),
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

/// `GET /auth/logout`: the button that ends the session (logging out changes state, so it is
/// a POST), or word that there is nothing to end.
pub fn logout_page(visitor: Option<&Visitor>) -> HtmlPage {
    let body = match visitor {
        Some(visitor) if visitor.in_browser_session => format!(
            "<h1>Log out?</h1><section class=\"card\"><p class=\"who\">Signed in as <strong>{}</strong></p>{}</section>",
            escape(&visitor.name()),
            session_forms(visitor)
        ),
        _ => "<h1>Not signed in</h1><section class=\"card\"><p>This browser has no session to end.</p>\
              <div class=\"actions\"><a class=\"button\" href=\"/\">Back to the start page</a></div></section>"
            .to_owned(),
    };
    HtmlPage::new("Log out", &body)
}

/// Signed out here; the provider's own session is one click away.
pub fn signed_out_page(provider: &ProviderEntry) -> HtmlPage {
    let name = escape(&provider.display_name);
    HtmlPage::new(
        "Signed out",
        &format!(
            "<h1>Signed out</h1><section class=\"card\"><p>You are signed out of {SERVICE_NAME}.</p>\
             <p>{name} may still remember you: sign out there too, or the next login may not ask.</p>\
             <div class=\"actions\"><a class=\"button\" href=\"/auth/end-session/{path}\">Sign out at {name}</a>\
             <a class=\"button secondary\" href=\"/\">Back to the start page</a></div></section>",
            path = escape(&provider.name),
        ),
    )
}

/// The end of the login callback: a page rather than a redirect. The provider's redirect to
/// the callback was a cross-site navigation, and a redirect onwards would still be one, so the
/// browser would not send the new `SameSite=Strict` cookies to `/`. The refresh is a
/// navigation of our own.
pub fn signed_in_page(who: &str) -> HtmlPage {
    HtmlPage::with_head(
        "Signed in",
        "<meta http-equiv=\"refresh\" content=\"0;url=/\">",
        &format!(
            "<h1>Signed in</h1><section class=\"card\"><p class=\"who\">Signed in as <strong>{}</strong>.</p>\
             <div class=\"actions\"><a class=\"button\" href=\"/\">Continue</a></div></section>",
            escape(who)
        ),
    )
}
