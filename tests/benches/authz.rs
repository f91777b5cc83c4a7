//! Authorization cost: `just bench` (or `cargo bench --bench authz`).
//!
//! - `enforce_10k_assignments`: one Casbin decision with the shipped model and policy and
//!   10,000 role assignments (1,000 tenants of 10 members), as the policy is compiled.
//! - `decision_10k_assignments`, `decision_100k_assignments`: the decision requests take, from
//!   the compiled policy (10,000 assignments over 100 tenants; 100,000 over 1,000).
//! - `role_change_reload_100k_incremental` / `_full`: a role change and the next snapshot at
//!   100,000 assignments over 1,000 tenants, with the change log and without it.
//! - `tenant_authz_middleware` vs `bare_endpoint`: the middleware in front of an endpoint that
//!   does nothing, on SQLite in memory with the in-process store. The difference is the
//!   per-request overhead: tenant lookup, policy epoch check, membership and route decisions.
use casbin::CoreApi;
use criterion::{Criterion, criterion_group, criterion_main};
use ironquill::{
    app::AppState,
    auth::Principal,
    authz::{Grants, Snapshot, TenantAuthz, build_enforcer, parse_policy},
    config::{AppEnv, Settings},
    db::entities::Role,
    domain::TenantScope,
};
use poem::{Endpoint, Middleware, Request, endpoint::make_sync, http::Method};

const ROLES: [&str; 5] = ["owner", "admin", "editor", "author", "viewer"];

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let model = std::fs::read_to_string("config/rbac_model.conf").expect("model");
    let policy = parse_policy(
        &std::fs::read_to_string("config/policy.csv").expect("policy"),
        &ironquill::api::permissions(),
    )
    .expect("policy parses");
    let assignments: Vec<Vec<String>> = (0..10_000)
        .map(|i| {
            vec![
                format!("user-{i}"),
                ROLES[i % 5].to_owned(),
                format!("tenant-{}", i / 10),
            ]
        })
        .collect();
    let enforcer = rt
        .block_on(build_enforcer(&model, &policy, assignments))
        .expect("enforcer");
    c.bench_function("enforce_10k_assignments", |b| {
        b.iter(|| {
            // user-4242 is an editor (4242 % 5 == 2) of tenant-424.
            let allowed = enforcer
                .enforce(std::hint::black_box((
                    "user-4242",
                    "tenant-424",
                    "posts",
                    "update_any",
                )))
                .expect("enforce");
            assert!(allowed);
        })
    });

    // The decision the middleware takes: Casbin's compiled answer for the member's role.
    let known = ironquill::api::permissions();
    let grants = std::sync::Arc::new(
        rt.block_on(Grants::compile(&model, &policy, &known))
            .expect("grants"),
    );
    let update_any = ironquill::authz::Permission::new("posts", "update_any");
    for (members, tenants) in [(10_000u32, 100u32), (100_000, 1_000)] {
        let roles = [
            Role::Owner,
            Role::Admin,
            Role::Editor,
            Role::Author,
            Role::Viewer,
        ];
        let ids: Vec<(uuid::Uuid, uuid::Uuid)> = (0..members)
            .map(|i| {
                (
                    uuid::Uuid::new_v4(),
                    uuid::Uuid::from_u128(u128::from(i % tenants)),
                )
            })
            .collect();
        let assigned = ids
            .iter()
            .enumerate()
            .map(|(i, key)| (*key, roles[i % roles.len()]))
            .collect();
        let snapshot = Snapshot::of(grants.clone(), assigned);
        // ids[2] is an editor (2 % 5): allowed.
        let (user, tenant) = ids[2];
        c.bench_function(&format!("decision_{}k_assignments", members / 1000), |b| {
            b.iter(|| {
                assert!(snapshot.allows(
                    std::hint::black_box(user),
                    std::hint::black_box(tenant),
                    update_any
                ))
            })
        });
    }

    let (state, principal) = rt.block_on(async {
        let settings = Settings::from_figment(Settings::figment(AppEnv::Test), AppEnv::Test)
            .expect("settings");
        let state = AppState::connect(settings).await.expect("state");
        let issued = ironquill::admin::bootstrap(&state, "bench", "bench@example.com")
            .await
            .expect("bootstrap");
        let principal = state
            .keys
            .verify(&issued.api_key, None)
            .await
            .expect("verify")
            .expect("valid key");
        (state, principal)
    });
    let request = |principal: &Principal| {
        let mut req = Request::builder()
            .method(Method::GET)
            .uri_str("/api/v1/tenants/bench/posts")
            .finish();
        req.extensions_mut().insert(principal.clone());
        req
    };
    let bare = make_sync(|_| "ok");
    let guarded =
        TenantAuthz::new(&state, ironquill::api::tenant_routes()).transform(make_sync(|_| "ok"));
    c.bench_function("bare_endpoint", |b| {
        b.to_async(&rt)
            .iter(|| async { bare.call(request(&principal)).await.expect("ok") })
    });
    c.bench_function("tenant_authz_middleware", |b| {
        b.to_async(&rt)
            .iter(|| async { guarded.call(request(&principal)).await.expect("allowed") })
    });
}

