//! Posts and their comments in a tenant. The middleware has already checked the route's
//! permission (declared below in `ROUTES`); handlers add what only the row can tell:
//! visibility of drafts and ownership.
use chrono::{DateTime, Utc};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use uuid::Uuid;

use super::{
    ApiTags, Deleted, IfMatch, JsonBody, JsonReply, Page, Resource, Tagged,
    json_reply::{WriteJson, rfc3339, rfc3339_opt, write},
};
use crate::{
    authz::{Permission, TenantAccess, TenantRoute},
    db::entities::{PostStatus, comment, post},
    domain::{
        PageRequest, comments,
        posts::{self, PostForCreate, PostForUpdate, Visibility},
    },
    error::{ApiError, ApiResult},
    state::AppState,
};

crate::permissions! {
    POSTS_READ = "posts" : "read",
    /// See every draft, not only one's own.
    POSTS_READ_DRAFTS = "posts" : "read_drafts",
    POSTS_CREATE = "posts" : "create",
    POSTS_UPDATE = "posts" : "update",
    POSTS_UPDATE_ANY = "posts" : "update_any",
    POSTS_DELETE = "posts" : "delete",
    POSTS_DELETE_ANY = "posts" : "delete_any",
    POSTS_PUBLISH = "posts" : "publish",
    POSTS_PUBLISH_ANY = "posts" : "publish_any",
    COMMENTS_READ = "comments" : "read",
    COMMENTS_CREATE = "comments" : "create",
    COMMENTS_DELETE = "comments" : "delete",
    COMMENTS_DELETE_ANY = "comments" : "delete_any",
}

crate::tenant_routes! {
    GET    "/posts" => POSTS_READ;
    POST   "/posts" => POSTS_CREATE;
    GET    "/posts/{id}" => POSTS_READ;
    PATCH  "/posts/{id}" => POSTS_UPDATE;
    DELETE "/posts/{id}" => POSTS_DELETE;
    POST   "/posts/{id}/publish" => POSTS_PUBLISH;
    POST   "/posts/{id}/unpublish" => POSTS_PUBLISH;
    GET    "/posts/{id}/comments" => COMMENTS_READ;
    POST   "/posts/{id}/comments" => COMMENTS_CREATE;
    DELETE "/posts/{id}/comments/{cid}" => COMMENTS_DELETE;
}

pub struct PostsApi {
    state: AppState,
}

impl Resource for PostsApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }

    const ROUTES: &'static [TenantRoute] = ROUTES;
    const PERMISSIONS: &'static [Permission] = PERMISSIONS;
}

#[derive(Object, serde::Serialize)]
struct Post {
    id: Uuid,
    slug: String,
    title: String,
    body: String,
    status: PostStatus,
    author_id: Uuid,
    /// Also sent as the `ETag`; send it back in `If-Match` to update.
    version: i32,
    #[oai(nullable)]
    #[serde(serialize_with = "rfc3339_opt")]
    published_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    updated_at: DateTime<Utc>,
}

impl From<post::Model> for Post {
    fn from(p: post::Model) -> Self {
        Self {
            id: p.id,
            slug: p.slug,
            title: p.title,
            body: p.body,
            status: p.status,
            author_id: p.author_id,
            version: p.version,
            published_at: p.published_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

impl WriteJson for Post {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), sonic_rs::Error> {
        write::raw(out, "{\"id\":");
        write::uuid(out, &self.id);
        write::raw(out, ",\"slug\":");
        write::text(out, &self.slug)?;
        write::raw(out, ",\"title\":");
        write::text(out, &self.title)?;
        write::raw(out, ",\"body\":");
        write::text(out, &self.body)?;
        write::raw(
            out,
            match self.status {
                PostStatus::Draft => ",\"status\":\"draft\"",
                PostStatus::Published => ",\"status\":\"published\"",
            },
        );
        write::raw(out, ",\"author_id\":");
        write::uuid(out, &self.author_id);
        write::raw(out, ",\"version\":");
        write::int(out, self.version);
        write::raw(out, ",\"published_at\":");
        write::optional_date(out, &self.published_at);
        write::raw(out, ",\"created_at\":");
        write::date(out, &self.created_at);
        write::raw(out, ",\"updated_at\":");
        write::date(out, &self.updated_at);
        write::raw(out, "}");
        Ok(())
    }
}

/// A new draft: only these fields can be set.
#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePost {
    title: String,
    /// Unique in the tenant: 1–100 of `a-z`, `0-9`, inner `-`.
    slug: String,
    body: String,
}

/// Changes to a post; absent fields stay. Status changes go through publish/unpublish.
#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePost {
    #[oai(nullable)]
    title: Option<String>,
    #[oai(nullable)]
    slug: Option<String>,
    #[oai(nullable)]
    body: Option<String>,
}

