//! `spawn_app()` and the per-endpoint helpers the tests read like a specification with.
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use figment::{Figment, providers::Serialized};
use ironquill::{
    admin::Issued,
    app::{AppState, Application},
    config::{AppEnv, Settings},
    db::entities::{PostStatus, api_key, post, tenant, user},
};
use reqwest::Method;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Database, DatabaseConnection, EntityTrait, Set};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

/// One Ed25519 signing key for the whole suite, in PKCS#8 PEM.
static SIGNING_KEY: LazyLock<String> = LazyLock::new(|| {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, spki::der::pem::LineEnding};
    let seed: [u8; 32] = rand::random();
    ed25519_dalek::SigningKey::from_bytes(&seed)
        .to_pkcs8_pem(LineEnding::LF)
        .expect("encode the test key")
        .to_string()
});

/// A token signed with the suite's key, with the given `typ` and claims.
pub fn mint_token(typ: Option<&str>, claims: &Value) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = typ.map(str::to_owned);
    header.kid = Some("test-1".into());
    let key = EncodingKey::from_ed_pem(SIGNING_KEY.as_bytes()).expect("suite key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

static TRACING: LazyLock<()> = LazyLock::new(|| {
    let settings = Settings::from_figment(Settings::figment(AppEnv::Test), AppEnv::Test)
        .expect("test settings");
    let mut log = settings.log;
    if std::env::var_os("TEST_LOG").is_some() {
        log.filter = "debug,sqlx=warn,sea_orm=warn,hyper=info".into();
        let _ = ironquill::telemetry::init(&log);
    } else {
        let _ = ironquill::telemetry::init_with_writer(&log, std::io::sink);
    }
});

pub struct TestApp {
    pub address: String,
    /// `http://…` of the metrics listener, when `metrics.listen` is set.
    pub metrics_address: Option<String>,
    /// `http://…` of the plain listener that redirects to https, when configured.
    pub redirect_address: Option<String>,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A fresh database URL for one test: a new PostgreSQL database when `DATABASE_URL` names a
/// server, otherwise a private in-memory SQLite database.
async fn fresh_database_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            let name = format!("iq_test_{}", Uuid::new_v4().simple());
            let admin = Database::connect(&url)
                .await
                .expect("connect to DATABASE_URL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let mut parsed = url::Url::parse(&url).expect("DATABASE_URL is a URL");
            parsed.set_path(&name);
            parsed.to_string()
        }
        _ => "sqlite::memory:".to_owned(),
    }
}

/// The test settings, on a fresh database and port 0; Redis with a private key prefix when
/// `REDIS_URL` is set.
pub async fn test_figment() -> Figment {
    let mut figment = Settings::figment(AppEnv::Test)
        .merge(Serialized::default(
            "database.url",
            fresh_database_url().await,
        ))
        .merge(Serialized::default("server.port", 0))
        // A configured key, as production has, so sibling instances verify each other's tokens.
        .merge(Serialized::default(
            "auth.signing_keys",
            serde_json::json!([{"kid": "test-1", "private_key_pem": SIGNING_KEY.as_str()}]),
        ));
    if let Ok(url) = std::env::var("REDIS_URL") {
        figment = figment
            .merge(Serialized::default("redis.url", url))
            .merge(Serialized::default(
                "redis.key_prefix",
                format!("iq-test:{}:", Uuid::new_v4().simple()),
            ));
    }
    figment
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|f| f).await
}

/// Spawns the app with settings adjusted by `customize`.
pub async fn spawn_app_with(customize: impl FnOnce(Figment) -> Figment) -> TestApp {
    let figment = customize(test_figment().await);
    let settings = Settings::from_figment(figment, AppEnv::Test).expect("valid test settings");
    spawn_app_from(settings).await
}

/// The app on a SQLite file in `dir` (whatever `DATABASE_URL` says), where the hot reads run
/// on the calling thread (`db::Reader`) rather than through the pool.
pub async fn spawn_app_on_a_sqlite_file(dir: &tempfile::TempDir) -> TestApp {
    let url = format!("sqlite://{}/iq.db?mode=rwc", dir.path().display());
    let app = spawn_app_with(|f| f.merge(Serialized::default("database.url", url))).await;
    assert!(
        app.state.reads.is_inline(),
        "reads on a SQLite file run inline"
    );
    app
}

