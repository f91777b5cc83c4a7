//! Cross-cutting HTTP middleware: problem rendering, security headers, head and body limits.
mod body_limit;
mod head_limit;
mod problem;
mod security_headers;
mod timeout;

pub use body_limit::BodyLimit;
pub use head_limit::HeadLimits;
pub use problem::ProblemDetails;
pub use security_headers::SecurityHeaders;
pub use timeout::Timeout;
