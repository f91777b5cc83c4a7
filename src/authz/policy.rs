//! The Casbin policy: model and role permissions from `config/`, role assignments from the
//! memberships table, held as an immutable snapshot that is swapped, never locked, per request.
//!
//! Casbin decides; it is asked once per role and permission when the policy loads, not once
//! per request. The model gives every role the same permissions in every tenant and roles do
//! not inherit, so Casbin's answer for a user in a tenant is its answer for that user's role
//! there: a decision is two hash lookups (the role, then the compiled answer). A test proves the
//! compiled answers equal `enforce` for every role, permission and a sample of users and tenants.
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use sea_orm::{ActiveEnum, DatabaseConnection, EntityTrait, Iterable};
use uuid::Uuid;

use super::Permission;
use crate::{
    config::ConfigDir,
    db::entities::{Role, membership},
    domain::memberships,
    store::{EphemeralStore, Store, StoreError},
};

pub(crate) const EPOCH_KEY: &str = "authz:epoch";
/// Long enough never to lapse in practice; if it does, the next request reloads anyway.
const EPOCH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not load role assignments: {0}")]
    Load(#[from] anyhow::Error),
}

/// The maps a decision reads. Their keys are the service's own UUIDs and compile-time
/// permission names, nothing a client chooses, so they hash with foldhash (each map seeded
/// from a per-process seed) rather than SipHash, which was most of a decision's cost.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

/// Casbin's answer for each role and permission, computed when the policy loads.
#[derive(Debug, Default)]
pub struct Grants {
    allowed: FastSet<(Role, &'static str, &'static str)>,
}

impl Grants {
    /// Asks Casbin, through an enforcer holding one probe assignment per role, about every
    /// role and every `known` permission.
    pub async fn compile(
        model: &str,
        policy: &[Vec<String>],
        known: &[Permission],
    ) -> anyhow::Result<Self> {
        const TENANT: &str = "probe-tenant";
        let probe = |role: Role| format!("probe-{}", role.to_value());
        let assignments = Role::iter()
            .map(|role| vec![probe(role), role.to_value(), TENANT.to_owned()])
            .collect();
        let enforcer = build_enforcer(model, policy, assignments).await?;
        let mut allowed = FastSet::default();
        for role in Role::iter() {
            for permission in known {
                let request = (probe(role), TENANT, permission.object, permission.action);
                if enforcer
                    .enforce(request)
                    .context("Casbin could not decide")?
                {
                    allowed.insert((role, permission.object, permission.action));
                }
            }
        }
        Ok(Self { allowed })
    }

    pub fn allows(&self, role: Role, permission: Permission) -> bool {
        self.allowed
            .contains(&(role, permission.object, permission.action))
    }
}

/// Each tenant's members and their roles. Per tenant behind an `Arc`, so a change to one
/// tenant makes a new snapshot by replacing that tenant's map, not by copying every member.
type Assignments = FastMap<Uuid, Arc<FastMap<Uuid, Role>>>;

/// One consistent view of the policy and every role assignment.
pub struct Snapshot {
    grants: Arc<Grants>,
    roles: Assignments,
    epoch: Option<Vec<u8>>,
    /// `authz_state.version` when loaded, and when last confirmed (unix millis).
    db_version: i64,
    confirmed_at: AtomicI64,
}

/// How stale a snapshot may be before the database version is asked again. Changes made
/// through this service are announced and seen at once; this bounds the rest (the admin CLI
/// without Redis, an announcement lost to a Redis blip).
const DB_CHECK_INTERVAL_MS: i64 = 1_000;

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Snapshot {
    /// A snapshot of these assignments, outside any `Authorizer` (benchmarks, tests).
    pub fn of(grants: Arc<Grants>, roles: HashMap<(Uuid, Uuid), Role>) -> Self {
        let mut by_tenant: FastMap<Uuid, FastMap<Uuid, Role>> = FastMap::default();
        for ((user, tenant), role) in roles {
            by_tenant.entry(tenant).or_default().insert(user, role);
        }
        Self {
            grants,
            roles: by_tenant
                .into_iter()
                .map(|(t, m)| (t, Arc::new(m)))
                .collect(),
            epoch: None,
            db_version: 0,
            confirmed_at: AtomicI64::new(0),
        }
    }

    /// Whether `user` may do `permission` in `tenant`: Casbin's answer for the user's role
    /// there. Not a member: denied.
    pub fn allows(&self, user: Uuid, tenant: Uuid, permission: Permission) -> bool {
        self.role(user, tenant)
            .is_some_and(|role| self.grants.allows(role, permission))
    }

    /// `user`'s role in `tenant`, if a member.
    pub fn role(&self, user: Uuid, tenant: Uuid) -> Option<Role> {
        self.roles.get(&tenant)?.get(&user).copied()
    }

    /// The compiled answers this snapshot decides with.
    pub fn grants(&self) -> &Arc<Grants> {
        &self.grants
    }
}

