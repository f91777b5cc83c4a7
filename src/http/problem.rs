//! Renders every error that escapes a handler, including the framework's own (unknown route,
//! wrong method, unparsable parameter or body), as `application/problem+json`.
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result, http::StatusCode};

use crate::{
    auth::client_credentials::TOKEN_PATH,
    error::{ApiError, PROBLEM_CONTENT_TYPE, Problem},
    telemetry::RequestId,
};

pub struct ProblemDetails;

impl<E: Endpoint> Middleware<E> for ProblemDetails {
    type Output = ProblemDetailsEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        ProblemDetailsEndpoint { inner: ep }
    }
}

pub struct ProblemDetailsEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for ProblemDetailsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let request_id = req.extensions().get::<RequestId>().map(|id| id.0.clone());
        let token_endpoint = req.uri().path() == TOKEN_PATH;
        let err = match self.inner.call(req).await {
            Ok(resp) => {
                let resp = resp.into_response();
                if !needs_rewrite(&resp) || (token_endpoint && is_oauth_error(&resp)) {
                    return Ok(resp);
                }
                let (parts, _) = resp.into_parts();
                let mut resp =
                    with_request_id(Problem::new(parts.status, None), request_id).into_response();
                // Keep headers such as `Allow` or `Retry-After`, drop the old body's type/length.
                for (name, value) in parts.headers.iter() {
                    if name != poem::http::header::CONTENT_TYPE
                        && name != poem::http::header::CONTENT_LENGTH
                    {
                        resp.headers_mut().insert(name.clone(), value.clone());
                    }
                }
                return Ok(resp);
            }
            Err(err) => err,
        };

        let mut resp = if let Some(api_error) = err.downcast_ref::<ApiError>() {
            api_error.to_response(request_id)
        } else if err.status() == StatusCode::UNAUTHORIZED {
            // The framework's own 401 (a security scheme found no principal): same answer as ours.
            ApiError::Unauthorized.to_response(request_id)
        } else {
            let status = err.status();
            let detail = if status.is_server_error() {
                tracing::error!(error = %err, "internal error");
                "an unexpected error occurred".to_owned()
            } else {
                framework_detail(&err, status)
            };
            with_request_id(Problem::new(status, detail), request_id).into_response()
        };
        resp.headers_mut()
            .remove(poem::http::header::CONTENT_LENGTH);
        Ok(resp)
    }
}

fn with_request_id(mut problem: Problem, request_id: Option<String>) -> Problem {
    problem.request_id = request_id;
    problem
}

/// An error status whose body is not already a problem document.
fn needs_rewrite(resp: &Response) -> bool {
    (resp.status().is_client_error() || resp.status().is_server_error())
        && resp.content_type() != Some(PROBLEM_CONTENT_TYPE)
}

/// The token endpoint's own errors are RFC 6749 JSON (`{"error": ...}`), the format OAuth
/// clients parse: kept as they are. Anything else from that path is a problem document still.
fn is_oauth_error(resp: &Response) -> bool {
    resp.content_type()
        .is_some_and(|t| t.starts_with("application/json"))
}

/// The framework's message for a client error: these come from parsing the request (they name
/// the parameter or field at fault), never from our data.
fn framework_detail(err: &poem::Error, status: StatusCode) -> String {
    match status {
        StatusCode::NOT_FOUND => "no resource at this path".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed on this path".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than the limit".to_owned(),
        _ => err.to_string(),
    }
}
