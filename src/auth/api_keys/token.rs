//! The API key format: `iq_<lookup>_<secret><checksum>`, all lowercase base32 after `iq_`.
//!
//! - `iq_` is fixed so secret scanners (and people) recognise a leaked key.
//! - `lookup` (16 chars, 80 random bits) is not secret: it finds the row, and is shown in lists.
//! - `secret` (52 chars) is 256 bits from the OS CSPRNG.
//! - `checksum` (7 chars) is a CRC32 of everything before it, so a typo or truncated key is
//!   refused without touching the database, and scanners can confirm a match offline.
//!
//! Only a SHA-256 of the whole key is stored. A fast hash is right here: with 256 random bits
//! there is nothing to brute-force, unlike a password.
use crate::auth::secrets;
use data_encoding::BASE32_DNSSEC;
use secrecy::SecretString;
use subtle::ConstantTimeEq;

pub const PREFIX: &str = "iq_";
const LOOKUP_BYTES: usize = 10;
const LOOKUP_LEN: usize = 16;
const SECRET_BYTES: usize = 32;
const SECRET_LEN: usize = 52;
const CHECKSUM_LEN: usize = 7;
/// `iq_` + lookup + `_` + secret + checksum.
pub const KEY_LEN: usize = PREFIX.len() + LOOKUP_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

/// A syntactically valid key, checksum verified. Holds the secret, so it redacts itself.
/// A well-formed key, borrowed from the request (no copy of the secret is made).
pub struct ParsedKey<'a> {
    lookup_id: &'a str,
    full: &'a str,
}

impl std::fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedKey")
            .field("lookup_id", &self.lookup_id)
            .finish_non_exhaustive()
    }
}

/// Why a string is not a key. Never shown to clients (they only see 401).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("wrong length")]
    Length,
    #[error("wrong prefix")]
    Prefix,
    #[error("invalid characters")]
    Alphabet,
    #[error("checksum mismatch")]
    Checksum,
}

/// A newly generated key: the secret to show once, and what to store.
pub struct NewKey {
    pub secret: SecretString,
    pub lookup_id: String,
    pub hash: String,
}

fn checksum(body: &str) -> String {
    BASE32_DNSSEC.encode(&crc32fast::hash(body.as_bytes()).to_be_bytes())
}

/// Generates a fresh key from the OS CSPRNG.
pub fn generate() -> NewKey {
    let lookup_id = BASE32_DNSSEC.encode(&secrets::random_bytes::<LOOKUP_BYTES>());
    let secret = BASE32_DNSSEC.encode(&secrets::random_bytes::<SECRET_BYTES>());
    let body = format!("{PREFIX}{lookup_id}_{secret}");
    let full = format!("{body}{}", checksum(&body));
    debug_assert_eq!(full.len(), KEY_LEN);
    NewKey {
        hash: hash(&full),
        lookup_id,
        secret: full.into(),
    }
}

/// Checks shape and checksum; no database involved.
pub fn parse(candidate: &str) -> Result<ParsedKey<'_>, KeyFormatError> {
    // ASCII first: the fixed-position slicing below must never split a UTF-8 character.
    if !candidate.is_ascii() {
        return Err(KeyFormatError::Alphabet);
    }
    if candidate.len() != KEY_LEN {
        return Err(KeyFormatError::Length);
    }
    if !candidate.starts_with(PREFIX) {
        return Err(KeyFormatError::Prefix);
    }
    let rest = &candidate[PREFIX.len()..];
    let lookup = &rest[..LOOKUP_LEN];
    if rest.as_bytes()[LOOKUP_LEN] != b'_' {
        return Err(KeyFormatError::Alphabet);
    }
    let secret_and_sum = &rest[LOOKUP_LEN + 1..];
    let in_alphabet = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b))
    };
    if !in_alphabet(lookup) || !in_alphabet(secret_and_sum) {
        return Err(KeyFormatError::Alphabet);
    }
    let (body, sum) = candidate.split_at(KEY_LEN - CHECKSUM_LEN);
    let mut expected = [0u8; CHECKSUM_LEN];
    BASE32_DNSSEC.encode_mut(
        &crc32fast::hash(body.as_bytes()).to_be_bytes(),
        &mut expected,
    );
    if !bool::from(expected.ct_eq(sum.as_bytes())) {
        return Err(KeyFormatError::Checksum);
    }
    Ok(ParsedKey {
        lookup_id: lookup,
        full: candidate,
    })
}

