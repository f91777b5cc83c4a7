//! Extractors that let a handler state what it needs in its signature:
//! - `tenant: TenantAccess` — a tenant route's caller, tenant and policy, as decided by the
//!   tenant middleware; documents the `{tenant}` path parameter and the security schemes;
//! - `#[oai(name = "If-Match")] if_match: IfMatch` — the precondition of a change.
use poem::{Request, RequestBody, Result};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaParamIn, MetaSchemaRef, Registry},
    types::Type,
};

use super::security::Auth;
use crate::{authz::TenantAccess, domain::Expected, error::ApiError};

/// The decision [`crate::authz::TenantAuthz`] made before the handler: only a request it
/// allowed carries one, so a handler that takes it cannot run without that decision.
impl<'a> ApiExtractor<'a> for TenantAccess {
    const TYPES: &'static [ApiExtractorType] = &[
        ApiExtractorType::SecurityScheme,
        ApiExtractorType::Parameter,
    ];
    const PARAM_IS_REQUIRED: bool = true;

    type ParamType = String;
    type ParamRawType = String;

    fn register(registry: &mut Registry) {
        <Auth as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        <Auth as ApiExtractor>::security_schemes()
    }

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Path)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(String::schema_ref())
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> Result<Self> {
        request
            .extensions()
            .get::<TenantAccess>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized.into())
    }
}

/// The `If-Match` request header (RFC 9110 §13.1.1), compared strongly with our `ETag`
/// (`"<version>"`): `*` matches any current version; a weak, foreign or malformed tag
/// matches none.
pub struct IfMatch(Option<Expected>);

impl IfMatch {
    /// For changes that must name the version they were based on: absent is 428.
    pub fn required(&self) -> Result<Expected, ApiError> {
        self.0.ok_or(ApiError::PreconditionRequired)
    }

    /// For changes where the precondition is optional: absent matches anything.
    pub fn optional(&self) -> Expected {
        self.0.unwrap_or(Expected::Any)
    }

    fn parse(value: &str) -> Expected {
        let value = value.trim();
        if value == "*" {
            return Expected::Any;
        }
        value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .and_then(|v| v.parse().ok())
            .map_or(Expected::Nothing, Expected::Version)
    }
}

/// The `ETag` of a row at `version`.
pub fn etag(version: i32) -> String {
    format!("\"{version}\"")
}

impl<'a> ApiExtractor<'a> for IfMatch {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::Parameter];

    type ParamType = String;
    type ParamRawType = String;

    fn param_in() -> Option<MetaParamIn> {
        Some(MetaParamIn::Header)
    }

    fn param_schema_ref() -> Option<MetaSchemaRef> {
        Some(String::schema_ref())
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> Result<Self> {
        let header = request.headers().get(poem::http::header::IF_MATCH);
        Ok(Self(header.map(|value| {
            value.to_str().map_or(Expected::Nothing, Self::parse)
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_compares_strongly_and_star_matches_any() {
        assert_eq!(IfMatch::parse("\"3\""), Expected::Version(3));
        assert_eq!(IfMatch::parse(" \"3\" "), Expected::Version(3));
        assert_eq!(IfMatch::parse("*"), Expected::Any);
        assert_eq!(IfMatch::parse("W/\"3\""), Expected::Nothing);
        assert_eq!(IfMatch::parse("3"), Expected::Nothing);
        assert_eq!(IfMatch::parse("\"x\""), Expected::Nothing);
    }
}
