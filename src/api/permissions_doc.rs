//! Writes each tenant route's permission into the OpenAPI document, from the same route table
//! and policy file the server enforces, so the docs cannot drift from the rules.
use serde_json::Value;

use crate::authz::{Authorizer, routes};

pub fn annotate(spec: &str, authz: &Authorizer) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(spec) else {
        return spec.to_owned();
    };
    for route in routes::table() {
        let method = route.method.as_str().to_ascii_lowercase();
        let Some(op) = doc.pointer_mut(&format!("/paths/{}/{method}", escape(route.path))) else {
            continue;
        };
        let roles = authz.roles_granting(route.permission);
        let note = format!(
            "Requires `{}`: {}.",
            route.permission,
            if roles.is_empty() {
                "no role".to_owned()
            } else {
                roles.join(", ")
            }
        );
        let description = match op.get("description").and_then(Value::as_str) {
            Some(existing) => format!("{existing}\n\n{note}"),
            None => note,
        };
        op["description"] = Value::String(description);
        op["x-permission"] = Value::String(route.permission.to_string());
        op["x-roles"] = Value::from(roles);
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| spec.to_owned())
}

/// JSON Pointer escaping of a path segment (`/` is `~1`).
fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}
