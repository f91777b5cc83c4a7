//! The binary: its commands and its refusal of bad configuration.
use std::process::Command;

fn ironquill() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ironquill"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("PORT")
        .env("APP_ENV", "test");
    cmd
}

#[test]
fn openapi_prints_the_spec() {
    let out = ironquill().arg("openapi").output().unwrap();
    assert!(out.status.success());
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(spec["info"]["title"], "ironquill");
    assert!(spec["paths"]["/public/{tenant}/posts"].is_object());
}

#[test]
fn migrate_creates_the_schema_in_a_new_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested/dir/iq.db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let out = ironquill()
        .arg("migrate")
        .env("APP__DATABASE__URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        file.exists(),
        "the database file and its directory were created"
    );
    // Running it again is a no-op, not an error.
    let again = ironquill()
        .arg("migrate")
        .env("APP__DATABASE__URL", &url)
        .output()
        .unwrap();
    assert!(again.status.success());
}

#[test]
fn an_invalid_value_names_the_key_and_exits_without_a_panic() {
    let out = ironquill()
        .arg("openapi")
        .env("APP__SERVER__PORT", "not-a-port")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.port"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn an_unknown_key_is_refused() {
    let out = ironquill()
        .arg("openapi")
        .env("APP__SERVER__PROT", "8080")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("prot"), "{stderr}");
}

#[test]
fn an_unknown_environment_is_refused() {
    let out = ironquill()
        .arg("openapi")
        .env("APP_ENV", "staging")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("APP_ENV"));
}

#[test]
fn port_is_honoured_as_hosting_platforms_set_it() {
    let out = ironquill()
        .arg("openapi")
        .env("PORT", "70000")
        .output()
        .unwrap();
    // 70000 is out of range for a port: the error proves PORT reached server.port.
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.port"));
}

/// `admin ...` against a fresh SQLite file; returns (exit code, stdout, stderr).
fn admin(db_url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    admin_with(db_url, &[], args)
}

/// `admin` with extra environment variables.
fn admin_with(db_url: &str, env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let out = ironquill()
        .arg("admin")
        .args(args)
        .env("APP__DATABASE__URL", db_url)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sqlite_file() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("iq.db").display());
    (dir, url)
}

