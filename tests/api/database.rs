//! How the service behaves when the database is contended or gone: a client sees 409 (lost a
//! race, retry) or 503 with `Retry-After` (database unreachable, retry later), never a 500,
//! and the service recovers by itself.
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use figment::{Figment, providers::Serialized};
use futures_util::future::join_all;
use ironquill::{
    app::{AppState, endpoint},
    config::{AppEnv, Settings},
    store::{MemoryStore, Store},
};
use poem::{Server, listener::TcpAcceptor};
use reqwest::StatusCode;
use sea_orm::Database;
use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    task::{JoinHandle, JoinSet},
};

use crate::{
    helpers::{assert_problem, spawn_app_with, test_figment},
    team::Team,
};

/// Several pooled connections to one database, as a deployment has: a file-backed SQLite
/// (the suite's in-memory SQLite has a single connection, which cannot contend) or the
/// suite's PostgreSQL.
fn on_a_shared_pool(figment: Figment, dir: &tempfile::TempDir) -> Figment {
    if std::env::var("DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        return figment.merge(Serialized::default("database.max_connections", 10));
    }
    let url = format!("sqlite://{}/iq.db?mode=rwc", dir.path().display());
    figment
        .merge(Serialized::default("database.url", url))
        .merge(Serialized::default("database.max_connections", 10))
}

/// Counts the statuses of many concurrent requests, for the assertion message.
fn tally(statuses: &[StatusCode]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for s in statuses {
        *counts.entry(s.as_u16()).or_insert(0) += 1;
    }
    format!("{counts:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_role_changes_never_answer_a_server_error() {
    let dir = tempfile::tempdir().unwrap();
    let team = Team::of(spawn_app_with(|f| on_a_shared_pool(f, &dir)).await).await;
    let owner = team.key("owner").to_owned();
    let mut members = vec![team.bob_id.clone()];
    for actor in ["admin", "editor", "author", "viewer"] {
        members.push(team.app.user_id_of(team.key(actor)).await);
    }
    let app = Arc::new(team.app);
    let roles = ["editor", "author", "viewer", "admin"];
    // 8 clients × 25 requests, each toggling one of five members between four roles.
    let clients = (0..8).map(|c| {
        let (app, owner, members) = (app.clone(), owner.clone(), members.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..25 {
                let member = &members[(c + i) % members.len()];
                let role = roles[(c * 3 + i) % roles.len()];
                let resp = app.change_role(&owner, "acme", member, role).await;
                statuses.push(resp.status());
            }
            statuses
        })
    });
    let statuses: Vec<StatusCode> = join_all(clients)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    assert_eq!(statuses.len(), 200);
    assert!(
        statuses.iter().all(|s| !s.is_server_error()),
        "no 5xx under contention: {}",
        tally(&statuses)
    );
    assert!(
        statuses.iter().filter(|s| s.is_success()).count() >= 100,
        "most changes go through: {}",
        tally(&statuses)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_invitations_never_answer_a_server_error() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(spawn_app_with(|f| on_a_shared_pool(f, &dir)).await);
    let owner = app.bootstrap("acme", "owner@example.com").await.api_key;
    // 8 clients × 15 new addresses each, all at once.
    let clients = (0..8).map(|c| {
        let (app, owner) = (app.clone(), owner.clone());
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..15 {
                let email = format!("new-{c}-{i}@example.com");
                let resp = app.add_member(&owner, "acme", &email, "viewer").await;
                statuses.push(resp.status());
            }
            statuses
        })
    });
    let statuses: Vec<StatusCode> = join_all(clients)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    assert_eq!(statuses.len(), 120);
    assert!(
        statuses.iter().all(|s| !s.is_server_error()),
        "no 5xx under contention: {}",
        tally(&statuses)
    );
    assert!(
        statuses.iter().filter(|s| s.is_success()).count() >= 60,
        "most invitations go through: {}",
        tally(&statuses)
    );
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Asserts the 503 a client gets while the database is unreachable, and that it came fast.
async fn assert_unavailable_quickly(client: &reqwest::Client, url: &str) {
    let started = Instant::now();
    let resp = client.get(url).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status(), 503, "{url}");
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry_after >= 1);
    let problem = assert_problem(resp, 503).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("database is temporarily unavailable"),
        "{problem}"
    );
    // database.acquire_timeout_ms is 1000 by default; not the pool's old 5 s, nor a hang.
    assert!(took < Duration::from_millis(2500), "503 after {took:?}");
}

