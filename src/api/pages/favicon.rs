//! The icon: a small SVG, served at `/favicon.svg` (what the pages link) and at `/favicon.ico`
//! (where browsers look on their own), so no first visit ends in a 404.
use poem::{Endpoint, IntoResponse, endpoint::make_sync, http::header};

const ICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
<rect width=\"32\" height=\"32\" rx=\"7\" fill=\"#1f5fbf\"/>\
<path d=\"M24.5 4.5c-7.5 1-12.6 6.8-13.6 14.6L7.5 26.8l2 .9 3.3-6.9c7.4-1.2 12.3-6.3 13.3-13.6l-4 1.9z\" fill=\"#fff\"/>\
</svg>";

/// A day: the icon changes with a release, if ever.
const CACHE: &str = "public, max-age=86400";

pub fn favicon() -> impl Endpoint + 'static {
    poem::get(make_sync(|_| {
        ICON.with_content_type("image/svg+xml")
            .with_header(header::CACHE_CONTROL, CACHE)
    }))
}
