//! `/`: what this server is, who is signed in and how to log out, or how to log in.
use poem::Request;
use poem_openapi::OpenApi;

use super::{
    ApiTags, Resource,
    pages::{self, HtmlPage, escape},
};
use crate::state::AppState;

pub struct LandingApi {
    state: AppState,
}

impl Resource for LandingApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl LandingApi {
    /// The start page for people: who is signed in (with buttons to log out), or how to log in.
    #[oai(path = "/", method = "get")]
    async fn landing(&self, req: &Request) -> HtmlPage {
        let intro = format!(
            "<h1>{name}</h1><p class=\"lead\">A secure multi-tenant REST service. \
             The API is documented at <a href=\"/docs\">/docs</a>.</p>",
            name = super::SERVICE_NAME
        );
        let card = match pages::visitor(&self.state, req).await {
            Some(visitor) => {
                let email = match &visitor.user.email {
                    Some(email) if Some(email) != visitor.user.display_name.as_ref() => {
                        format!("<p class=\"muted\">{}</p>", escape(email))
                    }
                    _ => String::new(),
                };
                let forms = if visitor.in_browser_session {
                    pages::session_forms(&visitor)
                } else {
                    String::new()
                };
                format!(
                    "<section class=\"card\"><h2>Signed in</h2>\
                     <p class=\"who\">Signed in as <strong>{}</strong></p>{email}{forms}</section>",
                    escape(&visitor.name())
                )
            }
            None => self.login_card(),
        };
        HtmlPage::new("Start", &format!("{intro}{card}"))
    }
}

impl LandingApi {
    fn login_card(&self) -> String {
        let providers: String = self
            .state
            .providers
            .all()
            .map(|p| {
                format!(
                    "<li><a class=\"button\" href=\"/auth/login/{}\">Log in with {}</a></li>",
                    escape(&p.name),
                    escape(&p.display_name)
                )
            })
            .collect();
        let providers = if providers.is_empty() {
            "<p>No identity provider is configured yet (see the README).</p>".to_owned()
        } else {
            format!("<ul class=\"providers\">{providers}</ul>")
        };
        format!("<section class=\"card\"><h2>Not signed in</h2>{providers}</section>")
    }
}
