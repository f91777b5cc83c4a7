//! Joining a tenant: an invitation waits for the verified holder of its address, who accepts
//! or declines it; and a provider's verified address signs in as an existing account only
//! where that provider is configured to link.
use serde_json::{Value, json};

use crate::{
    fakes::{Browser, oidc::FakeOidc},
    helpers::{TestApp, assert_problem},
    login::app_with_oidc,
};

async fn me(browser: &mut Browser, app: &TestApp) -> Value {
    browser
        .get(app, &app.url("/api/v1/me"))
        .await
        .json()
        .await
        .unwrap()
}

async fn waiting(browser: &mut Browser, app: &TestApp) -> Vec<Value> {
    let list: Value = browser
        .get(app, &app.url("/api/v1/me/invitations"))
        .await
        .json()
        .await
        .unwrap();
    list["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_verified_address_signs_in_as_its_holder_only_where_the_provider_vouches_for_it() {
    let idp = FakeOidc::start().await;
    // Linking off: the provider's say-so on an address takes over no account, and the new
    // user does not hold the address either.
    let app = app_with_oidc(&idp, json!({"link_verified_email": false})).await;
    let owner = app.bootstrap("acme", "user@example.com").await;
    let mut browser = Browser::default();
    browser.login(&app, "fake").await;
    let me_now = me(&mut browser, &app).await;
    assert_ne!(me_now["user_id"], owner.user_id.to_string());
    assert!(
        me_now["email"].is_null(),
        "the address stays with its holder"
    );
    assert_eq!(me_now["memberships"], json!([]));

    // Linking on, but only for another domain: still a new user.
    let app = app_with_oidc(
        &idp,
        json!({"link_verified_email": true, "allowed_email_domains": ["corp.example"]}),
    )
    .await;
    let owner = app.bootstrap("acme", "user@example.com").await;
    let mut browser = Browser::default();
    browser.login(&app, "fake").await;
    assert_ne!(
        me(&mut browser, &app).await["user_id"],
        owner.user_id.to_string()
    );

    // Linking on for the address's domain: the holder signs in.
    let app = app_with_oidc(
        &idp,
        json!({"link_verified_email": true, "allowed_email_domains": ["example.com"]}),
    )
    .await;
    let owner = app.bootstrap("acme", "user@example.com").await;
    let mut browser = Browser::default();
    browser.login(&app, "fake").await;
    assert_eq!(
        me(&mut browser, &app).await["user_id"],
        owner.user_id.to_string()
    );
}

/// A provider that lets its users mark any address verified (linking off) beside one trusted
/// for the company's domain: the weak one can neither take the victim's invitation nor plant
/// the address for the day the victim signs in through the trusted one.
#[tokio::test]
async fn an_untrusted_provider_can_neither_take_an_invitation_nor_plant_an_address() {
    let weak = FakeOidc::start().await;
    let strong = FakeOidc::start().await;
    let mut weak_settings = weak.settings();
    weak_settings["link_verified_email"] = json!(false);
    let mut strong_settings = strong.settings();
    strong_settings["allowed_email_domains"] = json!(["corp.example"]);
    let app = crate::helpers::spawn_app_with(move |f| {
        use figment::providers::Serialized;
        f.merge(Serialized::default("auth.providers.weak", weak_settings))
            .merge(Serialized::default(
                "auth.providers.strong",
                strong_settings,
            ))
    })
    .await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let id = app
        .new_invitation(&owner.api_key, "acme", "victim@corp.example", "admin")
        .await;

    weak.behave(|b| {
        b.subject = "attacker".into();
        b.email = Some("victim@corp.example".into());
        b.email_verified = true;
    });
    let mut attacker = Browser::default();
    assert_eq!(attacker.login(&app, "weak").await.status(), 200);
    assert_eq!(waiting(&mut attacker, &app).await, Vec::<Value>::new());
    let accept = format!("/api/v1/me/invitations/{id}/accept");
    assert_problem(attacker.post(&app, &accept, true).await, 404).await;
    let attacker_id = me(&mut attacker, &app).await["user_id"].clone();

    strong.behave(|b| {
        b.subject = "victim".into();
        b.email = Some("victim@corp.example".into());
        b.email_verified = true;
    });
    let mut victim = Browser::default();
    assert_eq!(victim.login(&app, "strong").await.status(), 200);
    let victim_me = me(&mut victim, &app).await;
    assert_ne!(
        victim_me["user_id"], attacker_id,
        "not the attacker's account"
    );
    assert_eq!(victim_me["email"], "victim@corp.example");
    assert_eq!(victim.post(&app, &accept, true).await.status(), 200);
}

#[tokio::test]
async fn an_invitation_is_answered_only_by_the_verified_holder_of_its_address() {
    let idp = FakeOidc::start().await;
    let app = app_with_oidc(&idp, json!({})).await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let id = app
        .new_invitation(&owner.api_key, "acme", "new@example.com", "author")
        .await;

    idp.behave(|b| {
        b.subject = "unverified-person".into();
        b.email = Some("new@example.com".into());
        b.email_verified = false;
    });
    let mut impostor = Browser::default();
    assert_eq!(impostor.login(&app, "fake").await.status(), 200);
    assert_eq!(waiting(&mut impostor, &app).await, Vec::<Value>::new());
    let accept = format!("/api/v1/me/invitations/{id}/accept");
    assert_problem(impostor.post(&app, &accept, true).await, 404).await;
    assert_eq!(me(&mut impostor, &app).await["memberships"], json!([]));

    idp.behave(|b| {
        b.subject = "verified-person".into();
        b.email_verified = true;
    });
    let mut invitee = Browser::default();
    assert_eq!(invitee.login(&app, "fake").await.status(), 200);
    let items = waiting(&mut invitee, &app).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["tenant"], "acme");
    assert_eq!(items[0]["role"], "author");
    // Signing in enrols nobody: not a member until accepted.
    let posts = app.url("/api/v1/tenants/acme/posts");
    assert_eq!(invitee.get(&app, &posts).await.status(), 404);
    // Accepting, like any cookie-authenticated write, needs CSRF proof.
    assert_problem(invitee.post(&app, &accept, false).await, 403).await;
    let resp = invitee.post(&app, &accept, true).await;
    assert_eq!(resp.status(), 200);
    let joined: Value = resp.json().await.unwrap();
    assert_eq!(joined, json!({"tenant": "acme", "role": "author"}));
    assert_eq!(invitee.get(&app, &posts).await.status(), 200);
    assert_eq!(waiting(&mut invitee, &app).await, Vec::<Value>::new());
    assert_problem(invitee.post(&app, &accept, true).await, 404).await;
}

