//! Request body limit: 413 for a declared or actual body over the limit.
//!
//! poem's `SizeLimit` demands `Content-Length` on every request (even a GET), and chunked or
//! HTTP/2 bodies have none, so every body is read here, up to the limit, before any handler.
use poem::{Body, Endpoint, Middleware, Request, Result, error::ReadBodyError, http::header};

use crate::error::ApiError;

pub struct BodyLimit {
    max_bytes: usize,
}

impl BodyLimit {
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes }
    }
}

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        BodyLimitEndpoint {
            inner: ep,
            max_bytes: self.max_bytes,
        }
    }
}

pub struct BodyLimitEndpoint<E> {
    inner: E,
    max_bytes: usize,
}

fn too_large() -> poem::Error {
    poem::Error::from_status(poem::http::StatusCode::PAYLOAD_TOO_LARGE)
}

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_bytes as u64) {
            return Err(too_large());
        }
        // Always read through the limit: an HTTP/2 body needs neither Content-Length nor
        // Transfer-Encoding, and an empty body costs nothing.
        let bytes = req
            .take_body()
            .into_bytes_limit(self.max_bytes)
            .await
            .map_err(|err| match err {
                ReadBodyError::PayloadTooLarge => too_large(),
                other => {
                    ApiError::BadRequest(format!("could not read the request body: {other}")).into()
                }
            })?;
        req.set_body(Body::from_bytes(bytes));
        self.inner.call(req).await
    }
}
