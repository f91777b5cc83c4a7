//! Browser session cookies. `__Host-` pins each to this host, `Secure` and `Path=/` (a
//! subdomain or a plain-HTTP page cannot set or overwrite them); `HttpOnly` keeps tokens away
//! from scripts; `SameSite=Strict` keeps them off cross-site requests.
use std::time::Duration;

use poem::web::cookie::{Cookie, CookieJar, SameSite};

use super::secrets::random_token;
use crate::{config::AuthSettings, error::ApiError};

pub const ACCESS: &str = "__Host-iq_access";
pub const REFRESH: &str = "__Host-iq_refresh";
/// Readable by the page's scripts, which echo it in `X-CSRF-Token` (double submit).
pub const CSRF: &str = "__Host-iq_csrf";
/// Binds a login flow to the browser that started it (login CSRF). `Lax`, because the
/// provider's redirect back to us is a cross-site navigation.
pub const LOGIN: &str = "__Host-iq_login";

fn base(
    name: &str,
    value: &str,
    max_age: Duration,
    same_site: SameSite,
    http_only: bool,
) -> Cookie {
    let mut cookie = Cookie::new_with_str(name, value);
    cookie.set_secure(true);
    cookie.set_http_only(http_only);
    cookie.set_same_site(same_site);
    cookie.set_path("/");
    cookie.set_max_age(max_age);
    cookie
}

pub fn token(name: &str, value: &str, max_age: Duration) -> Cookie {
    base(name, value, max_age, SameSite::Strict, true)
}

pub fn csrf(value: &str, max_age: Duration) -> Cookie {
    base(CSRF, value, max_age, SameSite::Strict, false)
}

pub fn login(value: &str, max_age: Duration) -> Cookie {
    base(LOGIN, value, max_age, SameSite::Lax, true)
}

/// Clears a cookie (same attributes, empty value, expired).
pub fn clear(jar: &CookieJar, name: &str) {
    let mut cookie = base(name, "", Duration::ZERO, SameSite::Strict, true);
    cookie.make_removal();
    jar.add(cookie);
}

/// Sets the session cookies for a fresh access token and refresh token, with a new CSRF token.
pub fn set_session(jar: &CookieJar, auth: &AuthSettings, access: &str, refresh: &str) {
    let refresh_ttl = auth.refresh_ttl();
    jar.add(token(ACCESS, access, auth.access_ttl()));
    jar.add(token(REFRESH, refresh, refresh_ttl));
    jar.add(csrf(&random_token(), refresh_ttl));
}

pub fn clear_session(jar: &CookieJar) {
    for name in [ACCESS, REFRESH, CSRF] {
        clear(jar, name);
    }
}

pub fn csrf_failed() -> ApiError {
    ApiError::Forbidden("CSRF check failed: send X-CSRF-Token with the CSRF cookie's value".into())
}