#[tokio::test]
async fn an_unreachable_database_is_a_quick_503_with_retry_after() {
    let port = closed_port().await;
    let figment = test_figment().await.merge(Serialized::default(
        "database.url",
        format!("postgres://postgres@127.0.0.1:{port}/nowhere"),
    ));
    let settings = Settings::from_figment(figment, AppEnv::Test).unwrap();
    // Connected lazily, as a running service whose database has gone away.
    let mut options = ironquill::db::options(&settings.database);
    options.connect_lazy(true);
    let db = Database::connect(options).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let public_url = url::Url::parse(&format!("http://{addr}")).unwrap();
    let state = AppState::new(
        settings,
        public_url,
        db,
        Store::Memory(MemoryStore::new(100)),
    )
    .await
    .unwrap();
    let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
    let server = tokio::spawn(Server::new_with_acceptor(acceptor).run(endpoint(state)));
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");

    assert_unavailable_quickly(&client, &format!("{base}/public/acme/posts")).await;
    // Liveness does not depend on the database; readiness does.
    let live = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    server.abort();
}

/// A TCP proxy in front of the database that the test can cut and restore.
struct Proxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let mut proxy = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            upstream,
            task: None,
        };
        proxy.open().await;
        proxy
    }

    /// Listens (again, on the same port) and forwards every connection.
    async fn open(&mut self) {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.addr).unwrap();
        let listener = socket.listen(64).unwrap();
        self.addr = listener.local_addr().unwrap();
        let upstream = self.upstream;
        self.task = Some(tokio::spawn(async move {
            // Dropping the set (when this task is aborted) cuts every open connection.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// The database goes away: open connections are cut, new ones refused.
    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_and_the_service_recovers_by_itself() {
    let Ok(url) = std::env::var("DATABASE_URL").map(|u| url::Url::parse(&u).unwrap()) else {
        eprintln!("skipped: needs DATABASE_URL (PostgreSQL) for a database that can go away");
        return;
    };
    if !url.scheme().starts_with("postgres") {
        eprintln!("skipped: needs DATABASE_URL (PostgreSQL) for a database that can go away");
        return;
    }
    let upstream = tokio::net::lookup_host((
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5432),
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let mut proxy = Proxy::start(upstream).await;
    let proxy_port = proxy.addr.port();
    let app = spawn_app_with(|f| {
        // The fresh test database, reached through the proxy.
        let mut through: url::Url = f
            .extract_inner::<String>("database.url")
            .unwrap()
            .parse()
            .unwrap();
        through.set_host(Some("127.0.0.1")).unwrap();
        through.set_port(Some(proxy_port)).unwrap();
        f.merge(Serialized::default("database.url", through.to_string()))
    })
    .await;
    let owner = app.bootstrap("acme", "owner@example.com").await.api_key;
    let posts = app.url("/api/v1/tenants/acme/posts");
    let public = app.url("/public/acme/posts");
    assert_eq!(app.list_posts(&owner, "acme").await.status(), 200);

    proxy.cut().await;
    assert_unavailable_quickly(&app.client, &public).await;
    let resp = app
        .client
        .get(&posts)
        .header("authorization", format!("apikey {owner}"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 503).await;

    proxy.open().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app.list_posts(&owner, "acme").await.status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not recovered: still {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.get_public_posts("acme", "").await.status(), 200);
}
