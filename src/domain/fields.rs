//! Validators for the text fields most resources have, so a new resource reuses them instead
//! of copying them. Each returns the value to store, or an error naming the field.
use super::{Error, Result};

/// A title: trimmed, 1–200 characters, no control characters.
pub fn title(raw: &str) -> Result<String> {
    let title = raw.trim();
    if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
        return Err(Error::invalid(
            "title",
            "must be 1 to 200 printable characters",
        ));
    }
    Ok(title.to_owned())
}

/// A slug: 1–100 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
pub fn slug(raw: &str) -> Result<String> {
    let ok = (1..=100).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !raw.starts_with('-')
        && !raw.ends_with('-');
    if !ok {
        return Err(Error::invalid(
            "slug",
            "must be 1 to 100 of a-z, 0-9 and inner hyphens",
        ));
    }
    Ok(raw.to_owned())
}

/// A long text (`body`): at most 100,000 characters, kept as written.
pub fn body(raw: &str) -> Result<String> {
    if raw.chars().count() > 100_000 {
        return Err(Error::invalid("body", "must be at most 100000 characters"));
    }
    Ok(raw.to_owned())
}

/// Whether `raw` has the characters of a slug at all (tenant or resource): lookups by slug
/// from a URL skip the database for anything else.
pub fn could_be_slug(raw: &str) -> bool {
    (1..=100).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
