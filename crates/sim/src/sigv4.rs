//! The emulator's own AWS Signature V4 verifier for ksyun requests: it rebuilds the canonical
//! request from what arrived (method, path, query, the headers named in `SignedHeaders`, the
//! body's SHA-256), derives the key (`"AWS4"+secret` → date → region → service →
//! `aws4_request`) and compares. Written independently of the `aws-sigv4` crate the client
//! signs with, so a passing exchange checks one against the other; the unit tests pin the AWS
//! `get-vanilla` vector and the KEC example of docs/CLOUD-API.md §KEC.

use super::wire::{self, sha256_hex};

/// Name of the algorithm.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Requests must be dated within this many seconds of now (AWS's 15 minutes).
pub const WINDOW_SECS: i64 = 15 * 60;

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `yyyymmdd` of the scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case names, in the order given.
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses the header value; `None` when a part is missing or the scope is malformed.
pub fn parse_authorization(value: &str) -> Option<Authorization> {
    let rest = value.strip_prefix(ALGORITHM)?.trim_start();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [ak, date, region, service, terminator] = scope.as_slice() else {
        return None;
    };
    if *terminator != "aws4_request" || ak.is_empty() || date.len() != 8 {
        return None;
    }
    Some(Authorization {
        access_key_id: ak.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed?.split(';').map(str::to_string).collect(),
        signature: signature?.to_string(),
    })
}

/// One header value as SigV4 canonicalises it: trimmed, inner runs of spaces made one.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The inputs of one signature.
#[derive(Debug, Clone, Copy)]
pub struct Signable<'a> {
    pub method: &'a str,
    /// The path as sent (already encoded), `/` for the KEC API.
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
    /// Headers with lower-case names.
    pub headers: &'a [(String, String)],
    /// Lower-case names of the signed headers, sorted.
    pub signed: &'a [String],
    /// Hex SHA-256 of the body.
    pub payload_hash: &'a str,
    /// `x-amz-date`, `yyyymmddThhmmssZ`.
    pub amz_date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

/// The canonical request of `s` (AWS SigV4 "Create a canonical request").
pub fn canonical_request(s: &Signable<'_>) -> String {
    let mut block = String::new();
    for name in s.signed {
        let values: Vec<String> = s
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| canonical_value(v))
            .collect();
        block.push_str(name);
        block.push(':');
        block.push_str(&values.join(","));
        block.push('\n');
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        s.method,
        s.path,
        wire::sorted_query(s.query),
        block,
        s.signed.join(";"),
        s.payload_hash
    )
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    wire::hmac_sha256(key, data.as_bytes())
}

/// The hex signature of `s` with `secret`.
pub fn signature(s: &Signable<'_>, secret: &str) -> String {
    let date = s.amz_date.get(..8).unwrap_or_default();
    let scope = format!("{date}/{}/{}/aws4_request", s.region, s.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        s.amz_date,
        sha256_hex(canonical_request(s).as_bytes())
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac(&k_date, s.region);
    let k_service = hmac(&k_region, s.service);
    let k_signing = hmac(&k_service, "aws4_request");
    hex::encode(hmac(&k_signing, &string_to_sign))
}

/// Parses `yyyymmddThhmmssZ` to a Unix time.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        s.get(0..4)?,
        s.get(4..6)?,
        s.get(6..8)?,
        s.get(9..11)?,
        s.get(11..13)?,
        s.get(13..15)?
    );
    wire::parse_iso_utc(&iso)
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
    fn aws_get_vanilla_vector() {
        let headers = pairs(&[
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ]);
        let signed = vec!["host".to_string(), "x-amz-date".to_string()];
        let s = Signable {
            method: "GET",
            path: "/",
            query: &[],
            headers: &headers,
            signed: &signed,
            payload_hash: wire::EMPTY_PAYLOAD_SHA256,
            amz_date: "20150830T123600Z",
            region: "us-east-1",
            service: "service",
        };
        assert_eq!(
            signature(&s, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn kec_example_of_the_reference() {
        let query = pairs(&[
            ("Action", "ModifyInstanceImage"),
            ("ImageId", "8f12ad9e-ae9a-44b9-95f3-c4e65ce582e2"),
            ("InstanceId", "98284100-f6d1-4bbf-886a-1b0765024738"),
            ("KeepImageLogin", "true"),
            ("Version", "2016-03-04"),
        ]);
        let headers = pairs(&[
            ("host", "kec.api.ksyun.com"),
            ("x-amz-date", "20240101T000000Z"),
        ]);
        let signed = vec!["host".to_string(), "x-amz-date".to_string()];
        let s = Signable {
            method: "GET",
            path: "/",
            query: &query,
            headers: &headers,
            signed: &signed,
            payload_hash: wire::EMPTY_PAYLOAD_SHA256,
            amz_date: "20240101T000000Z",
            region: "cn-beijing-6",
            service: "kec",
        };
        assert_eq!(
            signature(&s, "EXAMPLESECRET"),
            "f177c560192f581e6c07f202b68693dac1e21c5925dfac77e3b3ba1feee572a3"
        );
    }

    #[test]
    fn parses_the_header_and_dates() {
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKLT1/20170720/cn-beijing-6/kec/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(
            (
                a.access_key_id.as_str(),
                a.region.as_str(),
                a.service.as_str()
            ),
            ("AKLT1", "cn-beijing-6", "kec")
        );
        assert_eq!(a.signed_headers, ["content-type", "host", "x-amz-date"]);
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=AK/2017/r/kec/aws4_request, SignedHeaders=host, Signature=x").is_none());
        assert!(parse_authorization("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=x").is_none());
        assert_eq!(parse_amz_date("20170720T022802Z"), Some(1_500_517_682));
        assert_eq!(parse_amz_date("2017-07-20T02:28:02Z"), None);
    }
}
