//! `JsonReply<T>`: a JSON response body written straight from `T`, documented by `T`'s
//! poem-openapi schema.
//!
//! poem-openapi's own `Json` first builds a `serde_json::Value` tree of the whole body (a copy
//! of every string, a map per object) and then writes that. For the list pages on the hot path
//! that copy costs more than the rest of the serialisation. `T` must write exactly what its
//! schema says: [`rfc3339`] and [`rfc3339_opt`] write dates as poem-openapi does, and
//! each type used here has a test comparing both (`assert_same_json`).
//!
//! The body is written by [`WriteJson`], not by a serde serializer: a list page is a few
//! thousand fields, and serde's generic path cost ~250 instructions per field where copying a
//! field's name is a few. Free text is escaped by sonic-rs (32 bytes at a time, where
//! serde_json looks at every byte); UUIDs, dates and numbers never need escaping and are
//! copied. Every implementation is held to serde_json's bytes for the same value by a test
//! ([`assert_same_json`]), so the `Serialize` derive stays the reference.
use std::borrow::Cow;

use chrono::{DateTime, Datelike, Timelike, Utc};
use poem::{IntoResponse, Response};
use poem_openapi::{
    ApiResponse,
    payload::Payload,
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::Type,
};
use serde::Serializer;

pub struct JsonReply<T>(pub T);

/// What every `JsonReply` is sent as.
const CONTENT_TYPE: &str = "application/json; charset=utf-8";

impl<T: Type> Payload for JsonReply<T> {
    const CONTENT_TYPE: &'static str = CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        content_type.starts_with("application/json")
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// Where a body's buffer starts: a page of 20 posts is 12–16 KiB, and the writer reserves six
/// times a string's length before escaping it (its worst case), so a 16 KiB buffer would be
/// copied into a larger one near the end of most pages.
const INITIAL_BODY: usize = 24 * 1024;

impl<T: WriteJson + Send> IntoResponse for JsonReply<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(INITIAL_BODY);
        match self.0.write_json(&mut body) {
            Ok(()) => Response::builder().content_type(CONTENT_TYPE).body(body),
            // Only a writer that fails on its own gets here (writing into a `Vec` cannot fail):
            // a bug, answered as poem's `Json` answers it.
            Err(err) => Response::builder()
                .status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
                .body(err.to_string()),
        }
    }
}

impl<T: Type + WriteJson + Send> ApiResponse for JsonReply<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// A reply body that writes itself as JSON, as its `Serialize` derive would (tested).
pub trait WriteJson {
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), sonic_rs::Error>;
}

/// The pieces a [`WriteJson`] is made of.
pub mod write {
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    /// Punctuation and field names, as they are: `,"title":`.
    pub fn raw(out: &mut Vec<u8>, json: &str) {
        out.extend_from_slice(json.as_bytes());
    }

    /// Free text, quoted and escaped.
    pub fn text(out: &mut Vec<u8>, text: &str) -> Result<(), sonic_rs::Error> {
        sonic_rs::to_writer(out, text)
    }

    /// A UUID, hyphenated in lower case (hex digits and hyphens: nothing to escape), quoted.
    pub fn uuid(out: &mut Vec<u8>, id: &Uuid) {
        let (high, low) = id.as_u64_pair();
        let (a, b) = (super::hex16(high), super::hex16(low));
        let mut text = *b"\"00000000-0000-0000-0000-000000000000\"";
        text[1..9].copy_from_slice(&a[..8]);
        text[10..14].copy_from_slice(&a[8..12]);
        text[15..19].copy_from_slice(&a[12..]);
        text[20..24].copy_from_slice(&b[..4]);
        text[25..37].copy_from_slice(&b[4..]);
        out.extend_from_slice(&text);
    }

    /// A date-time as [`super::rfc3339`] writes it (digits and `-:.T+`: nothing to escape).
    pub fn date(out: &mut Vec<u8>, at: &DateTime<Utc>) {
        let mut buf = [0u8; super::RFC3339_MAX];
        out.push(b'"');
        match super::rfc3339_bytes(at, &mut buf) {
            Some(text) => out.extend_from_slice(text),
            None => raw(out, &at.to_rfc3339()),
        }
        out.push(b'"');
    }

