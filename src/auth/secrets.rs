//! The few primitives every credential here is made of: OS randomness, SHA-256 for storing
//! high-entropy secrets (nothing to brute-force, so no slow hash is needed), and constant-time
//! comparison.
use data_encoding::{BASE32_DNSSEC, HEXLOWER};
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // Failing to read the OS generator is not recoverable, and must not be papered over.
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the operating system's random number generator failed");
    bytes
}

/// 256 random bits as lowercase base32 (URL- and cookie-safe).
pub fn random_token() -> String {
    BASE32_DNSSEC.encode(&random_bytes::<32>())
}

/// The stored form of a secret: hex SHA-256.
pub fn sha256_hex(secret: &str) -> String {
    HEXLOWER.encode(&Sha256::digest(secret.as_bytes()))
}

/// Whether `expected` is [`sha256_hex`] of `secret`, compared in constant time (the digest is
/// written on the stack: this runs on every request with an API key).
pub fn sha256_hex_matches(secret: &str, expected: &str) -> bool {
    let mut hex = [0u8; 64];
    HEXLOWER.encode_mut(&Sha256::digest(secret.as_bytes()), &mut hex);
    bool::from(hex.as_slice().ct_eq(expected.as_bytes()))
}

/// Constant-time equality of two strings (of public length).
pub fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
