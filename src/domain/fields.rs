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

/// Text from elsewhere (a provider's name for the user, its error message) made safe to show:
/// trimmed, at most `max_chars` characters, without control characters (Cc, incl. newlines)
/// and without the invisible formatting characters that can disguise text: bidirectional
/// embeddings, overrides and isolates (which can reorder what follows them on a page),
/// zero-width spaces and joiners, direction marks, the line and paragraph separators and the
/// byte order mark.
pub fn printable(raw: &str, max_chars: usize) -> String {
    let visible: String = raw.chars().filter(|&c| !invisible(c)).collect();
    let kept: String = visible.trim().chars().take(max_chars).collect();
    kept.trim_end().to_owned()
}

fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_drops_control_and_invisible_formatting_characters() {
        assert_eq!(
            printable("  Ada\u{0}\n Lovelace\u{7f} ", 200),
            "Ada Lovelace"
        );
        // Bidi overrides and isolates, zero-width characters, marks and the BOM.
        let disguised =
            "\u{202E}evil\u{202C}\u{2066}x\u{2069}\u{200B}\u{200D}\u{200E}\u{FEFF}\u{2028}\u{061C}";
        assert_eq!(printable(disguised, 200), "evilx");
        assert_eq!(printable("Zoë Ñúñez 李小龍", 200), "Zoë Ñúñez 李小龍");
        assert_eq!(printable("\u{200B}\u{202E} \t", 200), "");
    }

    #[test]
    fn printable_keeps_at_most_max_chars_characters() {
        let long = "é".repeat(300);
        assert_eq!(printable(&long, 200).chars().count(), 200);
        assert_eq!(printable("ab  cd", 3), "ab");
    }
}
