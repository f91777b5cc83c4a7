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
use crate::{
    authz::TenantAccess,
    domain::{Expected, audit},
    error::ApiError,
};

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
        // Only a handler mounted outside the tenant prefix lacks one: a wiring mistake, not a
        // client's. Refused, and said loudly in the log.
        request.extensions().get::<TenantAccess>().cloned().ok_or_else(|| {
            tracing::error!(path = %request.uri().path(), "a tenant handler ran without the tenant middleware");
            ApiError::Internal(anyhow::anyhow!("tenant route outside the tenant prefix")).into()
        })
    }
}

/// The audit context of the request (who, from where, which request), for handlers whose
/// change is recorded in the audit trail.
pub struct Audit(pub audit::Context);

impl<'a> poem::FromRequest<'a> for Audit {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> Result<Self> {
        Ok(Self(crate::http::audit_context(req)))
    }
}

/// The `If-Match` request header (RFC 9110 §13.1.1), compared strongly with our `ETag`
/// (`"<version>"`): `*` matches any current version; a list matches any version it names;
/// weak, foreign or malformed tags match none.
pub struct IfMatch(Option<Expected>);

impl IfMatch {
    /// For changes that must name the version they were based on: absent is 428.
    pub fn required(&self) -> Result<Expected, ApiError> {
        self.0.clone().ok_or(ApiError::PreconditionRequired)
    }

    /// For changes where the precondition is optional: absent matches anything.
    pub fn optional(&self) -> Expected {
        self.0.clone().unwrap_or(Expected::Any)
    }

    /// Parses the field value (several header lines already joined with `,`).
    fn parse(value: &str) -> Expected {
        let tags: Vec<&str> = value.split(',').map(str::trim).collect();
        if tags == ["*"] {
            return Expected::Any;
        }
        let versions = tags
            .iter()
            .filter_map(|tag| {
                let version: i32 = tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()?;
                // Only our own spelling of the tag: `"+3"` or `"03"` name nothing.
                (etag(version) == *tag).then_some(version)
            })
            .collect();
        Expected::OneOf(versions)
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
        let lines: Vec<&str> = request
            .headers()
            .get_all(poem::http::header::IF_MATCH)
            .iter()
            // A line that is not visible ASCII can name no tag of ours.
            .map(|value| value.to_str().unwrap_or("\"\""))
            .collect();
        Ok(Self(
            (!lines.is_empty()).then(|| Self::parse(&lines.join(","))),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_compares_strongly_and_star_matches_any() {
        let none = Expected::OneOf(vec![]);
        assert_eq!(IfMatch::parse("\"3\""), Expected::version(3));
        assert_eq!(IfMatch::parse(" \"3\" "), Expected::version(3));
        assert_eq!(IfMatch::parse("*"), Expected::Any);
        assert_eq!(IfMatch::parse("W/\"3\""), none);
        assert_eq!(IfMatch::parse("3"), none);
        assert_eq!(IfMatch::parse("\"x\""), none);
        assert_eq!(IfMatch::parse("\"+3\""), none);
        assert_eq!(IfMatch::parse("\"03\""), none);
        assert_eq!(IfMatch::parse("\"-0\""), none);
    }

    #[test]
    fn if_match_lists_match_any_version_they_name() {
        assert_eq!(
            IfMatch::parse("\"3\", W/\"4\", \"5\""),
            Expected::OneOf(vec![3, 5])
        );
        assert_eq!(IfMatch::parse("\"3\",\"4\""), Expected::OneOf(vec![3, 4]));
        // `*` is valid only alone.
        assert_eq!(IfMatch::parse("*, \"3\""), Expected::OneOf(vec![3]));
    }
}