/// A second instance on the same database and Redis as `other`, as behind a load balancer.
/// Only meaningful when both are shared services (PostgreSQL and Redis).
pub async fn spawn_sibling(other: &TestApp) -> TestApp {
    let mut settings = other.state.settings.as_ref().clone();
    // Behind one load balancer every instance has the same public URL (token issuer).
    settings.server.public_url = Some(other.state.public_url.clone());
    spawn_app_from(settings).await
}

/// Whether the suite runs on shared services, so that two instances see the same state.
pub fn shared_backends() -> bool {
    std::env::var("DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"))
        && std::env::var("REDIS_URL").is_ok()
}

async fn spawn_app_from(settings: Settings) -> TestApp {
    run_app(build_app(settings).await)
}

/// The application bound to its ports but not yet serving (a test may need a port first).
pub async fn build_app(settings: Settings) -> Application {
    LazyLock::force(&TRACING);
    Application::build(settings)
        .await
        .expect("application builds")
}

/// Serves `app` until the returned `TestApp` is dropped or shut down.
pub fn run_app(app: Application) -> TestApp {
    let scheme = if app.state().settings.server.tls.enabled() {
        "https"
    } else {
        "http"
    };
    let address = format!("{scheme}://{}", app.addr());
    let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let redirect_address = app.redirect_addr().map(|addr| format!("http://{addr}"));
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    TestApp {
        address,
        metrics_address,
        redirect_address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        db: state.db.clone(),
        state,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// A request carrying `Authorization: apikey <key>`.
    pub fn with_key(&self, method: Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, self.url(path));
        request.header("authorization", format!("apikey {key}"))
    }

    /// A request carrying the key as printed, in `X-API-Key`.
    pub fn with_x_api_key(&self, method: Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("x-api-key", key)
    }

    /// `POST /oauth/token` with `form`; `basic`: the key as HTTP Basic (user `apikey`).
    pub async fn request_token(
        &self,
        form: &[(&str, &str)],
        basic: Option<&str>,
    ) -> reqwest::Response {
        let request = self.client.post(self.url("/oauth/token")).form(form);
        let request = match basic {
            Some(key) => request.basic_auth("apikey", Some(key)),
            None => request,
        };
        request.send().await.expect("request sent")
    }

    /// A request carrying `Authorization: Bearer <token>`.
    pub fn with_bearer(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// Every refresh token issued so far expires, as if a week had passed.
    pub async fn expire_refresh_tokens(&self) {
        use ironquill::db::entities::refresh_token;
        refresh_token::Entity::update_many()
            .col_expr(
                refresh_token::Column::ExpiresAt,
                sea_orm::sea_query::Expr::value(Utc::now() - chrono::Duration::seconds(1)),
            )
            .exec(&self.db)
            .await
            .unwrap();
    }

    pub async fn get_with_key(&self, path: &str, key: &str) -> reqwest::Response {
        self.with_key(reqwest::Method::GET, path, key)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn post_json_with_key(
        &self,
        path: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.with_key(reqwest::Method::POST, path, key)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete_with_key(&self, path: &str, key: &str) -> reqwest::Response {
        self.with_key(reqwest::Method::DELETE, path, key)
            .send()
            .await
            .expect("request sent")
    }

    /// A new tenant with a new owner, through the operator bootstrap; returns the owner's key.
    pub async fn bootstrap(&self, tenant: &str, email: &str) -> Issued {
        ironquill::admin::bootstrap(&self.state, tenant, email)
            .await
            .expect("bootstrap")
    }

    /// A user with `role` in an existing tenant; returns its key.
    pub async fn add_user(&self, tenant: &str, email: &str, role: &str) -> Issued {
        ironquill::admin::add_user(&self.state, tenant, email, role)
            .await
            .expect("add user")
    }

    /// Stops the server and waits until it has finished.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(handle) => handle.await?,
            None => Ok(()),
        }
    }

    pub async fn seed_tenant(&self, slug: &str) -> tenant::Model {
        tenant::ActiveModel {
            id: Set(Uuid::now_v7()),
            slug: Set(slug.to_owned()),
            name: Set(format!("Tenant {slug}")),
            created_at: Set(Utc::now()),
        }
        .insert(&self.db)
        .await
        .expect("insert tenant")
    }

    pub async fn seed_user(&self) -> user::Model {
        let now = Utc::now();
        user::ActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(None),
            display_name: Set(Some("Test User".into())),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await
        .expect("insert user")
    }

    pub async fn seed_post(
        &self,
        tenant: &tenant::Model,
        author: &user::Model,
        slug: &str,
        published_at: Option<DateTime<Utc>>,
    ) -> post::Model {
        let now = Utc::now();
        post::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.id),
            author_id: Set(author.id),
            title: Set(format!("Title of {slug}")),
            slug: Set(slug.to_owned()),
            body: Set(format!("Body of {slug}")),
            status: Set(if published_at.is_some() {
                PostStatus::Published
            } else {
                PostStatus::Draft
            }),
            version: Set(1),
            published_at: Set(published_at),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await
        .expect("insert post")
    }
}

