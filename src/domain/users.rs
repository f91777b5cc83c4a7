//! Users and their email addresses.
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::{Error, Result};
use crate::db::entities::user;

/// A syntactically valid email address, lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        let trimmed = raw.trim();
        if trimmed.len() > 320 || !email_address::EmailAddress::is_valid(trimmed) {
            return Err(Error::invalid("email", "is not a valid email address"));
        }
        Ok(Self(trimmed.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &Email,
) -> Result<Option<user::Model>, sea_orm::DbErr> {
    user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db)
        .await
}

pub async fn find(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<user::Model>, sea_orm::DbErr> {
    user::Entity::find_by_id(id).one(db).await
}

/// The user with this (operator-asserted) address, created if new. Returns whether it was.
pub async fn find_or_create_by_email(
    db: &impl ConnectionTrait,
    email: &Email,
) -> Result<(user::Model, bool), sea_orm::DbErr> {
    if let Some(existing) = find_by_email(db, email).await? {
        return Ok((existing, false));
    }
    let created = user::ActiveModel {
        email: Set(Some(email.as_str().to_owned())),
        display_name: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok((created, true))
}
