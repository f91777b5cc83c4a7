//! Published posts of a tenant, without authentication.
use chrono::{DateTime, Utc};
use poem_openapi::{Object, OpenApi, param::Path, param::Query, payload::Json};

use super::{
    ApiTags, JsonReply, Page,
    json_reply::{WriteJson, rfc3339, rfc3339_opt, write},
};
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
#[derive(Object, serde::Serialize)]
struct PublicPost {
    slug: String,
    title: String,
    body: String,
    #[oai(nullable)]
    #[serde(serialize_with = "rfc3339_opt")]
    published_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
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

impl WriteJson for PublicPost {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), sonic_rs::Error> {
        write::raw(out, "{\"slug\":");
        write::text(out, &self.slug)?;
        write::raw(out, ",\"title\":");
        write::text(out, &self.title)?;
        write::raw(out, ",\"body\":");
        write::text(out, &self.body)?;
        write::raw(out, ",\"published_at\":");
        write::optional_date(out, &self.published_at);
        write::raw(out, ",\"updated_at\":");
        write::date(out, &self.updated_at);
        write::raw(out, "}");
        Ok(())
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
    ) -> ApiResult<JsonReply<Page<PublicPost>>> {
        let page = PageRequest::parse(limit.0, offset.0)?;
        let db = &self.state.db;
        let scope = self
            .state
            .tenant_slugs
            .resolve(db, &tenant.0)
            .await?
            .ok_or(ApiError::NotFound)?;
        let page = posts::list_published(&self.state.reads, &scope, page).await?;
        Ok(JsonReply(Page::from_domain(page)))
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::api::json_reply::assert_same_json;

    #[test]
    fn a_page_of_public_posts_is_written_as_its_schema_says() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        for (published_at, next_offset) in [(Some(at), Some(40)), (None, None)] {
            let post = |body: String| PublicPost {
                slug: "s".into(),
                title: "\u{7}tab\t".into(),
                body,
                published_at,
                updated_at: at,
            };
            let ascii: String = (0u8..0x80).map(char::from).collect();
            assert_same_json(&Page {
                items: vec![post(String::new()), post(ascii.repeat(2))],
                limit: 1,
                offset: 40,
                next_offset,
            });
        }
    }
}