    /// A date-time or `null`.
    pub fn optional_date(out: &mut Vec<u8>, at: &Option<DateTime<Utc>>) {
        match at {
            Some(at) => date(out, at),
            None => raw(out, "null"),
        }
    }

    /// An integer.
    pub fn int(out: &mut Vec<u8>, n: impl itoa::Integer) {
        raw(out, itoa::Buffer::new().format(n));
    }
}

/// A date-time as poem-openapi writes it (`to_rfc3339`, `+00:00`), for `serialize_with`.
pub fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; RFC3339_MAX];
    serializer.serialize_str(&rfc3339_text(at, &mut buf))
}

/// `at.to_rfc3339()`: written into `buf` where [`write_rfc3339`] can, by chrono otherwise.
fn rfc3339_text<'b>(at: &DateTime<Utc>, buf: &'b mut [u8; RFC3339_MAX]) -> Cow<'b, str> {
    match write_rfc3339(at, buf) {
        Some(text) => Cow::Borrowed(text),
        None => Cow::Owned(at.to_rfc3339()),
    }
}

/// The longest text [`write_rfc3339`] writes: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+00:00`.
const RFC3339_MAX: usize = 35;

/// `at.to_rfc3339()` written into `buf` without an allocation or chrono's formatter, which
/// were a tenth of a list page's CPU: the same text (fraction of 0, 3, 6 or 9 digits, as
/// chrono's `AutoSi`), for years 0 to 9999 outside leap seconds; `None` otherwise.
fn write_rfc3339<'b>(at: &DateTime<Utc>, buf: &'b mut [u8; RFC3339_MAX]) -> Option<&'b str> {
    std::str::from_utf8(rfc3339_bytes(at, buf)?).ok()
}

/// [`write_rfc3339`]'s text as bytes (all ASCII), for a writer that needs no `str`.
fn rfc3339_bytes<'b>(at: &DateTime<Utc>, buf: &'b mut [u8; RFC3339_MAX]) -> Option<&'b [u8]> {
    // The fields from the naive UTC time: each accessor of a `DateTime` adds its offset first.
    let at = at.naive_utc();
    let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = at.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let (fraction, width) = match nanos {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (n / 1_000_000, 3),
        n if n % 1_000 == 0 => (n / 1_000, 6),
        n => (n, 9),
    };
    *buf = *b"0000-00-00T00:00:00.000000000+00:00";
    decimal(&mut buf[0..4], year);
    decimal(&mut buf[5..7], at.month());
    decimal(&mut buf[8..10], at.day());
    decimal(&mut buf[11..13], at.hour());
    decimal(&mut buf[14..16], at.minute());
    decimal(&mut buf[17..19], at.second());
    // `.` and the fraction when there is one, then the offset.
    let end = if width == 0 {
        19
    } else {
        decimal(&mut buf[20..20 + width], fraction);
        20 + width
    };
    buf.copy_within(29..35, end);
    Some(&buf[..end + 6])
}

/// `value` in decimal filling `out` (zero-padded; higher digits dropped), two digits at a time.
fn decimal(out: &mut [u8], mut value: u32) {
    debug_assert!(
        u64::from(value) < 10u64.pow(out.len() as u32),
        "{value} in {} digits",
        out.len()
    );
    const PAIRS: &[u8; 200] = b"\
        0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut end = out.len();
    while end >= 2 {
        let pair = (value % 100) as usize * 2;
        out[end - 2..end].copy_from_slice(&PAIRS[pair..pair + 2]);
        value /= 100;
        end -= 2;
    }
    if end == 1 {
        out[0] = b'0' + (value % 10) as u8;
    }
}

/// The 16 lower-case hex digits of `value`, most significant first: each nibble spread to a
/// byte of its own, then all eight bytes of a half turned to digits at once.
fn hex16(value: u64) -> [u8; 16] {
    fn half(value: u32) -> [u8; 8] {
        let mut x = u64::from(value);
        x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
        x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
        x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        // 0x01 in each byte whose nibble is 10 or more: those skip from '9' to 'a' (39 on).
        let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
        (x + 0x3030_3030_3030_3030 + letters * 39).to_be_bytes()
    }
    let mut digits = [0u8; 16];
    digits[..8].copy_from_slice(&half((value >> 32) as u32));
    digits[8..].copy_from_slice(&half(value as u32));
    digits
}

