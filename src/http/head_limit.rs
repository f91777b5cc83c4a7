//! Limits on the request head (URI and header fields), answered as problem documents.
//!
//! hyper refuses heads past its own limits (100 header fields, about 400 KiB of head, a
//! 64 KiB URI, bytes that are not valid in a request line) before any application code runs,
//! with a bare status line and no body; poem offers no hook there. These tighter limits catch
//! every realistic oversized request first, so clients get a 414/431 problem with a request id.
use poem::{Endpoint, Middleware, Request, Result, http::StatusCode};

/// The longest request target we serve: long enough for any URL of this API with a query.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The largest header section (names and values): room for big cookies and tokens.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

pub struct HeadLimits;

impl<E: Endpoint> Middleware<E> for HeadLimits {
    type Output = HeadLimitsEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        HeadLimitsEndpoint { inner: ep }
    }
}

pub struct HeadLimitsEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for HeadLimitsEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        // This runs outside all routing, so the path is whole here.
        let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        if target > MAX_URI_BYTES {
            return Err(poem::Error::from_string(
                format!("the request URI is longer than {MAX_URI_BYTES} bytes"),
                StatusCode::URI_TOO_LONG,
            ));
        }
        // Each field costs its name, its value and the ": " and CRLF around them.
        let header_bytes: usize = req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if header_bytes > MAX_HEADER_BYTES {
            return Err(poem::Error::from_string(
                format!("the request header fields are larger than {MAX_HEADER_BYTES} bytes"),
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ));
        }
        self.inner.call(req).await
    }
}