/// One helper per endpoint: each sends one request (with `key` where the endpoint needs one)
/// and returns the response, so a test states only what the specification says about it.
impl TestApp {
    pub async fn get_public_posts(&self, tenant: &str, query: &str) -> reqwest::Response {
        self.get(&format!("/public/{tenant}/posts{query}")).await
    }

    pub async fn get_public_post(&self, tenant: &str, slug: &str) -> reqwest::Response {
        self.get(&format!("/public/{tenant}/posts/{slug}")).await
    }

    pub async fn get_me(&self, key: &str) -> reqwest::Response {
        self.get_with_key("/api/v1/me", key).await
    }

    pub async fn list_tenants(&self, key: &str) -> reqwest::Response {
        self.get_with_key("/api/v1/tenants", key).await
    }

    pub async fn create_tenant(&self, key: &str, body: &Value) -> reqwest::Response {
        self.post_json_with_key("/api/v1/tenants", key, body).await
    }

    /// Creating a tenant is done in a session (a key is bound to its tenant).
    pub async fn create_tenant_in_session(&self, session: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/tenants"))
            .bearer_auth(session)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// An access token of a session of `user`, as a browser holds after logging in (signed
    /// with the suite's key; no login round trip needed where the login is not under test).
    pub fn session_for(&self, user: Uuid) -> String {
        let base = self.state.public_url.as_str().trim_end_matches('/');
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({
            "iss": base, "aud": format!("{base}/api"), "sub": user,
            "sid": Uuid::now_v7(), "jti": Uuid::now_v7(),
            "iat": now, "nbf": now, "exp": now + 600,
        });
        mint_token(Some("at+jwt"), &claims)
    }

    pub async fn list_keys(&self, key: &str) -> reqwest::Response {
        self.get_with_key(API_KEYS, key).await
    }

    pub async fn create_key(&self, key: &str, body: &Value) -> reqwest::Response {
        self.post_json_with_key(API_KEYS, key, body).await
    }

    pub async fn revoke_key(&self, key: &str, id: &str) -> reqwest::Response {
        self.delete_with_key(&format!("{API_KEYS}/{id}"), key).await
    }

    pub async fn rotate_key(&self, key: &str, id: &str) -> reqwest::Response {
        self.post_json_with_key(&format!("{API_KEYS}/{id}/rotate"), key, &json!({}))
            .await
    }

    pub async fn list_posts(&self, key: &str, tenant: &str) -> reqwest::Response {
        self.get_with_key(&posts(tenant), key).await
    }

    pub async fn create_post(&self, key: &str, tenant: &str, body: &Value) -> reqwest::Response {
        self.post_json_with_key(&posts(tenant), key, body).await
    }

    pub async fn get_post(&self, key: &str, tenant: &str, id: &str) -> reqwest::Response {
        self.get_with_key(&post(tenant, id), key).await
    }

    pub async fn update_post(
        &self,
        key: &str,
        tenant: &str,
        id: &str,
        if_match: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let req = self
            .with_key(Method::PATCH, &post(tenant, id), key)
            .json(body);
        send(with_if_match(req, if_match)).await
    }

    pub async fn delete_post(&self, key: &str, tenant: &str, id: &str) -> reqwest::Response {
        self.delete_with_key(&post(tenant, id), key).await
    }

    /// `DELETE` with an `If-Match` precondition.
    pub async fn delete_post_if_match(
        &self,
        key: &str,
        tenant: &str,
        id: &str,
        if_match: &str,
    ) -> reqwest::Response {
        let req = self.with_key(Method::DELETE, &post(tenant, id), key);
        send(with_if_match(req, Some(if_match))).await
    }

    pub async fn unpublish_post(
        &self,
        key: &str,
        tenant: &str,
        id: &str,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        self.post_action(key, tenant, id, "unpublish", if_match)
            .await
    }

    pub async fn publish_post(
        &self,
        key: &str,
        tenant: &str,
        id: &str,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        self.post_action(key, tenant, id, "publish", if_match).await
    }

    /// `POST …/posts/{id}/{action}` with an optional `If-Match`.
    async fn post_action(
        &self,
        key: &str,
        tenant: &str,
        id: &str,
        action: &str,
        if_match: Option<&str>,
    ) -> reqwest::Response {
        let path = format!("{}/{action}", post(tenant, id));
        send(with_if_match(
            self.with_key(Method::POST, &path, key),
            if_match,
        ))
        .await
    }

    pub async fn create_comment(
        &self,
        key: &str,
        tenant: &str,
        post_id: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.post_json_with_key(&comments(tenant, post_id), key, body)
            .await
    }

    pub async fn delete_comment(
        &self,
        key: &str,
        tenant: &str,
        post_id: &str,
        id: &str,
    ) -> reqwest::Response {
        let path = format!("{}/{id}", comments(tenant, post_id));
        self.delete_with_key(&path, key).await
    }

    pub async fn list_members(&self, key: &str, tenant: &str) -> reqwest::Response {
        self.get_with_key(&members(tenant), key).await
    }

    /// Adds the user with that address, or invites the address if no user has it yet.
    pub async fn add_member(
        &self,
        key: &str,
        tenant: &str,
        email: &str,
        role: &str,
    ) -> reqwest::Response {
        let body = json!({"email": email, "role": role});
        self.post_json_with_key(&members(tenant), key, &body).await
    }

    pub async fn change_role(
        &self,
        key: &str,
        tenant: &str,
        user_id: &str,
        role: &str,
    ) -> reqwest::Response {
        let path = format!("{}/{user_id}", members(tenant));
        let req = self.with_key(Method::PATCH, &path, key);
        send(req.json(&json!({"role": role}))).await
    }

    pub async fn remove_member(&self, key: &str, tenant: &str, user_id: &str) -> reqwest::Response {
        self.delete_with_key(&format!("{}/{user_id}", members(tenant)), key)
            .await
    }
}

/// Steps a test takes on its way to what it is about: each must succeed, and returns what the
/// test needs next.
impl TestApp {
    /// Creates a key and returns the response body (with `api_key`, the secret).
    pub async fn new_key(&self, key: &str, body: &Value) -> Value {
        let resp = self.create_key(key, body).await;
        assert_eq!(
            resp.status(),
            201,
            "create key: {}",
            resp.text().await.unwrap_or_default()
        );
        resp.json().await.expect("created key JSON")
    }

