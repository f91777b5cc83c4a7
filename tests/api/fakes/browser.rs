//! A stand-in for the user's browser in login flows, beside the stand-ins for the providers.
use std::collections::HashMap;

use reqwest::Method;

use crate::helpers::TestApp;

/// The `Accept` of a browser navigating to a page.
pub const NAVIGATION: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// A browser: follows redirects by hand and keeps the cookies it is given. (A cookie store
/// would refuse to send `Secure` cookies over the tests' plain HTTP, as browsers do except
/// for localhost.)
#[derive(Default, Clone)]
pub struct Browser {
    pub cookies: HashMap<String, String>,
    /// Every `Set-Cookie` seen, by cookie name, as sent.
    pub set_cookies: HashMap<String, String>,
}

impl Browser {
    fn absorb(&mut self, resp: &reqwest::Response) {
        for value in resp.headers().get_all("set-cookie") {
            let raw = value.to_str().unwrap().to_owned();
            let (pair, _) = raw.split_once(';').unwrap_or((&raw, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
            self.set_cookies.insert(name.to_owned(), raw);
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn request(&mut self, app: &TestApp, method: Method, url: &str) -> reqwest::Response {
        let resp = app
            .client
            .request(method, url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.absorb(&resp);
        resp
    }

    pub async fn get(&mut self, app: &TestApp, url: &str) -> reqwest::Response {
        self.request(app, Method::GET, url).await
    }

    /// A page `path`, as the address bar or a link asks for it.
    pub async fn navigate(&mut self, app: &TestApp, path: &str) -> reqwest::Response {
        let resp = app
            .client
            .get(app.url(path))
            .header("cookie", self.cookie_header())
            .header("accept", NAVIGATION)
            .send()
            .await
            .unwrap();
        self.absorb(&resp);
        resp
    }

    /// A page's form: `fields` url-encoded, sent as a navigation. `same_origin` adds the
    /// `Origin` and `Sec-Fetch-Site` a browser sends with it (without them, only the form's
    /// CSRF field can prove where it came from).
    pub async fn submit(
        &mut self,
        app: &TestApp,
        path: &str,
        fields: &[(&str, &str)],
        same_origin: bool,
    ) -> reqwest::Response {
        let mut req = app
            .client
            .post(app.url(path))
            .header("cookie", self.cookie_header())
            .header("accept", NAVIGATION)
            .form(fields);
        if same_origin {
            req = req
                .header("origin", app.address.as_str())
                .header("sec-fetch-site", "same-origin");
        }
        let resp = req.send().await.unwrap();
        self.absorb(&resp);
        resp
    }

    pub fn csrf(&self) -> String {
        self.cookies["__Host-iq_csrf"].clone()
    }

    /// Starts a login and follows it to the provider and back to our callback URL (not yet
    /// visited), returning that URL.
    pub async fn follow_to_callback(&mut self, app: &TestApp, provider: &str) -> String {
        let start = self
            .get(app, &app.url(&format!("/auth/login/{provider}")))
            .await;
        assert_eq!(start.status(), 302, "login redirects to the provider");
        let at_provider = location(&start);
        let back = self.get(app, &at_provider).await;
        assert_eq!(back.status(), 302, "the provider redirects back");
        location(&back)
    }

    /// A whole login; returns the callback's response.
    pub async fn login(&mut self, app: &TestApp, provider: &str) -> reqwest::Response {
        let callback = self.follow_to_callback(app, provider).await;
        self.get(app, &callback).await
    }

    pub fn access(&self) -> String {
        self.cookies["__Host-iq_access"].clone()
    }

    /// An unsafe request with the session cookies, with or without the CSRF header.
    pub async fn post(&mut self, app: &TestApp, path: &str, csrf: bool) -> reqwest::Response {
        let mut req = app
            .client
            .post(app.url(path))
            .header("cookie", self.cookie_header());
        if csrf {
            req = req.header("x-csrf-token", self.cookies["__Host-iq_csrf"].clone());
        }
        let resp = req.send().await.unwrap();
        self.absorb(&resp);
        resp
    }
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}
