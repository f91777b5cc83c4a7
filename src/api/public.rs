//! Published posts of a tenant, without authentication.
use chrono::{DateTime, Utc};
use poem_openapi::{Object, OpenApi, param::Path, param::Query, payload::Json};

use super::{ApiTags, Page};
use crate::{
    db::entities::post,
    domain::{PageRequest, posts},
    error::{ApiError, ApiResult},
    state::AppState,
};

pub struct PublicApi {
    state: AppState,
}

impl super::Resource for PublicApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }
}

/// A published post as the public sees it: no internal ids, no author account.
#[derive(Object)]
struct PublicPost {
    slug: String,
    title: String,
    body: String,
    #[oai(nullable)]
    published_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl From<post::Model> for PublicPost {
    fn from(p: post::Model) -> Self {
        Self {
            slug: p.slug,
            title: p.title,
            body: p.body,
            published_at: p.published_at,
            updated_at: p.updated_at,
        }
    }
}

#[OpenApi(tag = "ApiTags::Public")]
impl PublicApi {
    /// Published posts of a tenant, newest first. `limit` is 1–100 (default 20).
    #[oai(path = "/public/:tenant/posts", method = "get")]
    async fn list_posts(
        &self,
        /// The tenant's slug.
        tenant: Path<String>,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
        /// Rows to skip, at most 10000.
        offset: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<PublicPost>>> {
        let page = PageRequest::parse(limit.0, offset.0)?;
        let db = &self.state.db;
        let scope = self
            .state
            .tenant_slugs
            .resolve(db, &tenant.0)
            .await?
            .ok_or(ApiError::NotFound)?;
        let page = posts::list_published(db, &scope, page).await?;
        Ok(Json(Page::from_domain(page)))
    }

    /// One published post of a tenant. Drafts answer 404, like missing posts.
    #[oai(path = "/public/:tenant/posts/:slug", method = "get")]
    async fn get_post(
        &self,
        /// The tenant's slug.
        tenant: Path<String>,
        /// The post's slug.
        slug: Path<String>,
    ) -> ApiResult<Json<PublicPost>> {
        let db = &self.state.db;
        let scope = self
            .state
            .tenant_slugs
            .resolve(db, &tenant.0)
            .await?
            .ok_or(ApiError::NotFound)?;
        let post = posts::find_published_by_slug(db, &scope, &slug.0)
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(Json(post.into()))
    }
}
