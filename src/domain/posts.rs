//! Posts. Every query here is scoped by [`TenantScope`].
use chrono::Utc;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, QueryFilter, QueryOrder, Select, Set, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Error, Expected, OnUnique, Page, PageRequest, Paginate, ReadPage, Result, TenantOwned,
    TenantScope, Versioned, fields,
};
use crate::db::{
    Reader,
    entities::{
        PostStatus,
        post::{self, Column, Entity as Posts},
    },
};

/// Published posts of the tenant, newest first.
pub async fn list_published(
    reads: &Reader,
    scope: &TenantScope,
    page: PageRequest,
) -> Result<Page<post::Model>, sea_orm::DbErr> {
    published_newest_first(scope).read_page(reads, page).await
}

/// In the order of `ix_posts_tenant_status_published_id`, so a page reads only its rows.
fn published_newest_first(scope: &TenantScope) -> Select<Posts> {
    Posts::find_in(scope)
        .filter(Column::Status.eq(PostStatus::Published))
        .order_by_desc(Column::PublishedAt)
        .order_by_desc(Column::Id)
}

/// One published post of the tenant by slug.
pub async fn find_published_by_slug(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    slug: &str,
) -> Result<Option<post::Model>, sea_orm::DbErr> {
    if !fields::could_be_slug(slug) {
        return Ok(None);
    }
    Posts::find_in(scope)
        .filter(Column::Status.eq(PostStatus::Published))
        .filter(Column::Slug.eq(slug))
        .one(db)
        .await
}

/// Which posts a caller may see.
#[derive(Debug, Clone, Copy)]
pub enum Visibility {
    /// Published posts only (viewers).
    Published,
    /// Published posts and the caller's own drafts (authors).
    PublishedAndOwnDrafts(Uuid),
    /// Everything (editors and up).
    All,
}

impl Visibility {
    fn condition(self) -> Condition {
        match self {
            Visibility::Published => Condition::all().add(Column::Status.eq(PostStatus::Published)),
            Visibility::PublishedAndOwnDrafts(me) => Condition::any()
                .add(Column::Status.eq(PostStatus::Published))
                .add(Column::AuthorId.eq(me)),
            Visibility::All => Condition::all(),
        }
    }
}

/// What a client may set on a new post; author, tenant, status and version are ours.
pub struct PostForCreate {
    pub title: String,
    pub slug: String,
    pub body: String,
}

/// What a client may change; absent fields stay as they are.
#[derive(Default)]
pub struct PostForUpdate {
    pub title: Option<String>,
    pub slug: Option<String>,
    pub body: Option<String>,
}

fn slug_taken() -> Error {
    Error::conflict("a post with this slug exists")
}

pub async fn list(
    reads: &Reader,
    scope: &TenantScope,
    visibility: Visibility,
    page: PageRequest,
) -> Result<Page<post::Model>, sea_orm::DbErr> {
    let query = visible_newest_first(scope, visibility);
    match visibility {
        // The index alone orders and bounds the page.
        Visibility::All => query.read_page(reads, page).await,
        // Rows are filtered while the index is walked, as many as there are drafts to skip:
        // not bounded, so not on the calling thread.
        Visibility::Published | Visibility::PublishedAndOwnDrafts(_) => {
            query.page(reads.pool(), page).await
        }
    }
}

/// In the order of `ix_posts_tenant_created_id`; the visibility filter applies as it scans.
fn visible_newest_first(scope: &TenantScope, visibility: Visibility) -> Select<Posts> {
    Posts::find_in(scope)
        .filter(visibility.condition())
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
}

/// A post of the tenant the caller may see, or `None` (missing and hidden look the same).
pub async fn find(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    visibility: Visibility,
    id: Uuid,
) -> Result<Option<post::Model>, sea_orm::DbErr> {
    Posts::find_id_in(scope, id)
        .filter(visibility.condition())
        .one(db)
        .await
}

/// Creates a draft by `author`.
pub async fn create(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    author: Uuid,
    new: PostForCreate,
) -> Result<post::Model> {
    let row = post::ActiveModel {
        author_id: Set(author),
        title: Set(fields::title(&new.title)?),
        slug: Set(fields::slug(&new.slug)?),
        body: Set(fields::body(&new.body)?),
        status: Set(PostStatus::Draft),
        version: Set(1),
        published_at: Set(None),
        ..Default::default()
    };
    Posts::insert_in(scope, row, db).await.on_unique(slug_taken)
}

