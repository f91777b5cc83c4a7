//! `JsonBody<T>`: a JSON request body parsed by serde, documented by poem-openapi.
//!
//! poem-openapi's own `Json` reports a missing field without naming it. Here malformed JSON is
//! a 400, and JSON of the wrong shape (missing, unknown or mistyped field) is a 422 whose
//! problem names the field by its path, e.g. `permissions[1]`.
//!
//! A body is exactly one JSON value (trailing bytes are malformed), and no string in it may
//! hold a NUL character: PostgreSQL cannot store one in text, and no field here needs one, so it
//! is refused for every field and both databases alike, before any handler sees it.
//!
//! `OptionalJsonBody<T>` is the same for a body that may be left out entirely.
use poem::{FromRequest, Request, RequestBody, Result};
use poem_openapi::{
    ApiExtractorType, ExtractParamOptions,
    error::ContentTypeError,
    impl_apirequest_for_payload,
    payload::{ParsePayload, Payload},
    registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry},
    types::Type,
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        is_json(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: DeserializeOwned + Send> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        if data.is_empty() {
            return Err(ApiError::BadRequest("a JSON body is required".into()).into());
        }
        parse(&data).map(JsonBody).map_err(Into::into)
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned + Send);

fn is_json(content_type: &str) -> bool {
    matches!(content_type.parse::<mime::Mime>(), Ok(m) if m.type_() == "application" && m.subtype() == "json")
}

/// A JSON body that may be absent: an empty body, with or without a content type, is `None`,
/// so an endpoint that gains optional fields keeps answering clients that send nothing.
pub struct OptionalJsonBody<T>(pub Option<T>);

// By path: imported, `ApiExtractor`'s blanket impl makes `Vec::<u8>::from_request` ambiguous.
impl<'a, T: Type + DeserializeOwned + Send> poem_openapi::ApiExtractor<'a> for OptionalJsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: <JsonBody<T> as Payload>::CONTENT_TYPE,
                schema: T::schema_ref(),
            }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> Result<Self> {
        let data = <Vec<u8> as FromRequest>::from_request(request, body).await?;
        if data.is_empty() {
            return Ok(Self(None));
        }
        match request.content_type() {
            Some(content_type) if is_json(content_type) => {}
            Some(content_type) => {
                return Err(ContentTypeError::NotSupported {
                    content_type: content_type.to_owned(),
                }
                .into());
            }
            None => return Err(ContentTypeError::ExpectContentType.into()),
        }
        parse(&data)
            .map(|value| Self(Some(value)))
            .map_err(Into::into)
    }
}

fn parse<T: DeserializeOwned>(data: &[u8]) -> Result<T, ApiError> {
    // `from_slice` refuses anything but whitespace after the value.
    let value: serde_json::Value = serde_json::from_slice(data)
        .map_err(|err| ApiError::BadRequest(format!("malformed JSON: {err}")))?;
    if let Some(field) = nul_at(&value, String::new()) {
        return Err(ApiError::validation(
            field,
            "must not contain the NUL character (\\u0000)",
        ));
    }
    let result: Result<T, _> = serde_path_to_error::deserialize(value);
    let err = match result {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    let path = err.path().to_string();
    let message = strip_position(&err.into_inner().to_string());
    // A missing field is reported at its parent; name the field itself.
    let field = match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
    {
        Some((name, _)) if path == "." => name.to_owned(),
        Some((name, _)) => format!("{path}.{name}"),
        None if path == "." => "body".to_owned(),
        None => path,
    };
    Err(ApiError::validation(field, message))
}

/// The path (`body`, `title`, `tags[1]`, `meta.note`) of the first string or key holding NUL.
fn nul_at(value: &serde_json::Value, path: String) -> Option<String> {
    use serde_json::Value;
    let here = || {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.clone()
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(here()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, format!("{path}[{i}]"))),
        Value::Object(members) => members.iter().find_map(|(key, item)| {
            let child = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                // The key itself is the fault; name it without the NUL.
                return Some(child.replace('\0', "\\u0000"));
            }
            nul_at(item, child)
        }),
        _ => None,
    }
}

/// serde_json appends " at line L column C": noise once the field is named.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        tags: Vec<u8>,
    }

    fn field_of(json: &str) -> String {
        match parse::<Sample>(json.as_bytes()) {
            Err(ApiError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn wrong_shapes_name_the_field() {
        assert_eq!(field_of(r#"{"tags":[]}"#), "name");
        assert_eq!(field_of(r#"{"name":1,"tags":[]}"#), "name");
        assert_eq!(field_of(r#"{"name":"a","tags":[1,"x"]}"#), "tags[1]");
        assert_eq!(field_of(r#"{"name":"a","tags":[],"admin":true}"#), "admin");
    }

    #[test]
    fn nul_characters_are_refused_naming_the_field() {
        assert_eq!(field_of(r#"{"name":"a\u0000b","tags":[]}"#), "name");
        assert_eq!(
            field_of(r#"{"name":"a","tags":[],"x":["ok","\u0000"]}"#),
            "x[1]"
        );
        assert_eq!(
            field_of(r#"{"name":"a","tags":[],"m":{"k":"\u0000"}}"#),
            "m.k"
        );
        // An escaped backslash before "u0000" is no NUL.
        assert!(parse::<Sample>(br#"{"name":"a\\u0000","tags":[]}"#).is_ok());
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        assert!(matches!(
            parse::<Sample>(br#"{"name":"a","tags":[]} xyz"#),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse::<Sample>(br#"{"name":"a","tags":[]}{}"#),
            Err(ApiError::BadRequest(_))
        ));
        assert!(parse::<Sample>(b"{\"name\":\"a\",\"tags\":[]}\n").is_ok());
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        assert!(matches!(
            parse::<Sample>(b"{\"name\":"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse::<Sample>(b"not json"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