#[derive(Object)]
struct Comment {
    id: Uuid,
    post_id: Uuid,
    author_id: Uuid,
    body: String,
    created_at: DateTime<Utc>,
}

impl From<comment::Model> for Comment {
    fn from(c: comment::Model) -> Self {
        Self {
            id: c.id,
            post_id: c.post_id,
            author_id: c.author_id,
            body: c.body,
            created_at: c.created_at,
        }
    }
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateComment {
    /// 1–10000 characters.
    body: String,
}

#[derive(ApiResponse)]
enum CommentCreated {
    #[oai(status = 201)]
    Created(Json<Comment>),
}

type PostResponse = Tagged<Post>;

fn ok(p: post::Model) -> PostResponse {
    let version = p.version;
    Tagged::ok(p, version)
}

/// Which posts this caller may see.
fn visibility(access: &TenantAccess) -> Visibility {
    if access.can(POSTS_READ_DRAFTS) {
        Visibility::All
    } else if access.role_allows(POSTS_CREATE) {
        Visibility::PublishedAndOwnDrafts(access.user_id())
    } else {
        Visibility::Published
    }
}

#[OpenApi(prefix_path = "/api/v1/tenants/:tenant", tag = "ApiTags::Posts")]
impl PostsApi {
    /// Posts of the tenant, newest first. Viewers see published posts; authors also their own
    /// drafts; editors and up everything.
    #[oai(path = "/posts", method = "get")]
    async fn list(
        &self,
        tenant: TenantAccess,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
        /// Rows to skip, at most 10000.
        offset: Query<Option<u64>>,
    ) -> ApiResult<JsonReply<Page<Post>>> {
        let page = PageRequest::parse(limit.0, offset.0)?;
        let page =
            posts::list(&self.state.reads, tenant.scope(), visibility(&tenant), page).await?;
        Ok(JsonReply(Page::from_domain(page)))
    }

    /// Creates a draft; the caller is its author. 409 if the slug is taken in this tenant.
    #[oai(path = "/posts", method = "post")]
    async fn create(
        &self,
        tenant: TenantAccess,
        body: JsonBody<CreatePost>,
    ) -> ApiResult<PostResponse> {
        let CreatePost { title, slug, body } = body.0;
        let new = PostForCreate { title, slug, body };
        let created = posts::create(&self.state.db, tenant.scope(), tenant.user_id(), new).await?;
        let version = created.version;
        Ok(Tagged::created(created, version))
    }

    /// One post. Drafts are visible to their author and to editors and up.
    #[oai(path = "/posts/:id", method = "get")]
    async fn get(&self, tenant: TenantAccess, id: Path<Uuid>) -> ApiResult<PostResponse> {
        Ok(ok(self.visible(&tenant, id.0).await?))
    }

    /// Changes a post. Authors change only their own; editors and up any. Needs `If-Match`
    /// with the current `ETag` (or `*`): a stale one gets 412 and changes nothing.
    #[oai(path = "/posts/:id", method = "patch")]
    async fn update(
        &self,
        tenant: TenantAccess,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: IfMatch,
        body: JsonBody<UpdatePost>,
    ) -> ApiResult<PostResponse> {
        let post = self.visible(&tenant, id.0).await?;
        tenant.require_owner_or(post.author_id, POSTS_UPDATE_ANY)?;
        let expected = if_match.required()?;
        let UpdatePost { title, slug, body } = body.0;
        let changes = PostForUpdate { title, slug, body };
        let db = &self.state.db;
        Ok(ok(posts::update(
            db,
            tenant.scope(),
            post.id,
            expected,
            changes,
        )
        .await?))
    }

    /// Deletes a post and its comments. Authors delete only their own; editors and up any.
    /// `If-Match` is optional here; when sent, a stale one gets 412.
    #[oai(path = "/posts/:id", method = "delete")]
    async fn delete(
        &self,
        tenant: TenantAccess,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: IfMatch,
    ) -> ApiResult<Deleted> {
        let post = self.visible(&tenant, id.0).await?;
        tenant.require_owner_or(post.author_id, POSTS_DELETE_ANY)?;
        posts::delete(&self.state.db, tenant.scope(), post.id, if_match.optional()).await?;
        Ok(Deleted::Deleted)
    }

    /// Publishes a post (authors their own, editors and up any). Needs `If-Match`.
    #[oai(path = "/posts/:id/publish", method = "post")]
    async fn publish(
        &self,
        tenant: TenantAccess,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: IfMatch,
    ) -> ApiResult<PostResponse> {
        self.set_status(&tenant, id.0, &if_match, PostStatus::Published)
            .await
    }

