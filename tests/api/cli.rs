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
