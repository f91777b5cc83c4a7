//! Posts and their comments in a tenant. The middleware has already checked the route's
//! permission; handlers add what only the row can tell: visibility of drafts and ownership.
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path, Query},
    payload::Json,
};
use uuid::Uuid;

use super::{ApiTags, json::JsonBody, security::Auth};
use crate::{
    app::AppState,
    authz::{TenantAccess, perms},
    db::entities::{PostStatus, comment, post},
    domain::{
        PageRequest, comments,
        posts::{self, PostForCreate, PostForUpdate, Visibility},
    },
    error::{ApiError, ApiResult},
};

pub struct PostsApi {
    state: AppState,
}

impl PostsApi {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[derive(Object)]
struct Post {
    id: Uuid,
    slug: String,
    title: String,
    body: String,
    status: PostStatus,
    author_id: Uuid,
    /// Also sent as the `ETag`; send it back in `If-Match` to update.
    version: i32,
    published_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
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

#[derive(Object)]
struct PostPage {
    items: Vec<Post>,
    limit: u64,
    offset: u64,
    next_offset: Option<u64>,
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
    title: Option<String>,
    slug: Option<String>,
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

#[derive(Object)]
struct CommentPage {
    items: Vec<Comment>,
    limit: u64,
    offset: u64,
    next_offset: Option<u64>,
}

#[derive(Object, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateComment {
    /// 1–10000 characters.
    body: String,
}

#[derive(ApiResponse)]
enum PostResponse {
    #[oai(status = 200)]
    Ok(Json<Post>, #[oai(header = "ETag")] String),
    #[oai(status = 201)]
    Created(Json<Post>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
enum CommentCreated {
    #[oai(status = 201)]
    Created(Json<Comment>),
}

#[derive(ApiResponse)]
enum Deleted {
    #[oai(status = 204)]
    Deleted,
}

fn etag(p: &post::Model) -> String {
    format!("\"{}\"", p.version)
}

fn ok(p: post::Model) -> PostResponse {
    let tag = etag(&p);
    PostResponse::Ok(Json(p.into()), tag)
}

/// The version an `If-Match` names. Weak or foreign tags never match (strong comparison).
fn expected_version(if_match: Option<&str>) -> ApiResult<i32> {
    let value = if_match.ok_or(ApiError::PreconditionRequired)?;
    value
        .trim()
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .and_then(|v| v.parse().ok())
        .ok_or(ApiError::PreconditionFailed)
}

/// Which posts this caller may see.
fn visibility(access: &TenantAccess) -> Visibility {
    if access.can(perms::POSTS_READ_DRAFTS) {
        Visibility::All
    } else if access.role_allows(perms::POSTS_CREATE) {
        Visibility::PublishedAndOwnDrafts(access.user_id())
    } else {
        Visibility::Published
    }
}

impl PostsApi {
    /// A post the caller may see, or 404: hidden drafts and missing posts look the same.
    async fn visible(&self, access: &TenantAccess, id: Uuid) -> ApiResult<post::Model> {
        posts::find(&self.state.db, &access.scope, visibility(access), id)
            .await?
            .ok_or(ApiError::NotFound)
    }
}

#[OpenApi(tag = "ApiTags::Posts")]
impl PostsApi {
    /// Posts of the tenant, newest first. Viewers see published posts; authors also their own
    /// drafts; editors and up everything.
    #[oai(path = "/api/v1/tenants/:tenant/posts", method = "get")]
    async fn list(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        /// The tenant's slug.
        #[allow(unused_variables)]
        tenant: Path<String>,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
        /// Rows to skip, at most 10000.
        offset: Query<Option<u64>>,
    ) -> ApiResult<Json<PostPage>> {
        let page = PageRequest::parse(limit.0, offset.0)?;
        let page = posts::list(&self.state.db, &access.scope, visibility(&access), page)
            .await?
            .map(Post::from);
        Ok(Json(PostPage {
            items: page.items,
            limit: page.limit,
            offset: page.offset,
            next_offset: page.next_offset,
        }))
    }

    /// Creates a draft; the caller is its author. 409 if the slug is taken in this tenant.
    #[oai(path = "/api/v1/tenants/:tenant/posts", method = "post")]
    async fn create(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        #[allow(unused_variables)] tenant: Path<String>,
        body: JsonBody<CreatePost>,
    ) -> ApiResult<PostResponse> {
        let body = body.0;
        let new = PostForCreate {
            title: body.title,
            slug: body.slug,
            body: body.body,
        };
        let created = posts::create(&self.state.db, &access.scope, access.user_id(), new).await?;
        let tag = etag(&created);
        Ok(PostResponse::Created(Json(created.into()), tag))
    }

    /// One post. Drafts are visible to their author and to editors and up.
    #[oai(path = "/api/v1/tenants/:tenant/posts/:id", method = "get")]
    async fn get(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        #[allow(unused_variables)] tenant: Path<String>,
        id: Path<Uuid>,
    ) -> ApiResult<PostResponse> {
        Ok(ok(self.visible(&access, id.0).await?))
    }

    /// Changes a post. Authors change only their own; editors and up any. Needs `If-Match`
    /// with the current `ETag`: a stale one gets 412 and changes nothing.
    #[oai(path = "/api/v1/tenants/:tenant/posts/:id", method = "patch")]
    async fn update(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        #[allow(unused_variables)] tenant: Path<String>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
        body: JsonBody<UpdatePost>,
    ) -> ApiResult<PostResponse> {
        let post = self.visible(&access, id.0).await?;
        access.require_owner_or(post.author_id, perms::POSTS_UPDATE_ANY)?;
        let version = expected_version(if_match.0.as_deref())?;
        let body = body.0;
        let changes = PostForUpdate {
            title: body.title,
            slug: body.slug,
            body: body.body,
        };
        Ok(ok(posts::update(
            &self.state.db,
            &access.scope,
            post.id,
            version,
            changes,
        )
        .await?))
    }

    /// Deletes a post and its comments. Authors delete only their own; editors and up any.
    /// `If-Match` is optional here; when sent, a stale one gets 412.
    #[oai(path = "/api/v1/tenants/:tenant/posts/:id", method = "delete")]
    async fn delete(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        #[allow(unused_variables)] tenant: Path<String>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
    ) -> ApiResult<Deleted> {
        let post = self.visible(&access, id.0).await?;
        access.require_owner_or(post.author_id, perms::POSTS_DELETE_ANY)?;
        let version = if_match
            .0
            .as_deref()
            .map(|v| expected_version(Some(v)))
            .transpose()?;
        posts::delete(&self.state.db, &access.scope, post.id, version).await?;
        Ok(Deleted::Deleted)
    }

    /// Publishes a post (authors their own, editors and up any). Needs `If-Match`.
    #[oai(path = "/api/v1/tenants/:tenant/posts/:id/publish", method = "post")]
    async fn publish(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        #[allow(unused_variables)] tenant: Path<String>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
    ) -> ApiResult<PostResponse> {
        self.set_status(&access, id.0, if_match.0.as_deref(), PostStatus::Published)
            .await
    }

    /// Returns a post to draft (authors their own, editors and up any). Needs `If-Match`.
    #[oai(path = "/api/v1/tenants/:tenant/posts/:id/unpublish", method = "post")]
    async fn unpublish(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        #[allow(unused_variables)] tenant: Path<String>,
        id: Path<Uuid>,
        #[oai(name = "If-Match")] if_match: Header<Option<String>>,
    ) -> ApiResult<PostResponse> {
        self.set_status(&access, id.0, if_match.0.as_deref(), PostStatus::Draft)
            .await
    }

    /// Comments on a post the caller can see, oldest first.
    #[oai(path = "/api/v1/tenants/:tenant/posts/:id/comments", method = "get")]
    async fn list_comments(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        #[allow(unused_variables)] tenant: Path<String>,
        id: Path<Uuid>,
        /// Page size, 1 to 100.
        limit: Query<Option<u64>>,
        /// Rows to skip, at most 10000.
        offset: Query<Option<u64>>,
    ) -> ApiResult<Json<CommentPage>> {
        let page = PageRequest::parse(limit.0, offset.0)?;
        let post = self.visible(&access, id.0).await?;
        let page = comments::list(&self.state.db, &access.scope, post.id, page)
            .await?
            .map(Comment::from);
        Ok(Json(CommentPage {
            items: page.items,
            limit: page.limit,
            offset: page.offset,
            next_offset: page.next_offset,
        }))
    }

    /// Comments on a post the caller can see (any member but viewers).
    #[oai(path = "/api/v1/tenants/:tenant/posts/:id/comments", method = "post")]
    async fn create_comment(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        #[allow(unused_variables)] tenant: Path<String>,
        id: Path<Uuid>,
        body: JsonBody<CreateComment>,
    ) -> ApiResult<CommentCreated> {
        let post = self.visible(&access, id.0).await?;
        let created = comments::create(
            &self.state.db,
            &access.scope,
            post.id,
            access.user_id(),
            &body.0.body,
        )
        .await?;
        Ok(CommentCreated::Created(Json(created.into())))
    }

    /// Deletes a comment: its author, or editors and up.
    #[oai(
        path = "/api/v1/tenants/:tenant/posts/:id/comments/:cid",
        method = "delete"
    )]
    async fn delete_comment(
        &self,
        _auth: Auth,
        access: Data<&TenantAccess>,
        #[allow(unused_variables)] tenant: Path<String>,
        id: Path<Uuid>,
        cid: Path<Uuid>,
    ) -> ApiResult<Deleted> {
        let post = self.visible(&access, id.0).await?;
        let comment = comments::find(&self.state.db, &access.scope, post.id, cid.0)
            .await?
            .ok_or(ApiError::NotFound)?;
        access.require_owner_or(comment.author_id, perms::COMMENTS_DELETE_ANY)?;
        comments::delete(&self.state.db, &access.scope, comment.id).await?;
        Ok(Deleted::Deleted)
    }
}

impl PostsApi {
    async fn set_status(
        &self,
        access: &TenantAccess,
        id: Uuid,
        if_match: Option<&str>,
        status: PostStatus,
    ) -> ApiResult<PostResponse> {
        let post = self.visible(access, id).await?;
        access.require_owner_or(post.author_id, perms::POSTS_PUBLISH_ANY)?;
        let version = expected_version(if_match)?;
        Ok(ok(posts::set_status(
            &self.state.db,
            &access.scope,
            post.id,
            version,
            status,
        )
        .await?))
    }
}
