//! One error type for the whole API, rendered as `application/problem+json` (RFC 9457).
//!
//! Client errors say what was wrong with the request; server errors are logged with their full
//! cause chain and answered with a generic message, so no SQL, path or stack trace ever leaks.
use poem::{IntoResponse, Response, error::ResponseError, http::StatusCode};
use poem_openapi::{
    ApiResponse, Object,
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::Type,
};
use serde::Serialize;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, Object)]
pub struct Problem {
    /// A URI identifying the problem type; `about:blank` means the status says it all.
    #[oai(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type (the status reason phrase).
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, safe to show to the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The id of the request, also in `X-Request-Id`; quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For validation failures: each invalid field and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug, Clone, Serialize, Object)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<Option<String>>) -> Self {
        Self {
            kind: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            request_id: None,
            errors: None,
        }
    }

    pub fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        Response::builder()
            .status(status)
            .content_type(PROBLEM_CONTENT_TYPE)
            .body(body)
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthorized,
    /// A DPoP-bound token without a valid proof, or presented the wrong way (RFC 9449 §7.1):
    /// `error` is `invalid_dpop_proof` or `invalid_token`.
    #[error("a valid DPoP proof is required")]
    DpopUnauthorized { error: &'static str },
    /// Authenticated, but not allowed; the message names what is missing.
    #[error("{0}")]
    Forbidden(String),
    /// Also used for rows of other tenants: we never confirm that they exist.
    #[error("not found")]
    NotFound,
    /// The path exists, but not with this method; `Allow` lists the ones it has.
    #[error("this method is not allowed on this path")]
    MethodNotAllowed { allowed: Vec<poem::http::Method> },
    #[error("{0}")]
    Conflict(String),
    #[error("the resource was changed since it was read; fetch it again")]
    PreconditionFailed,
    #[error("send If-Match with the ETag you last read, so concurrent edits are not lost")]
    PreconditionRequired,
    #[error("invalid {field}: {message}")]
    Validation { field: String, message: String },
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// Unexpected failures: logged in full, shown as a generic 500.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// What a 503 asks the client to wait before retrying: outages worth a 503 (database, store)
/// are usually over in seconds, and answering one costs us little.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u32 = 2;

/// The answer to a database failure the client can retry: 409 for a lost race, 503 for a
/// database out of reach. Logged here, since the cause is not shown.
fn database_failure(failure: crate::db::Failure, err: &anyhow::Error) -> ApiError {
    crate::telemetry::metrics::database_error(match failure {
        crate::db::Failure::Contention => "contention",
        crate::db::Failure::Unavailable => "unavailable",
    });
    match failure {
        crate::db::Failure::Contention => {
            tracing::warn!(error = format!("{err:#}"), "database contention");
            ApiError::Conflict(
                "a concurrent change to the same data got in the way; retry the request".into(),
            )
        }
        crate::db::Failure::Unavailable => {
            tracing::error!(error = format!("{err:#}"), "database unavailable");
            ApiError::Unavailable("the database is temporarily unavailable; retry shortly".into())
        }
    }
}

/// Unexpected, unless a database error in the chain says the client may retry: wherever a
/// `DbErr` was wrapped with context, it still answers 409 or 503 rather than 500.
impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        let failure = err
            .chain()
            .find_map(|cause| cause.downcast_ref::<sea_orm::DbErr>())
            .and_then(crate::db::failure);
        match failure {
            Some(failure) => database_failure(failure, &err),
            None => {
                if err.chain().any(|cause| cause.is::<sea_orm::DbErr>()) {
                    crate::telemetry::metrics::database_error("other");
                }
                ApiError::Internal(err)
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// 403 naming the permission the caller lacks.
    pub fn missing_permission(permission: impl std::fmt::Display) -> Self {
        Self::Forbidden(format!("missing permission: {permission}"))
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status();
        match self {
            ApiError::Internal(err) => {
                // The one place unexpected errors are logged, with the whole cause chain.
                tracing::error!(error = format!("{err:#}"), "internal error");
                Problem::new(status, "an unexpected error occurred".to_owned())
            }
            ApiError::Validation { field, message } => {
                let mut problem = Problem::new(status, self.to_string());
                problem.errors = Some(vec![FieldError {
                    field: field.clone(),
                    message: message.clone(),
                }]);
                problem
            }
            _ => Problem::new(status, self.to_string()),
        }
    }
}

/// The ephemeral store could not be asked while changing state: nothing was changed, and the
/// client may retry. (Checks that depend on the store name their own 503s.)
impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        tracing::error!(error = %err, "ephemeral store unavailable");
        ApiError::Unavailable("try again shortly".into())
    }
}

