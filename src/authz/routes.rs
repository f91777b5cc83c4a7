//! The permission each tenant route needs: the single source for the middleware and the docs.
//!
//! A request under `/api/v1/tenants/{tenant}/` that matches no line here is refused, so a new
//! route stays closed until it is given a permission.
use poem::http::Method;

use super::{Permission, perms::*};

pub const TENANT_PREFIX: &str = "/api/v1/tenants/";

pub struct RoutePermission {
    pub method: Method,
    /// In OpenAPI form, as the generated document spells it.
    pub path: &'static str,
    pub permission: Permission,
    /// What the handler also requires for rows the caller does not own (or cannot otherwise
    /// see), documented beside the route's own permission.
    pub others: Option<Permission>,
}

macro_rules! routes {
    ($($method:ident $path:literal => $perm:expr $(, others $any:expr)?);* $(;)?) => {
        vec![$(RoutePermission { method: Method::$method, path: $path, permission: $perm, others: routes!(@any $($any)?) }),*]
    };
    (@any $any:expr) => { Some($any) };
    (@any) => { None };
}

pub fn table() -> Vec<RoutePermission> {
    routes![
        GET    "/api/v1/tenants/{tenant}/members" => MEMBERS_READ;
        POST   "/api/v1/tenants/{tenant}/members" => MEMBERS_MANAGE, others MEMBERS_MANAGE_OWNERS;
        PATCH  "/api/v1/tenants/{tenant}/members/{user}" => MEMBERS_MANAGE, others MEMBERS_MANAGE_OWNERS;
        DELETE "/api/v1/tenants/{tenant}/members/{user}" => MEMBERS_MANAGE, others MEMBERS_MANAGE_OWNERS;
        GET    "/api/v1/tenants/{tenant}/posts" => POSTS_READ, others POSTS_READ_DRAFTS;
        POST   "/api/v1/tenants/{tenant}/posts" => POSTS_CREATE;
        GET    "/api/v1/tenants/{tenant}/posts/{id}" => POSTS_READ, others POSTS_READ_DRAFTS;
        PATCH  "/api/v1/tenants/{tenant}/posts/{id}" => POSTS_UPDATE, others POSTS_UPDATE_ANY;
        DELETE "/api/v1/tenants/{tenant}/posts/{id}" => POSTS_DELETE, others POSTS_DELETE_ANY;
        POST   "/api/v1/tenants/{tenant}/posts/{id}/publish" => POSTS_PUBLISH, others POSTS_PUBLISH_ANY;
        POST   "/api/v1/tenants/{tenant}/posts/{id}/unpublish" => POSTS_PUBLISH, others POSTS_PUBLISH_ANY;
        GET    "/api/v1/tenants/{tenant}/posts/{id}/comments" => COMMENTS_READ, others POSTS_READ_DRAFTS;
        POST   "/api/v1/tenants/{tenant}/posts/{id}/comments" => COMMENTS_CREATE, others POSTS_READ_DRAFTS;
        DELETE "/api/v1/tenants/{tenant}/posts/{id}/comments/{cid}" => COMMENTS_DELETE, others COMMENTS_DELETE_ANY;
    ]
}

/// The permission for a request, or `None` when no route line matches.
pub fn permission_for(
    table: &[RoutePermission],
    method: &Method,
    path: &str,
) -> Option<Permission> {
    // HEAD is a GET without a body: same permission.
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    table
        .iter()
        .find(|r| r.method == method && matches(r.path, &segments))
        .map(|r| r.permission)
}

fn matches(pattern: &str, segments: &[&str]) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    pattern.len() == segments.len()
        && pattern
            .iter()
            .zip(segments)
            .all(|(p, s)| (p.starts_with('{') && !s.is_empty()) || p == s)
}

/// The tenant slug of a tenant-scoped path (`/api/v1/tenants/{slug}/...`). Any path below a
/// tenant is scoped, even with an empty slug or tail (which then resolves to no tenant), so
/// nothing under the prefix reaches a handler without the middleware's decision.
pub fn tenant_slug(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(TENANT_PREFIX)?;
    rest.split_once('/').map(|(slug, _)| slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_their_route_permission() {
        let t = table();
        let p = |m: Method, path: &str| permission_for(&t, &m, path);
        assert_eq!(
            p(Method::GET, "/api/v1/tenants/acme/posts"),
            Some(POSTS_READ)
        );
        assert_eq!(
            p(Method::HEAD, "/api/v1/tenants/acme/posts"),
            Some(POSTS_READ)
        );
        assert_eq!(
            p(Method::PATCH, "/api/v1/tenants/acme/posts/123"),
            Some(POSTS_UPDATE)
        );
        assert_eq!(
            p(Method::DELETE, "/api/v1/tenants/acme/posts/1/comments/2"),
            Some(COMMENTS_DELETE)
        );
        assert_eq!(
            p(Method::POST, "/api/v1/tenants/acme/posts/1/publish"),
            Some(POSTS_PUBLISH)
        );
    }

    #[test]
    fn unknown_routes_have_no_permission_and_are_refused() {
        let t = table();
        assert_eq!(
            permission_for(&t, &Method::PUT, "/api/v1/tenants/acme/posts/1"),
            None
        );
        assert_eq!(
            permission_for(&t, &Method::GET, "/api/v1/tenants/acme/secrets"),
            None
        );
        assert_eq!(
            permission_for(&t, &Method::GET, "/api/v1/tenants/acme/posts/1/x"),
            None
        );
        assert_eq!(
            permission_for(&t, &Method::GET, "/api/v1/tenants/acme/posts//comments"),
            None
        );
    }

    #[test]
    fn the_tenant_slug_is_read_from_tenant_paths_only() {
        assert_eq!(tenant_slug("/api/v1/tenants/acme/posts"), Some("acme"));
        assert_eq!(tenant_slug("/api/v1/tenants//members"), Some(""));
        assert_eq!(tenant_slug("/api/v1/tenants/acme/"), Some("acme"));
        assert_eq!(tenant_slug("/api/v1/tenants"), None);
        assert_eq!(tenant_slug("/api/v1/tenants/"), None);
        assert_eq!(tenant_slug("/api/v1/tenants/acme"), None);
    }
}
