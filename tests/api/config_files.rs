//! The binary carries its configuration: copied alone anywhere it serves with the built-in
//! defaults; files in `APP_CONFIG_DIR` override them; a configured directory that is missing
//! is an error naming it.
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The binary, run from `dir` with nothing of the developer's environment that configures it.
fn ironquill_in(binary: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(binary);
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("PORT")
        .env_remove("APP_ENV")
        .env_remove("APP_CONFIG_DIR")
        .env_remove("RUST_LOG");
    cmd
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_binary_copied_alone_to_another_directory_serves_with_its_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("ironquill");
    std::fs::copy(env!("CARGO_BIN_EXE_ironquill"), &binary).unwrap();
    let port = free_port();
    let server = ironquill_in(&binary, dir.path())
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = KillOnDrop(server);
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut healthy = false;
    for _ in 0..150 {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("the server stopped: {status}");
        }
        if let Ok(resp) = client.get(format!("{base}/healthz")).send().await {
            healthy = resp.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "the server answered /healthz");
    // The built-in policy was loaded: the document names the roles of each tenant route.
    let spec: serde_json::Value = client
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        spec["paths"]["/api/v1/tenants/{tenant}/members"]["get"]["x-roles"],
        serde_json::json!(["owner", "admin"])
    );
    // The development database was created beside it, as the built-in default says.
    assert!(dir.path().join("data/ironquill.db").exists());
}

#[test]
fn a_missing_config_directory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-config");
    let out = ironquill_in(Path::new(env!("CARGO_BIN_EXE_ironquill")), dir.path())
        .env("APP_ENV", "test")
        .env("APP_CONFIG_DIR", &missing)
        .arg("openapi")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("APP_CONFIG_DIR") && stderr.contains(&*missing.to_string_lossy()),
        "{stderr}"
    );
}

#[test]
fn files_in_the_config_directory_override_the_built_in_ones() {
    let dir = tempfile::tempdir().unwrap();
    let run = |config: &Path| {
        ironquill_in(Path::new(env!("CARGO_BIN_EXE_ironquill")), dir.path())
            .env("APP_ENV", "test")
            .env("APP_CONFIG_DIR", config)
            .arg("openapi")
            .output()
            .unwrap()
    };
    // An empty directory overrides nothing.
    let empty = tempfile::tempdir().unwrap();
    assert!(run(empty.path()).status.success());
    // A policy file in it replaces the built-in policy: a typo there stops the start.
    let typo = tempfile::tempdir().unwrap();
    std::fs::write(typo.path().join("policy.csv"), "p, viewer, posts, reed\n").unwrap();
    let out = run(typo.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown permission posts:reed"), "{stderr}");
    // A settings file is merged over the built-in one, key by key.
    let settings = tempfile::tempdir().unwrap();
    std::fs::write(
        settings.path().join("test.toml"),
        "[server]\nbody_limit_bytes = 0\n",
    )
    .unwrap();
    let out = run(settings.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.body_limit_bytes must be greater than 0"),
        "{stderr}"
    );
}

#[test]
fn an_overridden_policy_is_announced_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/policy.csv")).unwrap();
    std::fs::write(
        config.join("policy.csv"),
        format!("{shipped}\n# a local change\n"),
    )
    .unwrap();
    let run = |config_dir: &Path| {
        ironquill_in(Path::new(env!("CARGO_BIN_EXE_ironquill")), dir.path())
            .env("APP_ENV", "test")
            .env("APP_CONFIG_DIR", config_dir)
            .env(
                "APP__DATABASE__URL",
                format!("sqlite://{}?mode=rwc", dir.path().join("iq.db").display()),
            )
            .args([
                "admin",
                "bootstrap",
                "--tenant",
                "acme",
                "--email",
                "a@example.com",
            ])
            .output()
            .unwrap()
    };
    let out = run(&config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("authorization policy overridden by a file")
            && stderr.contains("policy.csv"),
        "{stderr}"
    );
    // The repository's own files, identical to the built-in ones, are not worth a warning.
    let out = run(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config")));
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("overridden"));
}
