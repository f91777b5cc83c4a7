//! Comments, which live under their post. Who may call what is in the role matrix.
use crate::{helpers::assert_problem, team::Team};

#[tokio::test]
async fn a_comment_id_from_another_post_is_not_found() {
    let team = Team::new().await;
    let (app, bob) = (&team.app, team.bob.as_str());
    let first = app.new_published_post(bob, "acme", "first").await;
    let second = app.new_published_post(bob, "acme", "second").await;
    let cid = app.new_comment(bob, "acme", &first).await;
    let resp = app
        .delete_comment(team.key("owner"), "acme", &second, &cid)
        .await;
    assert_problem(resp, 404).await;
}