#[tokio::test]
async fn a_declined_invitation_is_gone_and_an_expired_one_cannot_be_accepted() {
    let idp = FakeOidc::start().await;
    let app = app_with_oidc(&idp, json!({})).await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let declined = app
        .new_invitation(&owner.api_key, "acme", "user@example.com", "viewer")
        .await;
    let mut browser = Browser::default();
    browser.login(&app, "fake").await;
    let decline = format!("/api/v1/me/invitations/{declined}/decline");
    assert_eq!(browser.post(&app, &decline, true).await.status(), 204);
    assert_eq!(waiting(&mut browser, &app).await, Vec::<Value>::new());
    let pending: Value = app
        .get_with_key("/api/v1/tenants/acme/invitations", &owner.api_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pending["items"], json!([]));

    let expired = app
        .new_invitation(&owner.api_key, "acme", "user@example.com", "viewer")
        .await;
    {
        use ironquill::db::entities::invitation;
        use sea_orm::{ActiveModelTrait, Set};
        invitation::ActiveModel {
            id: Set(expired.parse().unwrap()),
            expires_at: Set(chrono::Utc::now() - chrono::Duration::seconds(1)),
            ..Default::default()
        }
        .update(&app.db)
        .await
        .unwrap();
    }
    assert_eq!(waiting(&mut browser, &app).await, Vec::<Value>::new());
    let accept = format!("/api/v1/me/invitations/{expired}/accept");
    assert_problem(browser.post(&app, &accept, true).await, 404).await;
}

#[tokio::test]
async fn an_address_verified_later_is_adopted_and_then_sees_its_invitations() {
    let idp = FakeOidc::start().await;
    let app = app_with_oidc(&idp, json!({})).await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    idp.behave(|b| {
        b.email = Some("later@example.com".into());
        b.email_verified = false;
    });
    let mut browser = Browser::default();
    browser.login(&app, "fake").await;
    let before = me(&mut browser, &app).await;
    assert!(before["email"].is_null());
    app.new_invitation(&owner.api_key, "acme", "later@example.com", "viewer")
        .await;

    idp.behave(|b| b.email_verified = true);
    let mut again = Browser::default();
    again.login(&app, "fake").await;
    let after = me(&mut again, &app).await;
    assert_eq!(after["user_id"], before["user_id"], "the same user");
    assert_eq!(after["email"], "later@example.com");
    let items = waiting(&mut again, &app).await;
    assert_eq!(items.len(), 1);
    let id = items[0]["id"].as_str().unwrap();
    let accept = format!("/api/v1/me/invitations/{id}/accept");
    assert_eq!(again.post(&app, &accept, true).await.status(), 200);
    assert_eq!(
        me(&mut again, &app).await["memberships"][0]["tenant"],
        "acme"
    );
}

#[tokio::test]
async fn an_api_key_answers_no_invitation() {
    let idp = FakeOidc::start().await;
    let app = app_with_oidc(&idp, json!({})).await;
    let owner = app.bootstrap("acme", "owner@example.com").await;
    let other = app.bootstrap("beta", "user@example.com").await;
    let id = app
        .new_invitation(&owner.api_key, "acme", "user@example.com", "viewer")
        .await;
    // The invitee's own key, bound to beta: it acts in beta only.
    assert_problem(
        app.get_with_key("/api/v1/me/invitations", &other.api_key)
            .await,
        403,
    )
    .await;
    let accept = format!("/api/v1/me/invitations/{id}/accept");
    assert_problem(
        app.post_json_with_key(&accept, &other.api_key, &json!({}))
            .await,
        403,
    )
    .await;
}