/// The stored form of a key: hex SHA-256 of the whole key.
pub fn hash(full_key: &str) -> String {
    secrets::sha256_hex(full_key)
}

impl ParsedKey<'_> {
    pub fn lookup_id(&self) -> &str {
        self.lookup_id
    }

    pub fn hash(&self) -> String {
        hash(self.full)
    }

    /// Whether this key hashes to `stored` (a stored hash), compared in constant time.
    pub fn hash_matches(&self, stored: &str) -> bool {
        secrets::sha256_hex_matches(self.full, stored)
    }
}

/// The non-secret part shown in listings: `iq_<lookup>`.
pub fn display_prefix(lookup_id: &str) -> String {
    format!("{PREFIX}{lookup_id}")
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn generated_keys_parse_and_hash_to_the_stored_hash() {
        let key = generate();
        let parsed = parse(key.secret.expose_secret()).unwrap();
        assert_eq!(parsed.lookup_id(), key.lookup_id);
        assert_eq!(parsed.hash(), key.hash);
        assert!(parsed.hash_matches(&key.hash));
        assert!(!parsed.hash_matches(&generate().hash), "another key's hash");
        assert!(!parsed.hash_matches(&key.hash[..63]), "a truncated hash");
        assert!(!parsed.hash_matches(""));
        assert!(key.secret.expose_secret().starts_with("iq_"));
        assert_eq!(key.secret.expose_secret().len(), KEY_LEN);
    }

    #[test]
    fn two_keys_differ() {
        assert_ne!(
            generate().secret.expose_secret(),
            generate().secret.expose_secret()
        );
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let key = generate();
        let s = key.secret.expose_secret();
        let pos = PREFIX.len() + LOOKUP_LEN + 10;
        let replacement = if &s[pos..=pos] == "a" { "b" } else { "a" };
        let typo = format!("{}{}{}", &s[..pos], replacement, &s[pos + 1..]);
        assert_eq!(parse(&typo).unwrap_err(), KeyFormatError::Checksum);
    }

    #[test]
    fn truncated_wrong_prefix_and_bad_alphabet_are_refused() {
        let key = generate();
        let s = key.secret.expose_secret();
        assert_eq!(
            parse(&s[..s.len() - 1]).unwrap_err(),
            KeyFormatError::Length
        );
        assert_eq!(
            parse(&format!("xx_{}", &s[3..])).unwrap_err(),
            KeyFormatError::Prefix
        );
        assert_eq!(
            parse(&s.to_uppercase()).unwrap_err(),
            KeyFormatError::Prefix
        );
        let upper_body = format!("iq_{}", s[3..].to_uppercase());
        assert_eq!(parse(&upper_body).unwrap_err(), KeyFormatError::Alphabet);
    }

    #[test]
    fn non_ascii_input_of_the_right_byte_length_is_refused_without_panicking() {
        let key = generate();
        let s = key.secret.expose_secret();
        // 'é' is two bytes: drop one ASCII char so the byte length stays KEY_LEN.
        let tricky = format!("{}é{}", &s[..18], &s[20..]);
        assert_eq!(tricky.len(), KEY_LEN);
        assert_eq!(parse(&tricky).unwrap_err(), KeyFormatError::Alphabet);
    }

    #[test]
    fn debug_output_never_contains_the_secret() {
        let key = generate();
        let parsed = parse(key.secret.expose_secret()).unwrap();
        let debug = format!("{parsed:?} {:?}", key.secret);
        assert!(!debug.contains(&key.secret.expose_secret()[20..]));
    }
}
