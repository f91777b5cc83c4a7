//! Cross-cutting HTTP middleware: problem rendering, security headers, body limits.
mod body_limit;
mod problem;
mod security_headers;
mod timeout;

pub use body_limit::BodyLimit;
pub use problem::ProblemDetails;
pub use security_headers::SecurityHeaders;
pub use timeout::Timeout;
