//! `/`: what this server is, who is signed in and how to log out, or how to log in.
use poem::Request;
use poem_openapi::OpenApi;

use super::{
    ApiTags, Resource,
    pages::{self, HtmlPage},
};
use crate::state::AppState;

pub struct LandingApi {
    state: AppState,
}

impl Resource for LandingApi {
    fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[OpenApi(tag = "ApiTags::Auth")]
impl LandingApi {
    /// The start page for people: who is signed in (with buttons to log out), or how to log in.
    #[oai(path = "/", method = "get")]
    async fn landing(&self, req: &Request) -> HtmlPage {
        let visitor = pages::visitor(&self.state, req).await;
        pages::start_page(visitor.as_ref(), self.state.providers.all())
    }
}
