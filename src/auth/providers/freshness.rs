//! How long a provider's discovery document and signing keys are trusted before they are
//! fetched again: what the provider's `Cache-Control: max-age` says (less any `Age` a cache
//! in between added), kept within bounds so a provider can neither make us fetch on every
//! login nor make us trust a withdrawn key for days.
use std::{sync::Mutex, time::Duration};

use openidconnect::{
    AsyncHttpClient, HttpRequest,
    http::{HeaderMap, header},
};

use super::outbound::{OutboundError, ProviderHttp, Sending};
use crate::config::OidcProviderSettings;

/// The bounds, from the provider's settings.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub min: Duration,
    pub max: Duration,
    /// When the provider says nothing.
    pub default: Duration,
}

impl From<&OidcProviderSettings> for Bounds {
    fn from(s: &OidcProviderSettings) -> Self {
        Self {
            min: Duration::from_secs(s.refresh_min_secs),
            max: Duration::from_secs(s.refresh_max_secs),
            default: Duration::from_secs(s.refresh_default_secs),
        }
    }
}

impl Bounds {
    /// How long an answer with these headers stays fresh.
    pub fn lifetime(&self, headers: &HeaderMap) -> Duration {
        let lifetime = match max_age(headers) {
            Some(max_age) => max_age.saturating_sub(age(headers)),
            None => self.default,
        };
        self.clamp(lifetime)
    }

    fn clamp(&self, lifetime: Duration) -> Duration {
        // `max` below `min` is refused by configuration; never panic on it here.
        lifetime.clamp(self.min, self.max.max(self.min))
    }
}

/// Sends through the provider client and keeps the shortest lifetime of the answers, so what
/// `openidconnect` fetches (discovery, then keys) expires with the first of them to go stale.
pub struct Observed<'a> {
    http: &'a ProviderHttp,
    bounds: Bounds,
    shortest: Mutex<Option<Duration>>,
}

impl<'a> Observed<'a> {
    pub fn new(http: &'a ProviderHttp, bounds: Bounds) -> Self {
        Self {
            http,
            bounds,
            shortest: Mutex::new(None),
        }
    }

    /// The shortest lifetime seen (the default bound if nothing was fetched).
    pub fn lifetime(&self) -> Duration {
        self.shortest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unwrap_or_else(|| self.bounds.clamp(self.bounds.default))
    }

    fn observe(&self, headers: &HeaderMap) {
        let lifetime = self.bounds.lifetime(headers);
        let mut shortest = self
            .shortest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *shortest = Some(shortest.map_or(lifetime, |s| s.min(lifetime)));
    }
}

impl<'c> AsyncHttpClient<'c> for Observed<'_> {
    type Error = OutboundError;
    type Future = Sending<'c>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.http.send(request).await?;
            self.observe(response.headers());
            Ok(response)
        })
    }
}

/// `max-age` from every `Cache-Control` field; `no-cache` and `no-store` count as zero (fetch
/// as often as the bounds allow).
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for directive in headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim().to_ascii_lowercase();
        let secs = match name.as_str() {
            "no-cache" | "no-store" => Some(0),
            "max-age" => value.trim().trim_matches('"').parse::<u64>().ok(),
            _ => None,
        };
        if let Some(secs) = secs {
            // Conflicting directives: the more cautious one wins.
            found = Some(found.map_or(secs, |f: u64| f.min(secs)));
        }
    }
    found.map(Duration::from_secs)
}

fn age(headers: &HeaderMap) -> Duration {
    headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        min: Duration::from_secs(300),
        max: Duration::from_secs(86_400),
        default: Duration::from_secs(3600),
    };

    fn lifetime(fields: &[(&str, &str)]) -> u64 {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        BOUNDS.lifetime(&headers).as_secs()
    }

    #[test]
    fn max_age_is_followed_within_the_bounds() {
        assert_eq!(lifetime(&[("cache-control", "max-age=7200")]), 7200);
        assert_eq!(
            lifetime(&[(
                "cache-control",
                "public, max-age=23151, must-revalidate, no-transform"
            )]),
            23151
        );
        assert_eq!(lifetime(&[("cache-control", "MAX-AGE=\"900\"")]), 900);
    }

    #[test]
    fn too_short_or_too_long_a_max_age_is_clamped() {
        assert_eq!(lifetime(&[("cache-control", "max-age=5")]), 300);
        assert_eq!(lifetime(&[("cache-control", "max-age=0")]), 300);
        assert_eq!(lifetime(&[("cache-control", "no-store")]), 300);
        assert_eq!(lifetime(&[("cache-control", "max-age=31536000")]), 86_400);
    }

    #[test]
    fn the_default_applies_when_the_provider_says_nothing_usable() {
        assert_eq!(lifetime(&[]), 3600);
        assert_eq!(lifetime(&[("cache-control", "public")]), 3600);
        assert_eq!(lifetime(&[("cache-control", "max-age=soon")]), 3600);
    }

    #[test]
    fn time_spent_in_a_cache_is_subtracted() {
        assert_eq!(
            lifetime(&[("cache-control", "max-age=7200"), ("age", "3600")]),
            3600
        );
        assert_eq!(
            lifetime(&[("cache-control", "max-age=7200"), ("age", "7100")]),
            300
        );
    }

    #[test]
    fn of_conflicting_directives_the_shorter_wins() {
        assert_eq!(
            lifetime(&[
                ("cache-control", "max-age=7200"),
                ("cache-control", "max-age=600")
            ]),
            600
        );
        assert_eq!(
            lifetime(&[("cache-control", "max-age=7200, no-cache")]),
            300
        );
    }
}