#[test]
fn admin_bootstrap_prints_tenant_user_and_key_as_json() {
    let (_dir, url) = sqlite_file();
    let (code, stdout, stderr) = admin(
        &url,
        &[
            "bootstrap",
            "--tenant",
            "acme",
            "--email",
            "ann@example.com",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let issued: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("only JSON on stdout");
    assert_eq!(issued["tenant"], "acme");
    assert!(uuid::Uuid::parse_str(issued["user_id"].as_str().unwrap()).is_ok());
    assert!(issued["api_key"].as_str().unwrap().starts_with("iq_"));
    assert_eq!(issued.as_object().unwrap().len(), 3);
}

#[test]
fn admin_bootstrap_again_keeps_the_user_and_replaces_the_key() {
    let (_dir, url) = sqlite_file();
    let args = [
        "bootstrap",
        "--tenant",
        "acme",
        "--email",
        "ann@example.com",
    ];
    let (_, first, _) = admin(&url, &args);
    let (code, second, stderr) = admin(&url, &args);
    assert_eq!(code, Some(0), "{stderr}");
    let first: serde_json::Value = serde_json::from_str(first.trim()).unwrap();
    let second: serde_json::Value = serde_json::from_str(second.trim()).unwrap();
    assert_eq!(first["user_id"], second["user_id"]);
    assert_ne!(first["api_key"], second["api_key"]);
    // Someone else cannot take over an existing tenant.
    let (code, _, stderr) = admin(
        &url,
        &[
            "bootstrap",
            "--tenant",
            "acme",
            "--email",
            "mallory@example.com",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(stderr.contains("not its owner"), "{stderr}");
}

#[test]
fn admin_add_user_finds_or_creates_the_user_with_the_role() {
    let (_dir, url) = sqlite_file();
    admin(
        &url,
        &[
            "bootstrap",
            "--tenant",
            "acme",
            "--email",
            "ann@example.com",
        ],
    );
    let (code, stdout, stderr) = admin(
        &url,
        &[
            "add-user",
            "--tenant",
            "acme",
            "--email",
            "bob@example.com",
            "--role",
            "editor",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let bob: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(bob["tenant"], "acme");
    let (_, again, _) = admin(
        &url,
        &[
            "add-user",
            "--tenant",
            "acme",
            "--email",
            "BOB@example.com",
            "--role",
            "viewer",
        ],
    );
    let again: serde_json::Value = serde_json::from_str(again.trim()).unwrap();
    assert_eq!(
        again["user_id"], bob["user_id"],
        "found by email, case-insensitively"
    );
}

#[test]
fn admin_commands_refuse_bad_input_with_a_clear_message() {
    let (_dir, url) = sqlite_file();
    admin(
        &url,
        &[
            "bootstrap",
            "--tenant",
            "acme",
            "--email",
            "ann@example.com",
        ],
    );
    for (args, expected) in [
        (
            vec![
                "add-user",
                "--tenant",
                "nope",
                "--email",
                "b@example.com",
                "--role",
                "viewer",
            ],
            "no tenant",
        ),
        (
            vec![
                "add-user",
                "--tenant",
                "acme",
                "--email",
                "b@example.com",
                "--role",
                "boss",
            ],
            "--role",
        ),
        (
            vec![
                "add-user",
                "--tenant",
                "acme",
                "--email",
                "not-an-email",
                "--role",
                "viewer",
            ],
            "--email",
        ),
        (
            vec![
                "bootstrap",
                "--tenant",
                "Bad Slug",
                "--email",
                "c@example.com",
            ],
            "--tenant",
        ),
        (
            vec!["bootstrap", "--tenant", "api", "--email", "c@example.com"],
            "reserved",
        ),
        (
            vec![
                "add-user",
                "--tenant",
                "acme",
                "--email",
                "ann@example.com",
                "--role",
                "viewer",
            ],
            "last owner",
        ),
    ] {
        let (code, stdout, stderr) = admin(&url, &args);
        assert_eq!(code, Some(1), "{args:?}");
        assert!(stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Runs the real server with every log level on and checks that no secret reaches the logs.
#[tokio::test]
async fn no_api_key_secret_ever_reaches_the_logs() {
    let (_dir, url) = sqlite_file();
    let (_, stdout, _) = admin(
        &url,
        &[
            "bootstrap",
            "--tenant",
            "acme",
            "--email",
            "ann@example.com",
        ],
    );
    let owner: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let owner_key = owner["api_key"].as_str().unwrap().to_owned();

    let (mut server, base, lines) = serve_logged(&url, &[]);
    let client = reqwest::Client::new();
    let auth = |key: &str| format!("apikey {key}");

    client
        .get(format!("{base}/api/v1/me"))
        .header("authorization", auth(&owner_key))
        .send()
        .await
        .unwrap();
    let created: serde_json::Value = client
        .post(format!("{base}/api/v1/me/api-keys"))
        .header("authorization", auth(&owner_key))
        .json(&serde_json::json!({"label": "logged?", "tenant": "acme", "permissions": ["read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_key = created["api_key"].as_str().unwrap().to_owned();
    client
        .get(format!("{base}/api/v1/me"))
        .header("authorization", auth(&new_key))
        .send()
        .await
        .unwrap();
    let mut wrong = new_key.clone();
    wrong.pop();
    wrong.push('0');
    client
        .get(format!("{base}/api/v1/me"))
        .header("authorization", auth(&wrong))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/api/v1/me/api-keys"))
        .header("authorization", auth(&owner_key))
        .send()
        .await
        .unwrap();

    server.kill().unwrap();
    server.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let logs = lines.lock().unwrap().join("\n");
    assert!(
        logs.contains("request done"),
        "the requests were logged at all"
    );
    for secret in [&owner_key, &new_key, &wrong] {
        // The part after the non-secret lookup id must appear nowhere.
        let secret_part = &secret[20..];
        assert!(
            !logs.contains(secret_part),
            "a key secret appeared in the logs"
        );
    }
}

/// The server on `db_url` with every log line it writes (JSON, at trace level) collected.
fn serve_logged(
    db_url: &str,
    env: &[(&str, String)],
) -> (
    std::process::Child,
    String,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::io::{BufRead, BufReader};

    let mut cmd = ironquill();
    cmd.env("APP__DATABASE__URL", db_url)
        .env("APP__SERVER__PORT", "0")
        .env("APP__LOG__FORMAT", "json")
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let mut server = cmd.spawn().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(server.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(server.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        let addr_tx = addr_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if line.contains("listening;") {
                    let parsed: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    if let Some(addr) = parsed["fields"]["addr"].as_str() {
                        let _ = addr_tx.send(addr.to_owned());
                    }
                }
                lines.lock().unwrap().push(line);
            }
        });
    }
    let addr = addr_rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("server started");
    (server, format!("http://{addr}"), lines)
}

#[tokio::test]
async fn no_session_token_code_or_provider_secret_ever_reaches_the_logs() {
    use crate::fakes::oidc::{CLIENT_SECRET, FakeOidc};

    let idp = FakeOidc::start().await;
    let (_dir, url) = sqlite_file();
    let env = [
        ("APP__AUTH__PROVIDERS__FAKE__KIND", "oidc".to_owned()),
        ("APP__AUTH__PROVIDERS__FAKE__ISSUER", idp.issuer.clone()),
        (
            "APP__AUTH__PROVIDERS__FAKE__CLIENT_ID",
            crate::fakes::oidc::CLIENT_ID.to_owned(),
        ),
        (
            "APP__AUTH__PROVIDERS__FAKE__CLIENT_SECRET",
            CLIENT_SECRET.to_owned(),
        ),
        (
            "APP__AUTH__PROVIDERS__FAKE__ALLOW_PRIVATE_NETWORK",
            "true".to_owned(),
        ),
    ];
    let (mut server, base, lines) = serve_logged(&url, &env);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let location =
        |resp: &reqwest::Response| resp.headers()["location"].to_str().unwrap().to_owned();
    let cookie = |resp: &reqwest::Response, name: &str| {
        resp.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap().to_owned())
            .unwrap_or_else(|| panic!("cookie {name}"))
    };
    // The login, as a browser follows it.
    let start = client
        .get(format!("{base}/auth/login/fake"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    let binding = cookie(&start, "__Host-iq_login");
    let at_provider = client.get(location(&start)).send().await.unwrap();
    let callback = location(&at_provider);
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let signed_in = client
        .get(&callback)
        .header("cookie", format!("__Host-iq_login={binding}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let access = cookie(&signed_in, "__Host-iq_access");
    let refresh = cookie(&signed_in, "__Host-iq_refresh");
    // A native refresh, and a request with the new access token.
    let refreshed: serde_json::Value = client
        .post(format!("{base}/auth/refresh"))
        .header("x-refresh-token", &refresh)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next_access = refreshed["access_token"].as_str().unwrap().to_owned();
    let next_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
    let me = client
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&next_access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    server.kill().unwrap();
    server.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let logs = lines.lock().unwrap().join("\n");
    assert!(
        logs.contains("request done"),
        "the requests were logged at all"
    );
    for (what, secret) in [
        ("access token", access.as_str()),
        ("refresh token", refresh.as_str()),
        ("next access token", next_access.as_str()),
        ("next refresh token", next_refresh.as_str()),
        ("authorization code", code.as_str()),
        ("login binding", binding.as_str()),
        ("client secret", CLIENT_SECRET),
    ] {
        assert!(!logs.contains(secret), "the {what} appeared in the logs");
    }
}

#[test]
fn production_refuses_to_start_without_its_own_signing_keys() {
    let out = ironquill()
        .arg("openapi")
        .env("APP_ENV", "production")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("auth.signing_keys"), "{stderr}");
}

#[test]
fn a_public_url_with_a_path_is_refused() {
    let out = ironquill()
        .arg("openapi")
        .env("APP__SERVER__PUBLIC_URL", "https://example.com/blog")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.public_url"));
}

#[test]
fn a_secret_of_the_wrong_type_is_named_but_never_echoed() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIHUNTER2HUNTER2HUNTER2HUNTER2HUNTER2\n-----END PRIVATE KEY-----";
    let out = ironquill()
        .arg("openapi")
        // A key given as one string where a list of keys is expected.
        .env("APP__AUTH__SIGNING_KEYS", pem)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("auth.signing_keys"), "{stderr}");
    assert!(!stderr.contains("HUNTER2"), "the secret leaked: {stderr}");
}

#[test]
fn an_unset_app_env_on_a_public_address_refuses_to_start() {
    let out = ironquill()
        .arg("openapi")
        .env_remove("APP_ENV")
        .env("APP__SERVER__HOST", "0.0.0.0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("APP_ENV is not set") && stderr.contains("APP_ENV=production"),
        "{stderr}"
    );
    // Explicitly development, or on loopback, it starts.
    for (env, host) in [(Some("development"), "0.0.0.0"), (None, "127.0.0.1")] {
        let mut cmd = ironquill();
        cmd.arg("openapi").env("APP__SERVER__HOST", host);
        match env {
            Some(env) => cmd.env("APP_ENV", env),
            None => cmd.env_remove("APP_ENV"),
        };
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn production_refuses_a_plain_http_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("jwt.pem");
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";
    std::fs::write(&key, pem).unwrap();
    let out = ironquill()
        .arg("openapi")
        .env("APP_ENV", "production")
        .env(
            "APP__AUTH__SIGNING_KEYS",
            format!("[{{kid=\"k\",private_key_file=\"{}\"}}]", key.display()),
        )
        .env("APP__SERVER__PUBLIC_URL", "http://blog.example.com")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.public_url") && stderr.contains("https"),
        "{stderr}"
    );
}

#[test]
fn a_trusted_proxy_that_is_no_address_is_refused() {
    let out = ironquill()
        .arg("openapi")
        .env(
            "APP__SERVER__TRUSTED_PROXIES",
            "[\"10.0.0.0/8\", \"proxy.local\"]",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.trusted_proxies") && stderr.contains("proxy.local"),
        "{stderr}"
    );
}

#[test]
fn secrets_are_not_echoed_even_when_reported_above_their_key() {
    for (key, value, secret) in [
        // An all-digit client secret reads as a number; the provider is reported as a whole.
        (
            "APP__AUTH__PROVIDERS__G__CLIENT_SECRET",
            "98765432123456789",
            "98765432123456789",
        ),
        // A whole database table given as one string.
        ("APP__DATABASE", "postgres://u:hunter2@db/x", "hunter2"),
    ] {
        let mut cmd = ironquill();
        cmd.arg("openapi").env(key, value);
        if key.contains("PROVIDERS") {
            cmd.env("APP__AUTH__PROVIDERS__G__KIND", "oidc")
                .env("APP__AUTH__PROVIDERS__G__ISSUER", "https://id.example")
                .env("APP__AUTH__PROVIDERS__G__CLIENT_ID", "c");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{key}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains(secret), "{key} leaked: {stderr}");
    }
}

#[test]
fn admin_purge_prints_what_it_deleted_as_json() {
    let (_dir, url) = sqlite_file();
    let (code, _, stderr) = admin(
        &url,
        &["bootstrap", "--tenant", "acme", "--email", "a@example.com"],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, stderr) = admin(&url, &["purge"]);
    assert_eq!(code, Some(0), "{stderr}");
    let fresh: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(
        fresh,
        serde_json::json!({"audit_events": 0, "sessions": 0, "refresh_tokens": 0, "invitations": 0, "authz_changes": 0})
    );
    // With a retention of one day, the bootstrap's fresh event is kept.
    let retention = [("APP__AUDIT__RETENTION_DAYS", "1")];
    let (code, stdout, stderr) = admin_with(&url, &retention, &["purge"]);
    assert_eq!(code, Some(0), "{stderr}");
    let kept: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON");
    assert_eq!(
        kept["audit_events"], 0,
        "a day-old event is within a day's retention"
    );
}