/// 100,000 members over 1,000 tenants, written in batches.
async fn seed(state: &AppState) -> Vec<(TenantScope, uuid::Uuid)> {
    use ironquill::db::entities::{membership, tenant, user};
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let now = chrono::Utc::now();
    let mut members = Vec::new();
    for t in 0..1_000 {
        let tenant_id = uuid::Uuid::now_v7();
        tenant::Entity::insert(tenant::ActiveModel {
            id: Set(tenant_id),
            slug: Set(format!("t{t}")),
            name: Set(format!("Tenant {t}")),
            created_at: Set(now),
        })
        .exec(&state.db)
        .await
        .expect("tenant");
        let users: Vec<uuid::Uuid> = (0..100).map(|_| uuid::Uuid::now_v7()).collect();
        user::Entity::insert_many(users.iter().map(|id| user::ActiveModel {
            id: Set(*id),
            email: Set(None),
            display_name: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }))
        .exec(&state.db)
        .await
        .expect("users");
        membership::Entity::insert_many(users.iter().enumerate().map(|(i, id)| {
            membership::ActiveModel {
                tenant_id: Set(tenant_id),
                user_id: Set(*id),
                role: Set([Role::Owner, Role::Editor, Role::Viewer][i % 3]),
                created_at: Set(now),
                updated_at: Set(now),
            }
        }))
        .exec(&state.db)
        .await
        .expect("memberships");
        if t % 100 == 0 {
            let scope = ironquill::domain::tenants::resolve(&state.db, &format!("t{t}"))
                .await
                .expect("resolve")
                .expect("tenant");
            members.push((scope, users[1]));
        }
    }
    members
}

/// What a role change costs until the instance decides with it, at 100,000 assignments: the
/// change (one transaction), then the next snapshot; with the change log (one tenant read
/// again) and without it (every assignment read again).
fn reload(c: &mut Criterion) {
    use ironquill::domain::memberships;
    use sea_orm::ConnectionTrait;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (state, members) = rt.block_on(async {
        let settings = Settings::from_figment(Settings::figment(AppEnv::Test), AppEnv::Test)
            .expect("settings");
        let state = AppState::connect(settings).await.expect("state");
        let members = seed(&state).await;
        state.authz.snapshot().await.expect("first load");
        (state, members)
    });
    let write = ironquill::authz::Permission::new("posts", "create");
    for (name, keep_log) in [
        ("role_change_reload_100k_incremental", true),
        ("role_change_reload_100k_full", false),
    ] {
        let mut flip = false;
        c.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                flip = !flip;
                let (state, (scope, user)) = (&state, &members[3]);
                let role = if flip { Role::Editor } else { Role::Viewer };
                async move {
                    memberships::set_role(&state.db, scope, *user, role)
                        .await
                        .expect("change");
                    if !keep_log {
                        state
                            .db
                            .execute_unprepared("DELETE FROM authz_changes")
                            .await
                            .expect("forget");
                    }
                    state.authz.membership_changed().await;
                    let snapshot = state.authz.snapshot().await.expect("reload");
                    assert_eq!(snapshot.allows(*user, scope.id(), write), flip);
                }
            })
        });
    }
}

criterion_group!(benches, bench, reload);
criterion_main!(benches);
