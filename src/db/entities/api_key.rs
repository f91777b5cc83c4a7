use sea_orm::entity::prelude::*;

/// An API key. The secret itself is never stored: only its hash, plus a non-secret lookup id.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub label: String,
    #[sea_orm(unique)]
    pub lookup_id: String,
    pub secret_hash: String,
    pub permissions: Json,
    /// The client networks the key works from (JSON array of CIDRs); `None`: anywhere.
    pub allowed_ips: Option<Json>,
    /// Its machine tokens must be DPoP-bound (`POST /oauth/token` with a proof).
    pub require_dpop: bool,
    pub expires_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tenant::Entity",
        from = "Column::TenantId",
        to = "super::tenant::Column::Id"
    )]
    Tenant,
}

impl Related<super::tenant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tenant.def()
    }
}

super::stamped!(id, created_at);
