//! The start page (`/`): what this server is, who is signed in and how to log out, or how to
//! log in.
use super::{HtmlPage, SERVICE_NAME, Visitor, escape, session_forms};
use crate::auth::providers::ProviderEntry;

pub fn start_page<'a>(
    visitor: Option<&Visitor>,
    providers: impl Iterator<Item = &'a ProviderEntry>,
) -> HtmlPage {
    let intro = format!(
        "<h1>{SERVICE_NAME}</h1><p class=\"lead\">A secure multi-tenant REST service. \
         The API is documented at <a href=\"/docs\">/docs</a>.</p>"
    );
    let card = match visitor {
        Some(visitor) => signed_in_card(visitor),
        None => login_card(providers),
    };
    HtmlPage::new("Start", &format!("{intro}{card}"))
}

fn signed_in_card(visitor: &Visitor) -> String {
    let email = match &visitor.user.email {
        Some(email) if Some(email) != visitor.user.display_name.as_ref() => {
            format!("<p class=\"muted\">{}</p>", escape(email))
        }
        _ => String::new(),
    };
    let forms = if visitor.in_browser_session {
        session_forms(visitor)
    } else {
        String::new()
    };
    format!(
        "<section class=\"card\"><h2>Signed in</h2>\
         <p class=\"who\">Signed in as <strong>{}</strong></p>{email}{forms}</section>",
        escape(&visitor.name())
    )
}

fn login_card<'a>(providers: impl Iterator<Item = &'a ProviderEntry>) -> String {
    let providers: String = providers
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
