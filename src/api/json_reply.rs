//! `JsonReply<T>`: a JSON response body written by serde straight from `T`, documented by `T`'s
//! poem-openapi schema.
//!
//! poem-openapi's own `Json` first builds a `serde_json::Value` tree of the whole body (a copy
//! of every string, a map per object) and then writes that. For the list pages on the hot path
//! that copy costs more than the rest of the serialisation. `T`'s `Serialize` must write exactly
//! what its schema says: [`rfc3339`] and [`rfc3339_opt`] write dates as poem-openapi does, and
//! each type used here has a test comparing both (`assert_same_json`).
use chrono::{DateTime, Utc};
use poem::{IntoResponse, Response};
use poem_openapi::{
    ApiResponse,
    payload::Payload,
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::Type,
};
use serde::{Serialize, Serializer};

pub struct JsonReply<T>(pub T);

impl<T: Type> Payload for JsonReply<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        content_type.starts_with("application/json")
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Serialize + Send> IntoResponse for JsonReply<T> {
    fn into_response(self) -> Response {
        poem::web::Json(self.0).into_response()
    }
}

impl<T: Type + Serialize + Send> ApiResponse for JsonReply<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// A date-time as poem-openapi writes it (`to_rfc3339`, `+00:00`), for `serialize_with`.
pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339())
}

/// An optional date-time as poem-openapi writes it: the date, or `null`.
pub fn rfc3339_opt<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// Asserts that serde writes `value` exactly as its poem-openapi schema type does.
#[cfg(test)]
pub fn assert_same_json<T: Serialize + poem_openapi::types::ToJSON>(value: &T) {
    let by_serde = serde_json::to_value(value).expect("serde");
    let by_schema = value.to_json().expect("poem-openapi");
    assert_eq!(by_serde, by_schema);
}
