//! Security headers on every response.
//!
//! The API answers JSON only, so its CSP forbids everything. The few HTML pages for people
//! (`crate::api::pages`) set their own: their stylesheet by hash, forms to this origin. The docs UI (`/docs`) is a page
//! with inline script and style from poem-openapi's bundled Swagger UI, so it alone gets a CSP
//! that allows inline code from this origin and nothing from any other.
use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderName, HeaderValue, header},
};

const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const DOCS_CSP: &str = "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";
const HSTS: &str = "max-age=63072000; includeSubDomains";

pub struct SecurityHeaders {
    hsts: bool,
}

impl SecurityHeaders {
    pub fn new(hsts: bool) -> Self {
        Self { hsts }
    }
}

impl<E: Endpoint> Middleware<E> for SecurityHeaders {
    type Output = SecurityHeadersEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        SecurityHeadersEndpoint {
            inner: ep,
            hsts: self.hsts,
        }
    }
}

pub struct SecurityHeadersEndpoint<E> {
    inner: E,
    hsts: bool,
}

impl<E: Endpoint> Endpoint for SecurityHeadersEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let is_docs = req.uri().path() == "/docs" || req.uri().path().starts_with("/docs/");
        let mut resp = self.inner.call(req).await?.into_response();
        let headers = resp.headers_mut();
        let csp = if is_docs { DOCS_CSP } else { API_CSP };
        // The HTML pages bring their own, as strict, naming their one inline stylesheet.
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(csp));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        );
        // API answers may carry personal data: no shared or browser cache keeps them by default.
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if self.hsts {
            headers.insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            );
        }
        Ok(resp)
    }
}
