//! Cross-cutting HTTP middleware: the client address, problem rendering, security headers,
//! head and body limits; the server loop, with TLS and the redirect to it.
mod audit_context;
mod body_limit;
mod client_ip;
mod head_limit;
mod problem;
mod redirect;
mod security_headers;
mod serve;
mod timeout;
pub mod tls;

pub use audit_context::audit_context;
pub use body_limit::BodyLimit;
pub use client_ip::{ClientAddress, ClientIp, TrustedProxies, ipv6_network, parse_network};
pub use head_limit::HeadLimits;
pub use problem::ProblemDetails;
pub use redirect::RedirectToHttps;
pub use security_headers::SecurityHeaders;
pub use serve::{ServeOptions, serve};
pub use timeout::Timeout;
