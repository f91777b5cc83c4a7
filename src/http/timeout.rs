//! A whole-request deadline, so a stuck dependency cannot hold connections forever.
use std::time::Duration;

use poem::{Endpoint, Middleware, Request, Result};

use crate::error::ApiError;

pub struct Timeout {
    after: Duration,
}

impl Timeout {
    pub fn new(after: Duration) -> Self {
        Self { after }
    }
}

impl<E: Endpoint> Middleware<E> for Timeout {
    type Output = TimeoutEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        TimeoutEndpoint {
            inner: ep,
            after: self.after,
        }
    }
}

pub struct TimeoutEndpoint<E> {
    inner: E,
    after: Duration,
}

impl<E: Endpoint> Endpoint for TimeoutEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        match tokio::time::timeout(self.after, self.inner.call(req)).await {
            Ok(result) => result,
            Err(_) => Err(ApiError::Unavailable("the request took too long".into()).into()),
        }
    }
}