    /// A machine token for `key` (client credentials with HTTP Basic), with `scope` if given.
    pub async fn machine_token(&self, key: &str, scope: Option<&str>) -> String {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(scope.map(|scope| ("scope", scope)));
        let resp = self.request_token(&form, Some(key)).await;
        assert_eq!(
            resp.status(),
            200,
            "token: {}",
            resp.text().await.unwrap_or_default()
        );
        let body: Value = resp.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A draft by `key`'s user in `tenant`; returns its id.
    pub async fn new_draft(&self, key: &str, tenant: &str, slug: &str) -> String {
        let resp = self.create_post(key, tenant, &draft(slug)).await;
        assert_eq!(resp.status(), 201, "create {slug}");
        id_of(&resp.json().await.expect("created post JSON")).to_owned()
    }

    /// A published post by `key`'s user in `tenant`; returns its id.
    pub async fn new_published_post(&self, key: &str, tenant: &str, slug: &str) -> String {
        let resp = self.create_post(key, tenant, &draft(slug)).await;
        assert_eq!(resp.status(), 201, "create {slug}");
        let tag = etag(&resp);
        let id = id_of(&resp.json().await.expect("created post JSON")).to_owned();
        let resp = self.publish_post(key, tenant, &id, Some(&tag)).await;
        assert_eq!(resp.status(), 200, "publish {slug}");
        id
    }

    /// The post's current `ETag`, as `key` reads it.
    pub async fn etag_of(&self, key: &str, tenant: &str, post_id: &str) -> String {
        etag(&self.get_post(key, tenant, post_id).await)
    }

    /// A comment by `key`'s user on a post; returns its id.
    pub async fn new_comment(&self, key: &str, tenant: &str, post_id: &str) -> String {
        let resp = self
            .create_comment(key, tenant, post_id, &json!({"body": "hi"}))
            .await;
        assert_eq!(resp.status(), 201);
        id_of(&resp.json().await.expect("created comment JSON")).to_owned()
    }

    /// The key labelled `label`, as `key`'s list shows it.
    pub async fn listed_key(&self, key: &str, label: &str) -> Value {
        let list: Value = self
            .list_keys(key)
            .await
            .json()
            .await
            .expect("key list JSON");
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|k| k["label"] == label)
            .unwrap_or_else(|| panic!("no key labelled {label:?} in {list}"))
            .clone()
    }

