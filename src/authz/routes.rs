//! The permission each tenant route needs. Each API module declares its lines beside its
//! handlers with [`tenant_routes!`](crate::tenant_routes); the middleware, the
//! `x-permission`/`x-roles` fields of `/openapi.json` and the "no line → refused" rule all
//! read that one declaration through a [`RouteTable`].
//!
//! A request under `/api/v1/tenants/{tenant}` that matches no line is refused, so a new route
//! stays closed until it is given a permission.
use poem::http::Method;

use super::Permission;

pub const TENANT_PREFIX: &str = "/api/v1/tenants/";
/// The tenant routes' prefix in OpenAPI form; [`TenantRoute::path`] is relative to it.
pub const TENANT_PATH: &str = "/api/v1/tenants/{tenant}";

/// One line: `method path => permission`, the path relative to [`TENANT_PATH`] in OpenAPI
/// form (`/posts/{id}`).
#[derive(Debug, Clone)]
pub struct TenantRoute {
    pub method: Method,
    pub path: &'static str,
    pub permission: Permission,
}

/// Declares a module's tenant routes as `pub const ROUTES`:
/// `tenant_routes! { GET "/posts" => POSTS_READ; POST "/posts" => POSTS_CREATE; }`.
#[macro_export]
macro_rules! tenant_routes {
    ($($method:ident $path:literal => $permission:expr);* $(;)?) => {
        /// The permission each tenant route of this module needs.
        pub const ROUTES: &[$crate::authz::TenantRoute] = &[$($crate::authz::TenantRoute {
            method: ::poem::http::Method::$method,
            path: $path,
            permission: $permission,
        }),*];
    };
}

/// Every tenant route of the service, matched against requests.
pub struct RouteTable {
    lines: Vec<Line>,
}

/// A route with its path split once, relative to the tenant (`/posts/{id}` is `["", "posts",
/// "{id}"]`): a request is matched on what follows its tenant slug, so the prefix every line
/// shares is not compared again for each line.
struct Line {
    route: TenantRoute,
    segments: Vec<&'static str>,
    /// How many segments are `{variables}`: the fewest wins.
    variables: usize,
}

impl Line {
    /// Whether the request's segments after the slug fill this line's, one for one.
    fn matches(&self, depth: usize, rest: &str) -> bool {
        depth == self.segments.len()
            && self
                .segments
                .iter()
                .zip(rest.split('/'))
                .all(|(p, s)| (p.starts_with('{') && !s.is_empty()) || *p == s)
    }
}