pub struct Authorizer {
    db: DatabaseConnection,
    store: Store,
    /// `(role, object, action)` lines of `policy.csv`.
    policy: Vec<Vec<String>>,
    grants: Arc<Grants>,
    current: ArcSwap<Snapshot>,
    reloading: tokio::sync::Mutex<()>,
}

/// Reads `policy.csv`: `p, role, object, action` lines; `#` comments and blank lines ignored.
/// Unknown roles and permissions the code never checks are start-up errors, not silent typos.
pub fn parse_policy(text: &str, known: &[Permission]) -> anyhow::Result<Vec<Vec<String>>> {
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
        if !known
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
    /// Loads `rbac_model.conf` and `policy.csv` (built in, or overridden in the config
    /// directory); `known` are the permissions the code checks. Role assignments load from
    /// the database on the first request.
    pub async fn load(
        db: DatabaseConnection,
        store: Store,
        config_dir: &ConfigDir,
        known: &[Permission],
    ) -> anyhow::Result<Self> {
        let model = config_dir.read("rbac_model.conf")?.into_owned();
        let policy = parse_policy(&config_dir.read("policy.csv")?, known)?;
        let grants = Arc::new(Grants::compile(&model, &policy, known).await?);
        let authorizer = Self {
            db,
            store,
            policy,
            current: ArcSwap::from_pointee(Snapshot {
                grants: grants.clone(),
                roles: Assignments::default(),
                epoch: None,
                db_version: -1,
                confirmed_at: AtomicI64::new(0),
            }),
            reloading: tokio::sync::Mutex::new(()),
            grants,
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

    /// A snapshot at least as new as the last membership change: at once for changes
    /// announced through the store (every instance, with Redis), within a second otherwise.
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, AuthzError> {
        if let Some(current) = self.still_current().await? {
            return Ok(current);
        }
        let _guard = self.reloading.lock().await;
        // Another request may have reloaded while this one waited.
        if let Some(current) = self.still_current().await? {
            return Ok(current);
        }
        let epoch = match self.store.get(EPOCH_KEY).await? {
            Some(epoch) => epoch,
            None => self.publish_new_epoch().await?,
        };
        // Epoch and version are read before the assignments: a change that lands meanwhile
        // moves them on, and the next request reloads again.
        let db_version = memberships::version(&self.db)
            .await
            .map_err(anyhow::Error::from)?;
        let roles = self.assignments_at(db_version).await?;
        let fresh = Arc::new(Snapshot {
            grants: self.grants.clone(),
            roles,
            epoch: Some(epoch),
            db_version,
            confirmed_at: AtomicI64::new(now_millis()),
        });
        self.current.store(fresh.clone());
        Ok(fresh)
    }

    async fn still_current(&self) -> Result<Option<Arc<Snapshot>>, AuthzError> {
        let current = self.current.load_full();
        let published = self.store.get(EPOCH_KEY).await?;
        if published.is_none() || current.epoch != published {
            return Ok(None);
        }
        if now_millis() - current.confirmed_at.load(Ordering::Relaxed) < DB_CHECK_INTERVAL_MS {
            return Ok(Some(current));
        }
        let version = memberships::version(&self.db)
            .await
            .map_err(anyhow::Error::from)?;
        if version != current.db_version {
            return Ok(None);
        }
        current.confirmed_at.store(now_millis(), Ordering::Relaxed);
        Ok(Some(current))
    }

    /// Called after a membership change commits, so every instance reloads on its next
    /// request. Best effort: if the store is unreachable, the database version still tells.
    pub async fn membership_changed(&self) {
        if let Err(err) = self.publish_new_epoch().await {
            tracing::warn!(error = %err, "membership change not announced; instances notice within a second");
        }
    }

    async fn publish_new_epoch(&self) -> Result<Vec<u8>, StoreError> {
        let epoch = Uuid::new_v4().as_bytes().to_vec();
        self.store.set(EPOCH_KEY, &epoch, EPOCH_TTL).await?;
        Ok(epoch)
    }

    /// The assignments as of `version`: the current snapshot's with only the tenants changed
    /// since replaced, or, when the change log cannot say (first load, log pruned), all of
    /// them read again.
    async fn assignments_at(&self, version: i64) -> anyhow::Result<Assignments> {
        let current = self.current.load_full();
        let changed = if current.db_version < 0 {
            None
        } else {
            memberships::changed_tenants(&self.db, current.db_version, version)
                .await
                .context("could not read the change log")?
        };
        let Some(changed) = changed else {
            return self.all_assignments().await;
        };
        let mut roles = current.roles.clone();
        for tenant in changed {
            let members: FastMap<Uuid, Role> = memberships::roles_in(&self.db, tenant)
                .await
                .context("could not read memberships")?
                .into_iter()
                .map(|m| (m.user_id, m.role))
                .collect();
            if members.is_empty() {
                roles.remove(&tenant);
            } else {
                roles.insert(tenant, Arc::new(members));
            }
        }
        Ok(roles)
    }

    async fn all_assignments(&self) -> anyhow::Result<Assignments> {
        let rows = membership::Entity::find()
            .all(&self.db)
            .await
            .context("could not read memberships")?;
        let mut by_tenant: FastMap<Uuid, FastMap<Uuid, Role>> = FastMap::default();
        for m in rows {
            by_tenant
                .entry(m.tenant_id)
                .or_default()
                .insert(m.user_id, m.role);
        }
        Ok(by_tenant
            .into_iter()
            .map(|(t, m)| (t, Arc::new(m)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policy_parses_and_covers_every_permission() {
        let known = crate::api::permissions();
        let text = crate::config::files::built_in("policy.csv").unwrap();
        let rules = parse_policy(text, &known).unwrap();
        for p in &known {
            assert!(
                rules.iter().any(|r| r[1] == p.object && r[2] == p.action),
                "{p} is granted to nobody"
            );
        }
    }

    /// The compiled answers are Casbin's: for every role and permission, members and
    /// non-members, in their own tenant and in others.
    #[tokio::test]
    async fn compiled_decisions_equal_casbins_enforce() {
        let known = crate::api::permissions();
        let model = crate::config::files::built_in("rbac_model.conf").unwrap();
        let text = crate::config::files::built_in("policy.csv").unwrap();
        let policy = parse_policy(text, &known).unwrap();
        let grants = Arc::new(Grants::compile(model, &policy, &known).await.unwrap());
        let tenants: Vec<Uuid> = (0..7).map(|_| Uuid::new_v4()).collect();
        let users: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
        let roles: Vec<Role> = Role::iter().collect();
        let mut assigned = HashMap::new();
        for (i, user) in users.iter().enumerate() {
            // Most users in one tenant, some in two with different roles, some in none.
            if i % 9 != 0 {
                assigned.insert((*user, tenants[i % tenants.len()]), roles[i % roles.len()]);
            }
            if i % 4 == 0 {
                let other = tenants[(i + 3) % tenants.len()];
                assigned.insert((*user, other), roles[(i + 2) % roles.len()]);
            }
        }
        let lines = assigned
            .iter()
            .map(|((user, tenant), role)| {
                vec![user.to_string(), role.to_value(), tenant.to_string()]
            })
            .collect();
        let enforcer = build_enforcer(model, &policy, lines).await.unwrap();
        let snapshot = Snapshot::of(grants, assigned);
        let mut checked = 0;
        for user in &users {
            for tenant in &tenants {
                for permission in &known {
                    let casbin = enforcer
                        .enforce((
                            user.to_string(),
                            tenant.to_string(),
                            permission.object,
                            permission.action,
                        ))
                        .unwrap();
                    assert_eq!(
                        snapshot.allows(*user, *tenant, *permission),
                        casbin,
                        "{user} {tenant} {permission}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn typos_in_the_policy_are_refused() {
        let known = [Permission::new("posts", "read")];
        let parse = |text| parse_policy(text, &known);
        assert!(parse("p, editer, posts, read").is_err());
        assert!(parse("p, editor, posts, reed").is_err());
        assert!(parse("g, alice, owner, acme").is_err());
        assert!(parse("p, editor, posts").is_err());
        assert!(parse("# comment\n\np, editor, posts, read").is_ok());
    }
}
