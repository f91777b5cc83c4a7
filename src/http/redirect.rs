//! The plain-HTTP listener of a service that serves HTTPS itself (`server.tls.redirect_http`):
//! every request gets a permanent redirect to the same path on the https origin, and the ACME
//! HTTP-01 challenges are answered when certificates are validated that way.
use poem::{
    Endpoint, Request, Response, Result,
    http::{StatusCode, header},
};

use super::tls::Http01Answers;

const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

pub struct RedirectToHttps {
    /// `https://host[:port]`, from `public_url`: the request's `Host` header is never used, so
    /// a client cannot make us redirect anyone to a host of its choosing.
    origin: String,
    http01: Option<Http01Answers>,
}

impl RedirectToHttps {
    pub fn new(public_url: &url::Url, http01: Option<Http01Answers>) -> Self {
        let origin = public_url.origin().ascii_serialization();
        Self { origin, http01 }
    }
}

impl Endpoint for RedirectToHttps {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| p.starts_with('/'))
            .unwrap_or("/");
        if let Some(answers) = &self.http01
            && let Some(token) = target.strip_prefix(CHALLENGE_PREFIX)
        {
            return Ok(match answers.key_authorization(token) {
                Some(answer) => Response::builder()
                    .content_type("application/octet-stream")
                    .body(answer),
                None => StatusCode::NOT_FOUND.into(),
            });
        }
        // 308: permanent, and the method and body are kept (301 lets clients turn POST to GET).
        Ok(Response::builder()
            .status(StatusCode::PERMANENT_REDIRECT)
            .header(header::LOCATION, format!("{}{target}", self.origin))
            .finish())
    }
}
