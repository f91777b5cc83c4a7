//! sea-orm entities, one module per table. Behaviour lives in the domain modules, not here,
//! except the stamping of ids and timestamps, which [`stamped!`] writes once for every table.

/// Implements `ActiveModelBehavior` so that inserts get a fresh UUIDv7 `id` and `created_at`,
/// and every save through an `ActiveModel` sets `updated_at`, unless the caller set them
/// (`Set`; an `Unchanged` value read from the row is stamped anew).
/// Use it in an entity module as `stamped!(id, created_at, updated_at);` (the columns it has).
macro_rules! stamped {
    ($($column:ident),* $(,)?) => {
        #[async_trait::async_trait]
        impl ActiveModelBehavior for ActiveModel {
            async fn before_save<C>(mut self, _db: &C, insert: bool) -> Result<Self, DbErr>
            where
                C: ConnectionTrait,
            {
                let now = chrono::Utc::now();
                $( $crate::db::entities::stamp!(self, $column, insert, now); )*
                Ok(self)
            }
        }
    };
}

#[doc(hidden)]
macro_rules! stamp {
    ($model:ident, id, $insert:ident, $now:ident) => {
        if $insert && !$model.id.is_set() {
            $model.id = sea_orm::ActiveValue::Set(uuid::Uuid::now_v7());
        }
    };
    ($model:ident, created_at, $insert:ident, $now:ident) => {
        if $insert && !$model.created_at.is_set() {
            $model.created_at = sea_orm::ActiveValue::Set($now);
        }
    };
    ($model:ident, updated_at, $insert:ident, $now:ident) => {
        if !$model.updated_at.is_set() {
            $model.updated_at = sea_orm::ActiveValue::Set($now);
        }
    };
}

/// Declares the entity tenant-owned ([`crate::domain::TenantOwned`]): its queries then go
/// through the tenant filter. Use it in an entity module as `tenant_owned!(Id);`, naming the
/// column that identifies a row within the tenant (the tenant column is `TenantId`).
macro_rules! tenant_owned {
    ($id:ident) => {
        impl $crate::domain::TenantOwned for Entity {
            fn tenant_column() -> Column {
                Column::TenantId
            }
            fn id_column() -> Column {
                Column::$id
            }
        }
    };
}

/// Declares the tenant-owned entity versioned ([`crate::domain::Versioned`]): changes go
/// through `If-Match`. Use it in an entity module as `versioned!();` (columns `Version` and
/// `UpdatedAt`).
macro_rules! versioned {
    () => {
        impl $crate::domain::Versioned for Entity {
            fn version_column() -> Column {
                Column::Version
            }
            fn updated_at_column() -> Column {
                Column::UpdatedAt
            }
        }
    };
}

pub(crate) use {stamp, stamped, tenant_owned, versioned};

pub mod api_key;
pub mod audit_event;
pub mod authz_change;
pub mod authz_state;
pub mod comment;
pub mod identity;
pub mod invitation;
pub mod membership;
pub mod post;
pub mod refresh_token;
pub mod session;
pub mod tenant;
pub mod user;

pub use membership::Role;
pub use post::PostStatus;