/// Applies `changes` if the post is still at the `expected` version.
pub async fn update(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    id: Uuid,
    expected: Expected,
    changes: PostForUpdate,
) -> Result<post::Model> {
    let mut query = Posts::update_in(scope);
    if let Some(title) = changes.title {
        query = query.col_expr(Column::Title, Expr::value(fields::title(&title)?));
    }
    if let Some(slug) = changes.slug {
        query = query.col_expr(Column::Slug, Expr::value(fields::slug(&slug)?));
    }
    if let Some(body) = changes.body {
        query = query.col_expr(Column::Body, Expr::value(fields::body(&body)?));
    }
    Posts::update_expected(db, scope, id, expected, query, slug_taken).await
}

/// Publishes or unpublishes, under the same version check as [`update`].
pub async fn set_status(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    id: Uuid,
    expected: Expected,
    status: PostStatus,
) -> Result<post::Model> {
    let published_at = match status {
        PostStatus::Published => Some(Utc::now()),
        PostStatus::Draft => None,
    };
    let query = Posts::update_in(scope)
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::PublishedAt, Expr::value(published_at));
    Posts::update_expected(db, scope, id, expected, query, slug_taken).await
}

/// Deletes the post (and its comments), if still at the `expected` version.
pub async fn delete(
    db: &impl ConnectionTrait,
    scope: &TenantScope,
    id: Uuid,
    expected: Expected,
) -> Result<()> {
    Posts::delete_expected(db, scope, id, expected).await
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Database, DbBackend, QuerySelect, QueryTrait, Statement};

    use super::*;

    /// SQLite's plan for one page of `query`, one line per step.
    async fn plan(db: &impl ConnectionTrait, query: Select<Posts>) -> Vec<String> {
        let built = query.limit(21).offset(0).build(DbBackend::Sqlite);
        let explain = Statement::from_sql_and_values(
            DbBackend::Sqlite,
            format!("EXPLAIN QUERY PLAN {}", built.sql),
            built.values.map(|v| v.0).unwrap_or_default(),
        );
        let rows = db.query_all_raw(explain).await.expect("explain");
        rows.iter()
            .map(|row| row.try_get::<String>("", "detail").expect("detail"))
            .collect()
    }

    #[tokio::test]
    async fn post_lists_read_their_page_in_index_order_without_sorting() {
        let db = Database::connect("sqlite::memory:").await.expect("sqlite");
        crate::db::migrate(&db).await.expect("migrations");
        let scope = TenantScope::resolved(Uuid::new_v4(), "acme".into());
        let me = Uuid::new_v4();
        let cases = [
            (
                published_newest_first(&scope),
                "ix_posts_tenant_status_published_id",
            ),
            (
                visible_newest_first(&scope, Visibility::All),
                "ix_posts_tenant_created_id",
            ),
            (
                visible_newest_first(&scope, Visibility::Published),
                "ix_posts_tenant_created_id",
            ),
            (
                visible_newest_first(&scope, Visibility::PublishedAndOwnDrafts(me)),
                "ix_posts_tenant_created_id",
            ),
        ];
        for (query, index) in cases {
            let plan = plan(&db, query).await;
            assert!(
                plan.iter().any(|step| step.contains(index)),
                "{index}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|step| step.contains("TEMP B-TREE")),
                "sorts: {plan:?}"
            );
        }
    }

    /// The inline reader (a SQLite file) returns exactly what sea-orm decodes through the pool,
    /// for every list shape, with drafts, publication dates and sub-second times.
    #[tokio::test]
    async fn inline_reads_decode_what_the_pool_decodes() {
        use sea_orm::{ActiveModelTrait, EntityTrait};

        use crate::db::entities::{tenant, user};

        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/t.db?mode=rwc", dir.path().display());
        let settings = crate::config::DatabaseSettings {
            url: url.clone().into(),
            max_connections: 2,
            connect_timeout_secs: 5,
            acquire_timeout_ms: 1000,
            migrate_on_start: false,
        };
        let db = crate::db::connect(&settings).await.expect("sqlite file");
        crate::db::migrate(&db).await.expect("migrations");
        let reads = Reader::new(db.clone(), &url);
        assert!(reads.is_inline());

        let acme = tenant::ActiveModel {
            slug: Set("acme".into()),
            name: Set("Acme".into()),
            ..Default::default()
        }
        .insert(&db)
        .await
        .expect("tenant");
        let scope = TenantScope::resolved(acme.id, acme.slug);
        let mut authors = Vec::new();
        for _ in 0..2 {
            let author = <user::ActiveModel as Default>::default()
                .insert(&db)
                .await
                .expect("user");
            authors.push(author.id);
        }
        for n in 0..7 {
            let author = authors[n % 2];
            let new = PostForCreate {
                title: format!("Title \u{e9} {n}"),
                slug: format!("post-{n}"),
                body: format!("Body \"{n}\"\nwith a second line"),
            };
            let post = create(&db, &scope, author, new).await.expect("post");
            if n % 3 != 0 {
                post::ActiveModel {
                    id: sea_orm::ActiveValue::Unchanged(post.id),
                    status: Set(PostStatus::Published),
                    published_at: Set(Some(Utc::now())),
                    ..Default::default()
                }
                .update(&db)
                .await
                .expect("publish");
            }
        }

        let shapes = [
            published_newest_first(&scope),
            visible_newest_first(&scope, Visibility::All),
            visible_newest_first(&scope, Visibility::Published),
            visible_newest_first(&scope, Visibility::PublishedAndOwnDrafts(authors[0])),
        ];
        for query in shapes {
            for (limit, offset) in [(101, 0), (2, 1), (2, 3)] {
                let page = query.clone().limit(limit).offset(offset);
                let by_pool = page.clone().all(&db).await.expect("pool");
                let inline = reads.all_bounded(page).await.expect("inline");
                assert!(!by_pool.is_empty());
                assert_eq!(inline, by_pool);
            }
        }
        // Drafts (no publication date) and published posts both came back.
        let all = reads
            .all_bounded(visible_newest_first(&scope, Visibility::All))
            .await
            .unwrap();
        assert_eq!(all.len(), 7);
        assert!(all.iter().any(|p| p.published_at.is_none()));
        assert!(all.iter().any(|p| p.published_at.is_some()));

        assert_eq!(
            reads.inline_counts(),
            (13, 0),
            "all served on the calling thread"
        );

        // A date in a shape this reader leaves alone (SQLite's own `datetime`): the pool reads it.
        db.execute_unprepared(
            "UPDATE posts SET created_at = datetime('now') WHERE slug = 'post-0'",
        )
        .await
        .expect("hand-written date");
        let everything = visible_newest_first(&scope, Visibility::All);
        let by_pool = everything.clone().all(&db).await.expect("pool");
        assert_eq!(reads.all_bounded(everything).await.expect("read"), by_pool);
        assert_eq!(reads.inline_counts(), (13, 1), "handed to the pool");

        // A read that walks far past its page (20,000 drafts to skip) is interrupted by the
        // step budget and answered by the pool, the same rows.
        let bulk = format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             INSERT INTO posts (id, tenant_id, author_id, title, slug, body, status, version, \
             created_at, updated_at) SELECT randomblob(16), x'{}', x'{}', 't', 'bulk-' || i, \
             'b', 'draft', 1, '2020-01-01T00:00:00+00:00', '2020-01-01T00:00:00+00:00' FROM n",
            scope.id().simple(),
            authors[1].simple()
        );
        db.execute_unprepared(&bulk).await.expect("bulk drafts");
        let skipping = visible_newest_first(&scope, Visibility::Published)
            .offset(4)
            .limit(21);
        let by_pool = skipping.clone().all(&db).await.expect("pool");
        assert_eq!(reads.all_bounded(skipping).await.expect("read"), by_pool);
        assert_eq!(reads.inline_counts(), (13, 2), "interrupted, then the pool");

        // A query with other columns is refused rather than misread.
        let other_columns = Posts::find()
            .select_only()
            .column(Column::Id)
            .column(Column::Title);
        let err = reads.all_bounded(other_columns).await.expect_err("refused");
        assert!(err.to_string().contains("columns"), "{err}");
    }
}
