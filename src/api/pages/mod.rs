//! The few HTML pages people see: the start page, the logout page, the signed-in hand-off and
//! the error pages of the browser login flow. Server-rendered, one inline stylesheet, no
//! script, nothing from another origin.
//!
//! Each page carries its own Content-Security-Policy: nothing may load but that stylesheet
//! (allowed by its SHA-256 hash, so no `unsafe-inline`) and same-origin images, and forms may
//! only be sent back here. The security-headers layer keeps a policy a page set.
use std::sync::LazyLock;

use base64::Engine;
use poem::{IntoResponse, Response, http::header};
use poem_openapi::{
    ApiResponse,
    payload::Payload,
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::Type,
};
use sha2::{Digest, Sha256};

mod errors;
mod favicon;
mod session;
mod start;

pub use errors::BrowserErrorPages;
pub use favicon::favicon;
pub use session::{Visitor, logout_page, session_forms, signed_in_page, signed_out_page, visitor};
pub use start::start_page;

use super::SERVICE_NAME;

/// Small, responsive, light and dark; a phone lays it out at its own width.
const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--bg:#f6f8fa;--card:#fff;--line:#d1d9e0;--accent:#1f5fbf;--on-accent:#fff}\
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--card:#151b23;--line:#3d444d;--accent:#4493f8;--on-accent:#0d1117}}\
*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;color:var(--fg);background:var(--bg)}\
main{max-width:42rem;margin:0 auto;padding:2.5rem 1.25rem}\
h1{font-size:1.75rem;line-height:1.2;margin:0 0 .25rem}\
h2{font-size:1.1rem;margin:0 0 .75rem}\
p{margin:.5rem 0}\
a{color:var(--accent)}\
.lead{color:var(--muted);margin-bottom:1.5rem}\
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.25rem 1.5rem;margin:1rem 0}\
.who{font-size:1.1rem;overflow-wrap:anywhere}\
.muted{color:var(--muted);font-size:.9rem;overflow-wrap:anywhere}\
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:1rem}\
.actions form{margin:0}\
ul.providers{list-style:none;padding:0;margin:0;display:grid;gap:.5rem}\
.button,button{display:inline-block;font:inherit;font-weight:600;padding:.6rem 1.1rem;border-radius:8px;border:1px solid var(--accent);background:var(--accent);color:var(--on-accent);text-decoration:none;cursor:pointer;text-align:center}\
.secondary{background:transparent;color:var(--accent)}\
ul.providers .button{display:block}\
.status{font-size:.85rem;font-weight:600;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}\
footer{margin-top:2rem;color:var(--muted);font-size:.85rem}\
@media (max-width:30rem){main{padding:1.5rem 1rem}.actions{flex-direction:column}.actions .button,.actions button{width:100%}}";

/// The policy of every page: only the stylesheet above, same-origin images (the icon), forms
/// back to this origin, never framed.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
});

pub fn csp() -> String {
    CSP.clone()
}

/// HTML-escapes text for an element or a quoted attribute: every value a page shows that came
/// from a user or a provider (names, addresses) goes through here.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already HTML, every interpolated value escaped). `head` is
/// extra markup for the head (a refresh), normally empty.
pub fn render(title: &str, head: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · {SERVICE_NAME}</title>\
         <link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">{head}\
         <style>{STYLE}</style></head><body><main>{body}\
         <footer>{SERVICE_NAME} · <a href=\"/docs\">API docs</a> · <a href=\"/openapi.json\">OpenAPI</a></footer>\
         </main></body></html>",
        title = escape(title),
    )
}

/// An HTML page for a person, answered with its policy. A payload, so an operation that
/// answers a page beside other outcomes (logout) embeds this rather than restating it.
pub struct HtmlPage(String);

impl HtmlPage {
    pub fn new(title: &str, body: &str) -> Self {
        Self::with_head(title, "", body)
    }

    pub fn with_head(title: &str, head: &str, body: &str) -> Self {
        HtmlPage(render(title, head, body))
    }
}

impl Payload for HtmlPage {
    const CONTENT_TYPE: &'static str = "text/html; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }
}

impl IntoResponse for HtmlPage {
    fn into_response(self) -> Response {
        poem::web::Html(self.0)
            .with_header(header::CONTENT_SECURITY_POLICY, csp())
            .into_response()
    }
}

impl ApiResponse for HtmlPage {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "An HTML page.",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![MetaHeader {
                    name: "Content-Security-Policy".into(),
                    description: Some("The page's own policy: its stylesheet by hash.".into()),
                    required: true,
                    deprecated: false,
                    schema: String::schema_ref(),
                }],
            }],
        }
    }

    fn register(_registry: &mut Registry) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_stylesheet() {
        let html = render("t", "", "");
        let style = html
            .split_once("<style>")
            .and_then(|(_, rest)| rest.split_once("</style>"))
            .map(|(style, _)| style)
            .unwrap_or_default();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style));
        assert!(csp().contains(&format!("style-src 'sha256-{hash}'")));
        assert!(!csp().contains("unsafe-inline"));
    }
}
