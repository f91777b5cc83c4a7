//! The tenant filter, written once. Every tenant-owned table implements [`TenantOwned`], and
//! its queries start from `find_in(scope)`, `update_in(scope)` or `delete_in(scope)`, so a
//! list or lookup cannot reach another tenant's rows even where a caller forgets a check.
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, DeleteMany,
    EntityTrait, IntoActiveModel, QueryFilter, QuerySelect, Select, UpdateMany,
};
use uuid::Uuid;

use super::{Page, PageRequest};
use crate::db::{FromSqliteRow, Reader};

/// Proof that a tenant was resolved. Fields are private and the constructor is visible to the
/// domain only, so a function that takes a `TenantScope` cannot be handed a made-up tenant id:
/// tenant resolution (`domain::tenants::resolve*`) is the only way to get one.
#[derive(Debug, Clone)]
pub struct TenantScope {
    id: Uuid,
    slug: String,
}

impl TenantScope {
    pub(in crate::domain) fn resolved(id: Uuid, slug: String) -> Self {
        Self { id, slug }
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn slug(&self) -> &str {
        &self.slug
    }
}

/// A table whose rows belong to one tenant.
pub trait TenantOwned: EntityTrait {
    /// The row's tenant.
    fn tenant_column() -> Self::Column;

    /// The row's own id, for [`TenantOwned::find_id_in`].
    fn id_column() -> Self::Column;

    /// Every row of the tenant.
    fn find_in(scope: &TenantScope) -> Select<Self> {
        Self::find().filter(Self::tenant_column().eq(scope.id()))
    }

    /// One row of the tenant by id.
    fn find_id_in(scope: &TenantScope, id: Uuid) -> Select<Self> {
        Self::find_in(scope).filter(Self::id_column().eq(id))
    }

    /// One row of the tenant by id, or [`Error::NotFound`] (also for other tenants' rows).
    #[allow(async_fn_in_trait)] // used by this crate's own futures only
    async fn get_in(
        db: &impl ConnectionTrait,
        scope: &TenantScope,
        id: Uuid,
    ) -> super::Result<Self::Model> {
        Self::find_id_in(scope, id)
            .one(db)
            .await?
            .ok_or(super::Error::NotFound)
    }

    fn update_in(scope: &TenantScope) -> UpdateMany<Self> {
        Self::update_many().filter(Self::tenant_column().eq(scope.id()))
    }

    fn delete_in(scope: &TenantScope) -> DeleteMany<Self> {
        Self::delete_many().filter(Self::tenant_column().eq(scope.id()))
    }

    /// Inserts `row` into the tenant: the tenant column is ours to set, whatever `row` says.
    #[allow(async_fn_in_trait)] // used by this crate's own futures only
    async fn insert_in<A>(
        scope: &TenantScope,
        mut row: A,
        db: &impl ConnectionTrait,
    ) -> Result<Self::Model, DbErr>
    where
        A: ActiveModelTrait<Entity = Self> + ActiveModelBehavior + Send,
        Self::Model: IntoActiveModel<A>,
    {
        row.set(Self::tenant_column(), scope.id().into());
        row.insert(db).await
    }
}

/// One page of a query: `limit + 1` rows are fetched, the extra one only says more follow.
#[allow(async_fn_in_trait)] // used by this crate's own futures only
pub trait Paginate<E: EntityTrait> {
    async fn page(
        self,
        db: &impl ConnectionTrait,
        page: PageRequest,
    ) -> Result<Page<E::Model>, DbErr>;
}

impl<E: EntityTrait> Paginate<E> for Select<E> {
    async fn page(
        self,
        db: &impl ConnectionTrait,
        page: PageRequest,
    ) -> Result<Page<E::Model>, DbErr> {
        let rows = self
            .offset(page.offset)
            .limit(page.limit + 1)
            .all(db)
            .await?;
        Ok(Page::from_overfetch(rows, page))
    }
}

/// [`Paginate`] for the hot pages, through [`Reader`]: on a SQLite file on the calling thread,
/// so only for a query whose page an index bounds (read in index order, stopping after
/// `limit + 1` rows, as the plan tests in `posts` check); a filter applied while scanning is not.
#[allow(async_fn_in_trait)] // used by this crate's own futures only
pub trait ReadPage<E: EntityTrait> {
    async fn read_page(self, reads: &Reader, page: PageRequest) -> Result<Page<E::Model>, DbErr>;
}

impl<E: EntityTrait> ReadPage<E> for Select<E>
where
    E::Model: FromSqliteRow,
{
    async fn read_page(self, reads: &Reader, page: PageRequest) -> Result<Page<E::Model>, DbErr> {
        let rows = reads
            .all_bounded(self.offset(page.offset).limit(page.limit + 1))
            .await?;
        Ok(Page::from_overfetch(rows, page))
    }
}