/// The one place domain failures become HTTP problems.
impl From<crate::domain::Error> for ApiError {
    fn from(err: crate::domain::Error) -> Self {
        use crate::domain::Error;
        match err {
            Error::NotFound => ApiError::NotFound,
            Error::Conflict(message) => ApiError::Conflict(message),
            Error::VersionMismatch => ApiError::PreconditionFailed,
            Error::MissingPermission(permission) => ApiError::missing_permission(permission),
            Error::Limit(message) => ApiError::Forbidden(message),
            Error::Invalid { field, message } => ApiError::validation(field, message),
            Error::Db(err) => err.into(),
            Error::Store(err) => err.into(),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        anyhow::Error::new(err).context("database error").into()
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::DpopUnauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn as_response(&self) -> Response {
        self.to_response(None)
    }
}

impl ApiError {
    /// The problem response, stamped with the request id when known.
    pub fn to_response(&self, request_id: Option<String>) -> Response {
        let mut problem = self.problem();
        problem.request_id = request_id;
        let mut resp = problem.into_response();
        match self {
            ApiError::Unauthorized => {
                resp.headers_mut().insert(
                    poem::http::header::WWW_AUTHENTICATE,
                    poem::http::HeaderValue::from_static("apikey, Bearer"),
                );
            }
            ApiError::DpopUnauthorized { error } => {
                let challenge = format!(
                    "DPoP error=\"{error}\", algs=\"{}\"",
                    crate::auth::dpop::ALGORITHMS.join(" ")
                );
                if let Ok(value) = poem::http::HeaderValue::from_str(&challenge) {
                    resp.headers_mut()
                        .insert(poem::http::header::WWW_AUTHENTICATE, value);
                }
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                resp.headers_mut()
                    .insert(poem::http::header::RETRY_AFTER, (*retry_after_secs).into());
            }
            ApiError::MethodNotAllowed { allowed } => {
                let allow = allowed
                    .iter()
                    .map(poem::http::Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(value) = poem::http::HeaderValue::from_str(&allow) {
                    resp.headers_mut().insert(poem::http::header::ALLOW, value);
                }
            }
            ApiError::Unavailable(_) => {
                resp.headers_mut().insert(
                    poem::http::header::RETRY_AFTER,
                    RETRY_AFTER_UNAVAILABLE_SECS.into(),
                );
            }
            _ => {}
        }
        resp
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.as_response()
    }
}

/// The error responses every operation documents, each as a problem document.
const DOCUMENTED: &[(u16, &str)] = &[
    (
        400,
        "Malformed request: bad JSON, a missing or mistyped parameter.",
    ),
    (401, "Missing or invalid credentials."),
    (
        403,
        "Authenticated, but the role or key lacks the named permission.",
    ),
    (
        404,
        "No such resource, or it belongs to a tenant the caller cannot see.",
    ),
    (
        409,
        "Conflicts with an existing resource (a duplicate slug or label), or with a concurrent \
         change (the detail says so; retry).",
    ),
    (412, "`If-Match` names a version that is no longer current."),
    (428, "An update needs `If-Match` with the ETag last read."),
    (
        415,
        "The body is not JSON: send it with `Content-Type: application/json`.",
    ),
    (413, "The request body is larger than the configured limit."),
    (
        422,
        "Well-formed but invalid: the problem's `errors` name each field.",
    ),
    (429, "Rate limited; retry after `Retry-After` seconds."),
    (
        500,
        "Unexpected server error; quote the `request_id` when reporting it.",
    ),
    (
        503,
        "A dependency (database, store) is unreachable; retry after `Retry-After` seconds.",
    ),
];

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: DOCUMENTED
                .iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(*status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: PROBLEM_CONTENT_TYPE,
                        schema: MetaSchemaRef::Reference(Problem::name().into_owned()),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        <Problem as Type>::register(registry);
    }
}
