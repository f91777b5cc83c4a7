use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn me_describes_the_user_the_key_and_its_membership() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "Ann@Example.com").await;
    let me: serde_json::Value = app.get_me(&owner.api_key).await.json().await.unwrap();
    assert_eq!(me["user_id"], owner.user_id.to_string());
    assert_eq!(me["email"], "ann@example.com", "stored lowercased");
    assert_eq!(me["authentication"]["method"], "api_key");
    assert_eq!(me["authentication"]["tenant"], "acme");
    assert_eq!(
        me["authentication"]["permissions"],
        json!(["read", "write"])
    );
    assert!(
        me["authentication"]["api_key_prefix"]
            .as_str()
            .unwrap()
            .starts_with("iq_")
    );
    assert!(
        owner
            .api_key
            .starts_with(me["authentication"]["api_key_prefix"].as_str().unwrap())
    );
    assert_eq!(
        me["memberships"],
        json!([{"tenant": "acme", "tenant_name": "acme", "role": "owner"}])
    );
}

#[tokio::test]
async fn a_key_sees_only_the_membership_of_its_tenant() {
    let app = spawn_app().await;
    let owner = app.bootstrap("acme", "ann@example.com").await;
    let created = app
        .create_tenant_in_session(
            &app.session_for(owner.user_id),
            &json!({"slug": "beta", "name": "Beta"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let me: serde_json::Value = app.get_me(&owner.api_key).await.json().await.unwrap();
    let tenants: Vec<&str> = me["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["acme"]);
}
