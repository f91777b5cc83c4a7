//! Finishes the generated OpenAPI document from the same declarations the server enforces:
//! each tenant route's permission and the roles that hold it, so the docs cannot drift from
//! the rules.
use serde_json::{Map, Value};

use crate::authz::{Authorizer, RouteTable, routes::TENANT_PATH};

/// Tenant APIs are mounted under the route variable `:tenant` (a `prefix_path`), which the
/// generator copies verbatim; the document spells it `{tenant}`.
const TENANT_ROUTE_PREFIX: &str = "/api/v1/tenants/:tenant";

pub fn annotate(spec: &str, routes: &RouteTable, authz: &Authorizer) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(spec) else {
        return spec.to_owned();
    };
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        let renamed: Map<String, Value> = std::mem::take(paths)
            .into_iter()
            .map(
                |(path, item)| match path.strip_prefix(TENANT_ROUTE_PREFIX) {
                    Some(rest) => (format!("{TENANT_PATH}{rest}"), item),
                    None => (path, item),
                },
            )
            .collect();
        *paths = renamed;
    }
    for route in routes.iter() {
        let method = route.method.as_str().to_ascii_lowercase();
        let pointer = format!("/paths/{}/{method}", escape(&route.full_path()));
        let Some(op) = doc.pointer_mut(&pointer) else {
            continue;
        };
        let roles = authz.roles_granting(route.permission);
        let holders = if roles.is_empty() {
            "no role".to_owned()
        } else {
            roles.join(", ")
        };
        let note = format!("Requires `{}`: {holders}.", route.permission);
        // The summary is what the docs UI shows on the collapsed line.
        let requires = format!("requires `{}` ({holders})", route.permission);
        let summary = match op.get("summary").and_then(Value::as_str) {
            Some(existing) => format!("{} · {requires}", existing.trim_end_matches('.')),
            None => requires,
        };
        op["summary"] = Value::String(summary);
        let description = match op.get("description").and_then(Value::as_str) {
            Some(existing) => format!("{existing}\n\n{note}"),
            None => note,
        };
        op["description"] = Value::String(description);
        op["x-permission"] = Value::String(route.permission.to_string());
        op["x-roles"] = Value::from(roles);
        describe_tenant_parameter(op);
    }
    for (path, method) in SELF_AUTHENTICATED {
        let pointer = format!("/paths/{}/{method}", escape(path));
        if let Some(op) = doc.pointer_mut(&pointer) {
            op["security"] = SESSION_SCHEMES
                .iter()
                .map(|scheme| {
                    Value::Object(Map::from_iter([(scheme.to_string(), Value::Array(vec![]))]))
                })
                .collect();
        }
    }
    super::oauth::document_errors(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| spec.to_owned())
}

/// Operations that resolve their caller themselves (the logouts: an expired access token or
/// the refresh cookie alone may still end a session, and a page's form sends its CSRF token
/// in a field), so no security extractor declares what they accept.
const SELF_AUTHENTICATED: [(&str, &str); 2] =
    [("/auth/logout", "post"), ("/auth/logout-all", "post")];

/// What they accept: a session, by bearer token or by cookie (see `super::security`).
const SESSION_SCHEMES: [&str; 2] = ["BearerAuth", "SessionCookieAuth"];

fn describe_tenant_parameter(op: &mut Value) {
    let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
        return;
    };
    for param in params {
        if param["name"] == "tenant" && param["in"] == "path" && param.get("description").is_none()
        {
            param["description"] = Value::String("The tenant's slug.".into());
        }
    }
}

/// JSON Pointer escaping of a path segment (`/` is `~1`).
fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}
