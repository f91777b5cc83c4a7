//! The cast of the authorization tests: tenant `acme` with one member of every role and a
//! second author, and an outsider who owns tenant `other`.
use crate::helpers::{TestApp, spawn_app};

/// Every actor, in the column order of the role matrix's expectation rows.
pub const ACTORS: [&str; 6] = ["owner", "admin", "editor", "author", "viewer", "outsider"];

pub struct Team {
    pub app: TestApp,
    keys: Vec<String>,
    /// The second author's key (another person's rows for `author`).
    pub bob: String,
    pub owner_id: String,
    pub bob_id: String,
}

impl Team {
    pub async fn new() -> Self {
        Self::of(spawn_app().await).await
    }

    /// The same cast in an app spawned by the caller (e.g. on a file-backed database).
    pub async fn of(app: TestApp) -> Self {
        let owner = app.bootstrap("acme", "owner@example.com").await;
        let admin = app.add_user("acme", "admin@example.com", "admin").await;
        let editor = app.add_user("acme", "editor@example.com", "editor").await;
        let ann = app.add_user("acme", "ann@example.com", "author").await;
        let viewer = app.add_user("acme", "viewer@example.com", "viewer").await;
        let bob = app.add_user("acme", "bob@example.com", "author").await;
        let outsider = app.bootstrap("other", "olga@example.com").await;
        Self {
            owner_id: owner.user_id.to_string(),
            bob_id: bob.user_id.to_string(),
            keys: [owner, admin, editor, ann, viewer, outsider]
                .into_iter()
                .map(|i| i.api_key)
                .collect(),
            bob: bob.api_key,
            app,
        }
    }

    /// The key of one of the [`ACTORS`] (`author` is Ann).
    pub fn key(&self, actor: &str) -> &str {
        &self.keys[ACTORS.iter().position(|a| *a == actor).unwrap()]
    }

    /// A post's current `ETag` in `acme`.
    pub async fn etag(&self, post: &str) -> String {
        self.app.etag_of(self.key("owner"), "acme", post).await
    }
}
