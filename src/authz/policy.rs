//! The Casbin enforcer: model and role permissions from `config/`, role assignments from the
//! memberships table, held as an immutable snapshot that is swapped, never locked, per request.
use std::{path::Path, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use sea_orm::{ActiveEnum, DatabaseConnection, EntityTrait, Iterable};
use uuid::Uuid;

use super::{Permission, perms};
use crate::{
    db::entities::{Role, membership},
    store::{EphemeralStore, Store, StoreError},
};

const EPOCH_KEY: &str = "authz:epoch";
/// Long enough never to lapse in practice; if it does, the next request reloads anyway.
const EPOCH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not load role assignments: {0}")]
    Load(#[from] anyhow::Error),
}

/// One consistent view of the policy and every role assignment.
pub struct Snapshot {
    enforcer: Enforcer,
    epoch: Option<Vec<u8>>,
}

impl Snapshot {
    /// Whether `user` may do `permission` in `tenant`. Deny on any evaluation error.
    pub fn allows(&self, user: Uuid, tenant: Uuid, permission: Permission) -> bool {
        self.enforcer
            .enforce((
                user.to_string(),
                tenant.to_string(),
                permission.object,
                permission.action,
            ))
            .unwrap_or(false)
    }
}

pub struct Authorizer {
    db: DatabaseConnection,
    store: Store,
    model: String,
    /// `(role, object, action)` lines of `policy.csv`.
    policy: Vec<Vec<String>>,
    current: ArcSwap<Snapshot>,
    reloading: tokio::sync::Mutex<()>,
}

/// Reads `policy.csv`: `p, role, object, action` lines; `#` comments and blank lines ignored.
/// Unknown roles and permissions the code never checks are start-up errors, not silent typos.
pub fn parse_policy(text: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let mut rules = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [kind, role, object, action] = fields[..] else {
            bail!(
                "policy.csv line {}: expected `p, role, object, action`",
                n + 1
            );
        };
        if kind != "p" {
            bail!(
                "policy.csv line {}: only `p` lines belong here (roles come from the database)",
                n + 1
            );
        }
        role.parse::<Role>()
            .map_err(|e| anyhow::anyhow!("policy.csv line {}: {e}", n + 1))?;
        if !perms::ALL
            .iter()
            .any(|p| p.object == object && p.action == action)
        {
            bail!(
                "policy.csv line {}: unknown permission {object}:{action}",
                n + 1
            );
        }
        rules.push(vec![role.to_owned(), object.to_owned(), action.to_owned()]);
    }
    Ok(rules)
}

/// Builds an enforcer from the model, the role permissions and the given assignments.
pub async fn build_enforcer(
    model: &str,
    policy: &[Vec<String>],
    assignments: Vec<Vec<String>>,
) -> anyhow::Result<Enforcer> {
    let model = DefaultModel::from_str(model)
        .await
        .context("invalid rbac_model.conf")?;
    let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
        .await
        .context("could not create the Casbin enforcer")?;
    enforcer
        .add_policies(policy.to_vec())
        .await
        .context("could not load policy.csv")?;
    if !assignments.is_empty() {
        enforcer
            .add_grouping_policies(assignments)
            .await
            .context("could not load role assignments")?;
    }
    Ok(enforcer)
}

impl Authorizer {
    /// Loads `rbac_model.conf` and `policy.csv` from `config_dir` and every membership.
    pub async fn load(
        db: DatabaseConnection,
        store: Store,
        config_dir: &Path,
    ) -> anyhow::Result<Self> {
        let model =
            std::fs::read_to_string(config_dir.join("rbac_model.conf")).with_context(|| {
                format!(
                    "could not read {}",
                    config_dir.join("rbac_model.conf").display()
                )
            })?;
        let policy_text =
            std::fs::read_to_string(config_dir.join("policy.csv")).with_context(|| {
                format!("could not read {}", config_dir.join("policy.csv").display())
            })?;
        let policy = parse_policy(&policy_text)?;
        let enforcer = build_enforcer(&model, &policy, Vec::new()).await?;
        let authorizer = Self {
            db,
            store,
            model,
            policy,
            current: ArcSwap::from_pointee(Snapshot {
                enforcer,
                epoch: None,
            }),
            reloading: tokio::sync::Mutex::new(()),
        };
        Ok(authorizer)
    }