/// An optional date-time as poem-openapi writes it: the date, or `null`.
pub fn rfc3339_opt<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => rfc3339(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// Asserts that [`WriteJson`] writes `value` byte for byte as serde_json writes its
/// `Serialize` derive, and that this is what its poem-openapi schema type says.
#[cfg(test)]
pub fn assert_same_json<T: WriteJson + serde::Serialize + poem_openapi::types::ToJSON>(value: &T) {
    let mut written = Vec::new();
    value.write_json(&mut written).expect("written");
    assert_eq!(
        String::from_utf8_lossy(&written),
        serde_json::to_string(value).expect("serde_json")
    );
    let by_serde: serde_json::Value = serde_json::from_slice(&written).expect("valid JSON");
    let by_schema = value.to_json().expect("poem-openapi");
    assert_eq!(by_serde, by_schema);
}

/// Date-times across the range the API stores, with every fraction width chrono chooses:
/// shared by the tests of this writer and of the inline reader's parser.
#[cfg(test)]
pub fn sample_times() -> Vec<DateTime<Utc>> {
    let mut times = Vec::new();
    // A fixed LCG: the same sample on every run, spread over 1970–2200.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..4000u32 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let secs = (state >> 1) as i64 % 7_258_118_400;
        let nanos = match i % 5 {
            0 => 0,
            1 => (state as u32 % 1000) * 1_000_000,
            2 => (state as u32 % 1_000_000) * 1_000,
            3 => state as u32 % 1_000_000_000,
            _ => 999_999_999,
        };
        times.extend(DateTime::from_timestamp(secs, nanos));
    }
    times.extend(DateTime::from_timestamp(0, 0));
    times.extend(DateTime::from_timestamp(-62_167_219_200, 1_000)); // year 0
    times
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    #[derive(serde::Serialize)]
    struct At(#[serde(serialize_with = "rfc3339")] DateTime<Utc>);

    fn written(at: DateTime<Utc>) -> String {
        serde_json::to_string(&At(at)).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        // Every ASCII character, at every offset against the writer's 32-byte blocks, and
        // text beyond ASCII (U+2028 and U+FFFF are left as they are by both).
        let ascii: String = (0u8..0x80).map(char::from).collect();
        let mut samples = vec![ascii.clone(), "é\u{2028}\u{ffff}😀\"\\".into()];
        for offset in 0..40 {
            samples.push(format!(
                "{}{ascii}{}",
                "x".repeat(offset),
                "y".repeat(offset)
            ));
        }
        for text in samples {
            let written = sonic_rs::to_vec(&text).unwrap();
            assert_eq!(written, serde_json::to_vec(&text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn dates_are_written_as_chrono_writes_them() {
        for at in sample_times() {
            assert_eq!(written(at), format!("\"{}\"", at.to_rfc3339()), "{at:?}");
        }
    }

    #[test]
    fn the_writer_puts_dates_and_uuids_as_serde_json_does() {
        let far = DateTime::from_timestamp(253_402_300_800, 5).unwrap();
        for at in sample_times().into_iter().chain([far]) {
            let mut out = Vec::new();
            write::date(&mut out, &at);
            assert_eq!(String::from_utf8(out).unwrap(), written(at), "{at:?}");
        }
        // Every hex digit in every position, and both ends of the range.
        let mut state: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        let mut ids = vec![uuid::Uuid::nil(), uuid::Uuid::max()];
        for _ in 0..2000 {
            state = state
                .wrapping_mul(0x2360_ED05_1FC6_5DA4_4385_DF64_9FCC_F645)
                .wrapping_add(0x5851_F42D_4C95_7F2D_1405_7B7E_F767_814F);
            ids.push(uuid::Uuid::from_u128(state));
        }
        for id in ids {
            let mut out = Vec::new();
            write::uuid(&mut out, &id);
            assert_eq!(out, serde_json::to_vec(&id).unwrap(), "{id}");
        }
    }

    #[test]
    fn years_past_9999_and_leap_seconds_are_left_to_chrono() {
        let far = DateTime::from_timestamp(253_402_300_800, 5).unwrap(); // 10000-01-01
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        for at in [far, leap] {
            let mut buf = [0u8; RFC3339_MAX];
            assert_eq!(write_rfc3339(&at, &mut buf), None);
            assert_eq!(written(at), format!("\"{}\"", at.to_rfc3339()));
        }
    }
}