    /// When the key with this id was last used, as stored.
    pub async fn last_used_at(&self, key_id: &str) -> Option<DateTime<Utc>> {
        let id: Uuid = key_id.parse().expect("key id");
        api_key::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .expect("read key")
            .expect("key exists")
            .last_used_at
    }

    /// The id of `key`'s user, as `/me` tells it.
    /// Invites `email`; returns the invitation's id.
    pub async fn new_invitation(&self, key: &str, tenant: &str, email: &str, role: &str) -> String {
        let resp = self.add_member(key, tenant, email, role).await;
        assert_eq!(resp.status(), 202, "invite {email}");
        let body: Value = resp.json().await.expect("invitation JSON");
        body["id"].as_str().expect("invitation id").to_owned()
    }

    pub async fn user_id_of(&self, key: &str) -> String {
        let me: Value = self.get_me(key).await.json().await.expect("me JSON");
        me["user_id"].as_str().expect("user_id").to_owned()
    }
}

/// The body of a new post with this slug.
pub fn draft(slug: &str) -> Value {
    json!({"title": format!("Title of {slug}"), "slug": slug, "body": format!("Body of {slug}")})
}

/// The `id` member of a resource.
pub fn id_of(resource: &Value) -> &str {
    resource["id"].as_str().expect("resource has an id")
}

/// The `ETag` header of a response.
pub fn etag(resp: &reqwest::Response) -> String {
    resp.headers()["etag"]
        .to_str()
        .expect("ETag is ASCII")
        .to_owned()
}

const API_KEYS: &str = "/api/v1/me/api-keys";

fn posts(tenant: &str) -> String {
    format!("/api/v1/tenants/{tenant}/posts")
}

fn post(tenant: &str, id: &str) -> String {
    format!("{}/{id}", posts(tenant))
}

fn comments(tenant: &str, post_id: &str) -> String {
    format!("{}/comments", post(tenant, post_id))
}

fn members(tenant: &str) -> String {
    format!("/api/v1/tenants/{tenant}/members")
}

fn with_if_match(req: reqwest::RequestBuilder, if_match: Option<&str>) -> reqwest::RequestBuilder {
    match if_match {
        Some(tag) => req.header("if-match", tag),
        None => req,
    }
}

async fn send(req: reqwest::RequestBuilder) -> reqwest::Response {
    req.send().await.expect("request sent")
}

/// Asserts a problem document with `status` and returns it.
pub async fn assert_problem(resp: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "problem content type"
    );
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: serde_json::Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status, "problem status member");
    assert_eq!(body["type"], "about:blank");
    assert!(body["title"].is_string(), "problem title");
    assert_eq!(
        body["request_id"].as_str(),
        request_id.as_deref(),
        "problem carries the request id"
    );
    body
}