    /// The roles whose policy grants `permission` (for the API documentation).
    pub fn roles_granting(&self, permission: Permission) -> Vec<String> {
        Role::iter()
            .map(|role| role.to_value())
            .filter(|role| {
                self.policy.iter().any(|p| {
                    p[0] == *role && p[1] == permission.object && p[2] == permission.action
                })
            })
            .collect()
    }

    /// A snapshot at least as new as the last membership change on any instance.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, AuthzError> {
        let published = self.store.get(EPOCH_KEY).await?;
        let current = self.current.load_full();
        if published.is_some() && current.epoch == published {
            return Ok(current);
        }
        let _guard = self.reloading.lock().await;
        // Another request may have reloaded while this one waited.
        let current = self.current.load_full();
        let published = self.store.get(EPOCH_KEY).await?;
        if published.is_some() && current.epoch == published {
            return Ok(current);
        }
        let epoch = match published {
            Some(epoch) => epoch,
            None => self.publish_new_epoch().await?,
        };
        // The epoch was read before the assignments: a change that lands meanwhile publishes a
        // newer epoch, and the next request reloads again.
        let fresh = Arc::new(Snapshot {
            enforcer: build_enforcer(&self.model, &self.policy, self.assignments().await?).await?,
            epoch: Some(epoch),
        });
        self.current.store(fresh.clone());
        Ok(fresh)
    }

    /// Called before a membership change commits. If the store is down this fails (503) and
    /// the change is not made, so no instance can keep a stale role unnoticed.
    pub async fn announce_change(&self) -> Result<(), crate::error::ApiError> {
        self.publish_new_epoch().await.map(|_| ()).map_err(|err| {
            tracing::error!(error = %err, "cannot announce a membership change");
            crate::error::ApiError::Unavailable("try again shortly".into())
        })
    }

    /// Called after the change commits: instances that reloaded between the first
    /// announcement and the commit reload once more.
    pub async fn announce_committed_change(&self) {
        if let Err(err) = self.publish_new_epoch().await {
            tracing::error!(error = %err, "membership change committed but not re-announced");
        }
    }

    async fn publish_new_epoch(&self) -> Result<Vec<u8>, StoreError> {
        let epoch = Uuid::new_v4().as_bytes().to_vec();
        self.store.set(EPOCH_KEY, &epoch, EPOCH_TTL).await?;
        Ok(epoch)
    }

    async fn assignments(&self) -> anyhow::Result<Vec<Vec<String>>> {
        let rows = membership::Entity::find()
            .all(&self.db)
            .await
            .context("could not read memberships")?;
        Ok(rows
            .into_iter()
            .map(|m| {
                vec![
                    m.user_id.to_string(),
                    m.role.to_value(),
                    m.tenant_id.to_string(),
                ]
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policy_parses_and_covers_every_permission() {
        let text = std::fs::read_to_string("config/policy.csv").unwrap();
        let rules = parse_policy(&text).unwrap();
        for p in perms::ALL {
            assert!(
                rules.iter().any(|r| r[1] == p.object && r[2] == p.action),
                "{p} is granted to nobody"
            );
        }
    }

    #[test]
    fn typos_in_the_policy_are_refused() {
        assert!(parse_policy("p, editer, posts, read").is_err());
        assert!(parse_policy("p, editor, posts, reed").is_err());
        assert!(parse_policy("g, alice, owner, acme").is_err());
        assert!(parse_policy("p, editor, posts").is_err());
        assert!(parse_policy("# comment\n\np, editor, posts, read").is_ok());
    }
}