    /// Returns a post to draft (authors their own, editors and up any). Needs `If-Match`.
    #[oai(path = "/posts/:id/unpublish", method = "post")]
    async fn unpublish(
        &self,
        tenant: TenantAccess,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: IfMatch,
    ) -> ApiResult<PostResponse> {
        self.set_status(&tenant, id.0, &if_match, PostStatus::Draft)
            .await
    }

    /// Comments on a post the caller can see, oldest first.
    #[oai(path = "/posts/:id/comments", method = "get")]
    async fn list_comments(
        &self,
        tenant: TenantAccess,
        id: Path<Uuid>,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
        /// Rows to skip, at most 10000.
        offset: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<Comment>>> {
        let page = PageRequest::parse(limit.0, offset.0)?;
        let post = self.visible(&tenant, id.0).await?;
        let page = comments::list(&self.state.db, tenant.scope(), post.id, page).await?;
        Ok(Json(Page::from_domain(page)))
    }

    /// Comments on a post the caller can see (any member but viewers).
    #[oai(path = "/posts/:id/comments", method = "post")]
    async fn create_comment(
        &self,
        tenant: TenantAccess,
        id: Path<Uuid>,
        body: JsonBody<CreateComment>,
    ) -> ApiResult<CommentCreated> {
        let post = self.visible(&tenant, id.0).await?;
        let db = &self.state.db;
        let created =
            comments::create(db, tenant.scope(), post.id, tenant.user_id(), &body.0.body).await?;
        Ok(CommentCreated::Created(Json(created.into())))
    }

    /// Deletes a comment: its author, or editors and up.
    #[oai(path = "/posts/:id/comments/:cid", method = "delete")]
    async fn delete_comment(
        &self,
        tenant: TenantAccess,
        id: Path<Uuid>,
        cid: Path<Uuid>,
    ) -> ApiResult<Deleted> {
        let post = self.visible(&tenant, id.0).await?;
        let db = &self.state.db;
        let comment = comments::find(db, tenant.scope(), post.id, cid.0)
            .await?
            .ok_or(ApiError::NotFound)?;
        tenant.require_owner_or(comment.author_id, COMMENTS_DELETE_ANY)?;
        comments::delete(db, tenant.scope(), comment.id).await?;
        Ok(Deleted::Deleted)
    }
}

impl PostsApi {
    /// A post the caller may see, or 404: hidden drafts and missing posts look the same.
    async fn visible(&self, access: &TenantAccess, id: Uuid) -> ApiResult<post::Model> {
        posts::find(&self.state.db, access.scope(), visibility(access), id)
            .await?
            .ok_or(ApiError::NotFound)
    }

    async fn set_status(
        &self,
        tenant: &TenantAccess,
        id: Uuid,
        if_match: &IfMatch,
        status: PostStatus,
    ) -> ApiResult<PostResponse> {
        let post = self.visible(tenant, id).await?;
        tenant.require_owner_or(post.author_id, POSTS_PUBLISH_ANY)?;
        let expected = if_match.required()?;
        let db = &self.state.db;
        Ok(ok(posts::set_status(
            db,
            tenant.scope(),
            post.id,
            expected,
            status,
        )
        .await?))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::api::json_reply::assert_same_json;

    #[test]
    fn a_page_of_posts_is_written_as_its_schema_says() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
            + chrono::Duration::microseconds(123_456);
        let post = |published_at, status| Post {
            id: Uuid::now_v7(),
            slug: "hello".into(),
            title: "Hello \"world\" <&>".into(),
            body: "line\nbreak \u{1F600}".into(),
            status,
            author_id: Uuid::new_v4(),
            version: 3,
            published_at,
            created_at: at,
            updated_at: at,
        };
        // Every ASCII character in free text, a date chrono writes itself (past year 9999).
        let ascii: String = (0u8..0x80).map(char::from).collect();
        let odd = || Post {
            slug: ascii.clone(),
            title: ascii.clone(),
            body: ascii.repeat(3),
            version: -1,
            created_at: Utc.with_ymd_and_hms(12_000, 1, 1, 0, 0, 0).unwrap(),
            ..post(None, PostStatus::Draft)
        };
        for next_offset in [None, Some(20)] {
            let items = vec![
                post(Some(at), PostStatus::Published),
                post(None, PostStatus::Draft),
                odd(),
            ];
            assert_same_json(&Page {
                items,
                limit: 20,
                offset: 0,
                next_offset,
            });
        }
    }
}
