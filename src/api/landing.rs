//! `/`: a plain page saying what this server is, who is signed in, and how to log in.
use poem::Request;
use poem_openapi::{OpenApi, payload::Html};

use super::{ApiTags, Resource};
use crate::{domain::users, state::AppState};

pub struct LandingApi {
    state: AppState,
}

impl Resource for LandingApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// HTML-escapes text for an element or a quoted attribute.
pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[OpenApi(tag = "ApiTags::Auth")]
impl LandingApi {
    /// A plain page: what this server is, how to log in, who is logged in.
    #[oai(path = "/", method = "get")]
    async fn landing(&self, req: &Request) -> Html<String> {
        let state = &self.state;
        let me = match state.auth.resolve(req).await {
            Ok(principal) => users::find(&state.db, principal.user_id)
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
}
