//! The emulator's own byte-level pieces of request checking: RFC 3986 percent-encoding and the
//! sorted query string both Alibaba signatures and AWS SigV4 build on, SHA-256 and HMAC, and the
//! UTC time stamps of the wire. Written from the public specs (Alibaba Cloud "Request syntax and
//! signature method V2/V3 for RPC APIs", AWS "Signature Version 4 signing process", RFC 3986,
//! docs/CLOUD-API.md §Signing), apart from the client's signer, so that a mistake in either one
//! shows as a signature mismatch in the tests.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Hex SHA-256 of the empty string: the payload hash of a request without a body.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Whether RFC 3986 §2.3 leaves `b` literal (`A-Z a-z 0-9 - _ . ~`).
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes the UTF-8 bytes of `s`: unreserved bytes stay, every other byte becomes
/// `%XX` in upper-case hex (so a space is `%20` and `*` is `%2A`).
pub fn encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The canonical query string: every pair encoded, sorted by encoded name then encoded value
/// (byte order), joined `k=v` with `&`; an empty value still gives `k=`.
pub fn sorted_query(pairs: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> =
        pairs.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort();
    let parts: Vec<String> = encoded.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join("&")
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 of `data` under `key`.
pub fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac =
        <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d` (the "days from civil"
/// computation over 400-year eras of 146097 days).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(y, m, d)` of day `z` after 1970-01-01 (inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `unix` as the RPC APIs write time: `yyyy-MM-ddTHH:mm:ssZ`, UTC.
pub fn iso_utc(unix: i64) -> String {
    let (y, m, d) = civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Reads `yyyy-MM-ddTHH:mm:ssZ` (the V2 `Timestamp` and V3 `x-acs-date` form) as Unix time;
/// `None` for any other shape or an impossible date.
pub fn parse_iso_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 59
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn encoding_keeps_only_unreserved_bytes() {
        assert_eq!(encode("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(encode("a b*c/d:"), "a%20b%2Ac%2Fd%3A");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(encode("Others Linux"), "Others%20Linux");
    }

    #[test]
    fn the_query_is_sorted_after_encoding_and_keeps_empty_values() {
        let q = pairs(&[("test", "ok"), ("empty", ""), ("B", "x y")]);
        assert_eq!(sorted_query(&q), "B=x%20y&empty=&test=ok");
    }

    #[test]
    fn sha256_of_nothing_is_the_empty_payload_hash() {
        assert_eq!(sha256_hex(b""), EMPTY_PAYLOAD_SHA256);
    }

    #[test]
    fn time_stamps_round_trip_and_refuse_impossible_dates() {
        // 2016-02-23T12:46:24Z is the V2 doc's DescribeRegions example time.
        let t = parse_iso_utc("2016-02-23T12:46:24Z").unwrap();
        assert_eq!(t, 1_456_231_584);
        assert_eq!(iso_utc(t), "2016-02-23T12:46:24Z");
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_iso_utc("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        for bad in [
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-01-01 00:00:00Z",
            "2023-01-01T24:00:00Z",
            "2023-01-01T00:00:00",
        ] {
            assert_eq!(parse_iso_utc(bad), None, "{bad}");
        }
    }
}
