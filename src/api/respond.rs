//! Responses every resource shares.
use poem_openapi::{ApiResponse, payload::Json, types::ToJSON};

use super::etag;

/// A versioned row, with its `ETag` (send it back in `If-Match` to change the row).
#[derive(ApiResponse)]
pub enum Tagged<T: ToJSON> {
    #[oai(status = 200)]
    Ok(Json<T>, #[oai(header = "ETag")] String),
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>, #[oai(header = "ETag")] String),
}

impl<T: ToJSON> Tagged<T> {
    pub fn ok(body: impl Into<T>, version: i32) -> Self {
        Self::Ok(Json(body.into()), etag(version))
    }

    pub fn created(body: impl Into<T>, version: i32) -> Self {
        Self::Created(Json(body.into()), etag(version))
    }
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Deleted,
}
