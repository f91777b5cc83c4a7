//! Error pages for people: a browser navigating the login flow (login, callback, logout) that
//! fails gets a page saying what happened, with a way back, instead of a problem document.
//! Same status, same headers; API clients (anything not asking for HTML first) still get
//! `application/problem+json`.
use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderMap, header},
};
use serde_json::Value;

use super::{HtmlPage, escape};
use crate::error::PROBLEM_CONTENT_TYPE;

/// Where a person arrives by navigating (a link, a redirect, a form): the login flow.
const BROWSER_PREFIXES: &[&str] = &["/auth/login/", "/auth/callback/", "/auth/end-session/"];
const BROWSER_PATHS: &[&str] = &["/auth/logout", "/auth/logout-all"];

pub struct BrowserErrorPages;

impl<E: Endpoint> Middleware<E> for BrowserErrorPages {
    type Output = BrowserErrorPagesEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        BrowserErrorPagesEndpoint { inner: ep }
    }
}

pub struct BrowserErrorPagesEndpoint<E> {
    inner: E,
}

fn browser_route(path: &str) -> bool {
    BROWSER_PATHS.contains(&path) || BROWSER_PREFIXES.iter().any(|p| path.starts_with(p))
}

/// The `q` of the first media range in `Accept` matching `pred` (0 when none does).
fn quality(accept: &str, pred: impl Fn(&str) -> bool) -> f32 {
    accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next()?;
            if !pred(&media.to_ascii_lowercase()) {
                return None;
            }
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .map_or(Some(1.0), |q| q.parse::<f32>().ok())?;
            Some(q)
        })
        .next()
        .unwrap_or(0.0)
}

/// A navigation: `text/html` named explicitly (not by a wildcard) and liked at least as much
/// as JSON. Browsers send `text/html,…,*/*;q=0.8`; API clients `*/*` or a JSON type.
pub fn prefers_html(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let html = quality(&accept, |m| m == "text/html");
    let json = quality(&accept, |m| m == "application/json" || m.ends_with("+json"));
    html > 0.0 && html >= json
}

impl<E: Endpoint> Endpoint for BrowserErrorPagesEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let wants_page = browser_route(req.uri().path()) && prefers_html(req.headers());
        let resp = match self.inner.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        };
        if !wants_page || resp.content_type() != Some(PROBLEM_CONTENT_TYPE) {
            return Ok(resp);
        }
        let (parts, body) = resp.into_parts();
        let problem: Value = serde_json::from_slice(&body.into_vec().await?).unwrap_or_default();
        // The page's own headers (type, policy) win; the rest (request id, Retry-After, …)
        // carry over, every value of each (a logout's refusal clears three cookies).
        let mut page = error_page(&problem).into_response();
        page.set_status(parts.status);
        let own: Vec<_> = page.headers().keys().cloned().collect();
        for (name, value) in parts.headers.iter() {
            if !own.contains(name) && name != header::CONTENT_LENGTH {
                page.headers_mut().append(name.clone(), value.clone());
            }
        }
        Ok(page)
    }
}

/// What a person can do about it, by status.
fn advice(status: u64) -> &'static str {
    match status {
        400 => "The sign-in could not be completed. Start again from the start page.",
        401 | 403 => "You may need to sign in again.",
        404 => "There is nothing here: the link may be mistyped or out of date.",
        429 => "Too many attempts from your network. Wait a little, then try again.",
        503 => "A service this depends on is unavailable. Try again in a moment.",
        _ => "Something went wrong on our side. Try again in a moment.",
    }
}

fn error_page(problem: &Value) -> HtmlPage {
    let status = problem["status"].as_u64().unwrap_or(500);
    let title = problem["title"].as_str().unwrap_or("Error");
    let detail = problem["detail"]
        .as_str()
        .map(|d| format!("<p>{}</p>", escape(d)))
        .unwrap_or_default();
    let request = problem["request_id"]
        .as_str()
        .map(|id| {
            format!(
                "<p class=\"muted\">Request id: <code>{}</code></p>",
                escape(id)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<p class=\"status\">Error {status}</p><h1>{}</h1><section class=\"card\">{detail}\
         <p>{}</p>{request}<div class=\"actions\"><a class=\"button\" href=\"/\">Back to the start page</a></div>\
         </section>",
        escape(title),
        advice(status)
    );
    HtmlPage::new(title, &body)
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn accepts(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        prefers_html(&headers)
    }

    #[test]
    fn a_navigation_prefers_html_and_an_api_client_does_not() {
        assert!(accepts(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!accepts("*/*"));
        assert!(!accepts("application/json"));
        assert!(!accepts("application/problem+json, text/html;q=0.5"));
        assert!(!accepts("text/html;q=0"));
        assert!(!prefers_html(&HeaderMap::new()));
    }
}
