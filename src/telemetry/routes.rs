//! Route templates (`/api/v1/tenants/{tenant}/posts/{id}`) for metric labels, read from the
//! service's own OpenAPI document: a raw path would let every client mint label values.
use std::collections::HashSet;

/// The templates of every documented path, plus the few undocumented ones we serve.
#[derive(Debug, Clone, Default)]
pub struct RouteTemplates {
    routes: Vec<(&'static str, Vec<Segment>)>,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Param,
}

/// Served but not in the document.
const EXTRA: &[&str] = &["/openapi.json"];
/// Whole subtrees reported as one route.
const PREFIXES: &[(&str, &str)] = &[("/docs", "/docs")];
/// Everything else: one label, whatever the path.
pub const UNMATCHED: &str = "unmatched";

impl RouteTemplates {
    /// From the `paths` of an OpenAPI document (JSON). The templates live as long as the
    /// process (a handful of short strings, leaked once at start, so labels are `&'static`).
    pub fn from_openapi(document: &str) -> Self {
        let doc: serde_json::Value = serde_json::from_str(document).unwrap_or_default();
        let mut seen = HashSet::new();
        let paths = doc["paths"]
            .as_object()
            .map(|paths| paths.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        let routes = paths
            .into_iter()
            .chain(EXTRA.iter().map(|p| (*p).to_owned()))
            .filter(|p| seen.insert(p.clone()))
            .map(|template| {
                let segments = template
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            Segment::Param
                        } else {
                            Segment::Literal(s.to_owned())
                        }
                    })
                    .collect();
                let leaked: &'static str = Box::leak(template.into_boxed_str());
                (leaked, segments)
            })
            .collect();
        Self { routes }
    }

    /// The template `path` matches, most literal segments winning; [`UNMATCHED`] if none.
    pub fn template(&self, path: &str) -> &'static str {
        if let Some((_, label)) = PREFIXES.iter().find(|(prefix, _)| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        }) {
            return label;
        }
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.routes
            .iter()
            .filter(|(_, segments)| {
                segments.len() == parts.len()
                    && segments.iter().zip(&parts).all(|(s, p)| match s {
                        Segment::Literal(l) => l == p,
                        Segment::Param => true,
                    })
            })
            .max_by_key(|(_, segments)| {
                segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count()
            })
            .map_or(UNMATCHED, |(template, _)| template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_templates_and_the_rest_to_one_label() {
        let doc = r#"{"paths": {"/api/v1/tenants/{tenant}/posts/{id}": {}, "/api/v1/tenants/{tenant}/posts/{id}/publish": {}, "/api/v1/me": {}, "/api/v1/tenants/{tenant}/posts/drafts": {}}}"#;
        let routes = RouteTemplates::from_openapi(doc);
        assert_eq!(
            routes.template("/api/v1/tenants/acme/posts/0190"),
            "/api/v1/tenants/{tenant}/posts/{id}"
        );
        assert_eq!(
            routes.template("/api/v1/tenants/acme/posts/drafts"),
            "/api/v1/tenants/{tenant}/posts/drafts"
        );
        assert_eq!(routes.template("/api/v1/me"), "/api/v1/me");
        assert_eq!(routes.template("/docs/swagger.js"), "/docs");
        assert_eq!(routes.template("/wp-login.php"), UNMATCHED);
        assert_eq!(routes.template("/api/v1/me/extra"), UNMATCHED);
    }
}