impl RouteTable {
    pub fn new<'a>(routes: impl IntoIterator<Item = &'a TenantRoute>) -> Self {
        Self {
            lines: routes
                .into_iter()
                .map(|r| {
                    // Relative to the tenant path: `/posts`, or empty for the tenant itself.
                    assert!(
                        r.path.is_empty() || r.path.starts_with('/'),
                        "tenant route {:?} must start with '/'",
                        r.path
                    );
                    let segments: Vec<&'static str> = r.path.split('/').collect();
                    Line {
                        variables: segments.iter().filter(|p| p.starts_with('{')).count(),
                        segments,
                        route: r.clone(),
                    }
                })
                .collect(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &TenantRoute> {
        self.lines.iter().map(|line| &line.route)
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The lines of `method` (any method when `None`) covering a request path.
    fn covering<'t>(
        &'t self,
        method: Option<&'t Method>,
        path: &'t str,
    ) -> impl Iterator<Item = &'t Line> + 't {
        let rest = below_tenant(path);
        let depth = rest.map_or(0, |rest| rest.bytes().filter(|b| *b == b'/').count() + 1);
        self.lines.iter().filter(move |line| {
            method.is_none_or(|method| line.route.method == method)
                && rest.is_some_and(|rest| line.matches(depth, rest))
        })
    }

    /// The methods declared for a path (none when no line covers it): what `Allow` lists
    /// when a request uses another method.
    pub fn methods_for(&self, path: &str) -> Vec<Method> {
        let mut methods: Vec<Method> = Vec::new();
        for line in self.covering(None, path) {
            if !methods.contains(&line.route.method) {
                methods.push(line.route.method.clone());
            }
        }
        methods
    }

    /// The permission for a request, or `None` when no line matches.
    pub fn permission_for(&self, method: &Method, path: &str) -> Option<Permission> {
        // HEAD is a GET without a body: same permission.
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        // The most specific line wins (fewest variables), whatever the order of declaration:
        // a later `GET /posts/export` is not taken for `GET /posts/{id}`.
        self.covering(Some(method), path)
            .min_by_key(|line| line.variables)
            .map(|line| line.route.permission)
    }
}

impl TenantRoute {
    /// The route's path in OpenAPI form, as the generated document spells it.
    pub fn full_path(&self) -> String {
        format!("{TENANT_PATH}{}", self.path)
    }
}

/// A tenant path's slug and what follows it from its `/` (`/api/v1/tenants/acme/posts` gives
/// `("acme", "/posts")`); `None` for a path outside the tenants.
fn split_tenant(path: &str) -> Option<(&str, &str)> {
    let after = path.strip_prefix(TENANT_PREFIX)?;
    Some(after.split_at(after.find('/').unwrap_or(after.len())))
}

/// What follows a non-empty tenant slug in a request path, trailing slashes dropped
/// (`/api/v1/tenants/acme/posts/` gives `/posts`); `None` for any other path.
fn below_tenant(path: &str) -> Option<&str> {
    split_tenant(path.trim_end_matches('/'))
        .filter(|(slug, _)| !slug.is_empty())
        .map(|(_, rest)| rest)
}

/// The tenant slug of a tenant-scoped path: `/api/v1/tenants/{slug}` and anything below it.
/// Any such path is scoped, even with an empty slug or tail (which then resolves to no
/// tenant), so nothing under a tenant reaches a handler without the middleware's decision.
pub fn tenant_slug(path: &str) -> Option<&str> {
    match split_tenant(path)? {
        ("", "") => None,
        (slug, _) => Some(slug),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ: Permission = Permission::new("posts", "read");
    const UPDATE: Permission = Permission::new("posts", "update");
    const DELETE: Permission = Permission::new("comments", "delete");
    const PUBLISH: Permission = Permission::new("posts", "publish");

    fn table() -> RouteTable {
        let routes = [
            TenantRoute {
                method: Method::GET,
                path: "/posts",
                permission: READ,
            },
            TenantRoute {
                method: Method::PATCH,
                path: "/posts/{id}",
                permission: UPDATE,
            },
            TenantRoute {
                method: Method::POST,
                path: "/posts/{id}/publish",
                permission: PUBLISH,
            },
            TenantRoute {
                method: Method::GET,
                path: "/posts/{id}/comments",
                permission: READ,
            },
            TenantRoute {
                method: Method::DELETE,
                path: "/posts/{id}/comments/{cid}",
                permission: DELETE,
            },
        ];
        RouteTable::new(&routes)
    }

    #[test]
    fn requests_map_to_their_route_permission() {
        let t = table();
        let p = |m: Method, path: &str| t.permission_for(&m, path);
        assert_eq!(p(Method::GET, "/api/v1/tenants/acme/posts"), Some(READ));
        assert_eq!(p(Method::HEAD, "/api/v1/tenants/acme/posts"), Some(READ));
        assert_eq!(p(Method::GET, "/api/v1/tenants/acme/posts/"), Some(READ));
        assert_eq!(
            p(Method::PATCH, "/api/v1/tenants/acme/posts/123"),
            Some(UPDATE)
        );
        assert_eq!(
            p(Method::DELETE, "/api/v1/tenants/acme/posts/1/comments/2"),
            Some(DELETE)
        );
        assert_eq!(
            p(Method::POST, "/api/v1/tenants/acme/posts/1/publish"),
            Some(PUBLISH)
        );
    }

    #[test]
    fn a_literal_segment_wins_over_a_variable_whatever_the_order() {
        const EXPORT: Permission = Permission::new("posts", "export");
        let routes = [
            TenantRoute {
                method: Method::GET,
                path: "/posts/{id}",
                permission: READ,
            },
            TenantRoute {
                method: Method::GET,
                path: "/posts/export",
                permission: EXPORT,
            },
        ];
        let t = RouteTable::new(&routes);
        let p = |path: &str| t.permission_for(&Method::GET, path);
        assert_eq!(p("/api/v1/tenants/acme/posts/export"), Some(EXPORT));
        assert_eq!(p("/api/v1/tenants/acme/posts/123"), Some(READ));
    }

    #[test]
    fn unknown_routes_have_no_permission_and_are_refused() {
        let t = table();
        let p = |m: Method, path: &str| t.permission_for(&m, path);
        assert_eq!(p(Method::PUT, "/api/v1/tenants/acme/posts/1"), None);
        assert_eq!(p(Method::GET, "/api/v1/tenants/acme/secrets"), None);
        assert_eq!(p(Method::GET, "/api/v1/tenants/acme/posts/1/x"), None);
        assert_eq!(p(Method::GET, "/api/v1/tenants/acme/posts//comments"), None);
        assert_eq!(p(Method::GET, "/api/v1/tenants/acme"), None);
        assert_eq!(p(Method::GET, "/api/v1/tenants//posts"), None);
        assert_eq!(p(Method::GET, "/api/v2/tenants/acme/posts"), None);
        assert_eq!(p(Method::GET, "/posts"), None);
    }

    #[test]
    fn the_methods_of_a_path_are_those_of_its_lines() {
        let t = table();
        assert_eq!(
            t.methods_for("/api/v1/tenants/acme/posts/1/comments"),
            vec![Method::GET]
        );
        assert_eq!(
            t.methods_for("/api/v1/tenants/acme/posts/1"),
            vec![Method::PATCH]
        );
        assert!(t.methods_for("/api/v1/tenants/acme/secrets").is_empty());
        assert!(t.methods_for("/api/v1/tenants//posts").is_empty());
    }

    #[test]
    fn the_tenant_slug_is_read_from_tenant_paths_only() {
        assert_eq!(tenant_slug("/api/v1/tenants/acme/posts"), Some("acme"));
        assert_eq!(tenant_slug("/api/v1/tenants//members"), Some(""));
        assert_eq!(tenant_slug("/api/v1/tenants/acme/"), Some("acme"));
        assert_eq!(tenant_slug("/api/v1/tenants"), None);
        assert_eq!(tenant_slug("/api/v1/tenants/"), None);
        // The bare tenant path is scoped too: a future route there is closed until declared.
        assert_eq!(tenant_slug("/api/v1/tenants/acme"), Some("acme"));
    }
}
