//! Pure signing functions for Alibaba Cloud RPC APIs: the classic V2 signature (HMAC-SHA1,
//! `SignatureVersion=1.0`) and V3 (`ACS3-HMAC-SHA256`), with the RFC 3986 percent-encoding
//! Alibaba specifies. No I/O, no clock, no randomness: the client calls these with explicit
//! inputs (the emulator verifies with its own code), and the unit tests pin every published vector
//! (docs/CLOUD-API.md §Signing).

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Name of the V3 algorithm, first word of the `Authorization` header and of the string to sign.
pub const V3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Hex SHA-256 of an empty body: the `x-acs-content-sha256` of every RPC call without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Percent-encodes `s` as Alibaba's signatures require (docs/CLOUD-API.md §Signing): UTF-8 bytes,
/// only `A-Z a-z 0-9 - _ . ~` literal, upper-case hex, so a space is `%20` and `*` is `%2A`.
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Sorted, encoded `k=v&k=v` query: sorted by name in byte order (then value, so repeated
/// names are stable), names and values percent-encoded. Used by both V2 and V3.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// V2 string to sign: `METHOD&%2F&percentEncode(canonical query)`; the parameter named
/// `Signature` is left out.
pub fn v2_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let signed: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .cloned()
        .collect();
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&canonical_query(&signed))
    )
}

/// V2 signature: `Base64(HMAC-SHA1(secret + "&", string_to_sign))`.
pub fn v2_signature(secret: &str, string_to_sign: &str) -> String {
    let key = format!("{secret}&");
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Signs `params` with V2 for `method`: the value to send as the `Signature` parameter.
pub fn v2_sign(method: &str, params: &[(String, String)], secret: &str) -> String {
    v2_signature(secret, &v2_string_to_sign(method, params))
}

/// Lower-case hex SHA-256 of `data` (`x-acs-content-sha256`, the hashed canonical request).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The parts of a request that V3 signs.
#[derive(Debug, Clone, Copy)]
pub struct V3Input<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// Canonical URI: `/` for RPC APIs.
    pub uri: &'a str,
    /// Query parameters, unencoded.
    pub query: &'a [(String, String)],
    /// Request headers, any case; only `host`, `content-type` and `x-acs-*` are signed.
    pub headers: &'a [(String, String)],
    /// Hex SHA-256 of the body (`x-acs-content-sha256`).
    pub hashed_payload: &'a str,
}

/// Whether V3 signs a header of this (lower-case) name.
fn v3_signs(name: &str) -> bool {
    name == "host" || name == "content-type" || name.starts_with("x-acs-")
}

/// Signed headers as (lower-case name, values sorted and joined by `,`), sorted by name:
/// the headers whose lower-case name `select` accepts.
fn v3_header_groups(
    headers: &[(String, String)],
    select: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (name, value) in headers {
        let name = name.trim().to_ascii_lowercase();
        if select(&name) {
            groups
                .entry(name)
                .or_default()
                .push(value.trim().to_string());
        }
    }
    groups
        .into_iter()
        .map(|(name, mut values)| {
            values.sort();
            (name, values.join(","))
        })
        .collect()
}

/// `host;x-acs-action;…`: the names V3 signs, lower-case, sorted, joined by `;`.
pub fn v3_signed_headers(headers: &[(String, String)]) -> String {
    v3_header_groups(headers, v3_signs)
        .into_iter()
        .map(|(name, _)| name)
        .collect::<Vec<_>>()
        .join(";")
}

/// The V3 canonical request: method, URI, query, headers block (each `name:value\n`), signed
/// header names and payload hash, joined by `\n`.
pub fn v3_canonical_request(input: &V3Input<'_>) -> String {
    canonical_request_of(input, v3_header_groups(input.headers, v3_signs))
}

/// The V3 canonical request over exactly the headers named in `signed` (lower-case), as a
/// verifier must build it: a client may sign more headers than the minimum (Alibaba's
/// Python SDK signs all it sends, `user-agent` and `accept` included).
pub fn v3_canonical_request_for(input: &V3Input<'_>, signed: &[String]) -> String {
    let groups = v3_header_groups(input.headers, |name| signed.iter().any(|s| s == name));
    canonical_request_of(input, groups)
}

fn canonical_request_of(input: &V3Input<'_>, groups: Vec<(String, String)>) -> String {
    let mut block = String::new();
    for (name, value) in &groups {
        block.push_str(name);
        block.push(':');
        block.push_str(value);
        block.push('\n');
    }
    let signed: Vec<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method,
        input.uri,
        canonical_query(input.query),
        block,
        signed.join(";"),
        input.hashed_payload
    )
}

/// The V3 string to sign: `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request.
pub fn v3_string_to_sign(canonical_request: &str) -> String {
    format!(
        "{V3_ALGORITHM}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// V3 signature: lower-case hex `HMAC-SHA256(secret, string_to_sign)` (no `&` on the key).
pub fn v3_signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The full `Authorization` header value for `input`.
pub fn v3_authorization(input: &V3Input<'_>, access_key_id: &str, secret: &str) -> String {
    let signature = v3_signature(secret, &v3_string_to_sign(&v3_canonical_request(input)));
    format!(
        "{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={},Signature={signature}",
        v3_signed_headers(input.headers)
    )
}

/// The three fields of a V3 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Authorization {
    pub access_key_id: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses `ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`; `None` when a part
/// is missing or the algorithm differs.
pub fn parse_v3_authorization(value: &str) -> Option<V3Authorization> {
    let rest = value.trim().strip_prefix(V3_ALGORITHM)?.trim_start();
    let (mut ak, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => ak = Some(v.to_string()),
            "SignedHeaders" => signed = Some(v.split(';').map(str::to_string).collect()),
            "Signature" => sig = Some(v.to_string()),
            _ => {}
        }
    }
    Some(V3Authorization {
        access_key_id: ak.filter(|s: &String| !s.is_empty())?,
        signed_headers: signed?,
        signature: sig.filter(|s: &String| !s.is_empty())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn percent_encoding_follows_rfc3986() {
        assert_eq!(percent_encode("a b*c~d/e+f=:"), "a%20b%2Ac~d%2Fe%2Bf%3D%3A");
        assert_eq!(percent_encode("Others Linux"), "Others%20Linux");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode("AZaz09-_.~"), "AZaz09-_.~");
    }

    /// V2 vector 1: the V2 signature doc's DescribeRegions example.
    #[test]
    fn v2_doc_example_describe_regions() {
        let p = params(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]);
        let sts = v2_string_to_sign("GET", &p);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(
            v2_signature("testsecret", &sts),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    /// V2 vector 2: the newer doc's DescribeDedicatedHosts example; parameter order in
    /// the input must not matter.
    #[test]
    fn v2_doc_example_describe_dedicated_hosts() {
        let p = params(&[
            ("Version", "2014-05-26"),
            ("Timestamp", "2023-03-13T08:34:30Z"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "edb2b34af0af9a6d14deaf7c1a5315eb"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("RegionId", "cn-beijing"),
            ("Format", "JSON"),
            ("Action", "DescribeDedicatedHosts"),
            ("AccessKeyId", "testid"),
        ]);
        assert_eq!(
            v2_sign("GET", &p, "testsecret"),
            "9NaGiOspFP5UPcwX8Iwt2YJXXuk="
        );
    }

    /// V2 vector 3: the darabonba-openapi-util unit tests.
    #[test]
    fn v2_darabonba_vectors() {
        let p = params(&[("query", "test"), ("body", "test")]);
        assert_eq!(v2_sign("GET", &p, "secret"), "XlUyV4sXjOuX5FnjUz9IF9tm5rU=");
        let p = params(&[("test", "ok")]);
        assert_eq!(
            v2_sign("", &p, "accessKeySecret"),
            "jHx/oHoHNrbVfhncHEvPdHXZwHU="
        );
    }

    #[test]
    fn v2_ignores_a_signature_parameter() {
        let p = params(&[("test", "ok"), ("Signature", "whatever")]);
        assert_eq!(
            v2_sign("", &p, "accessKeySecret"),
            "jHx/oHoHNrbVfhncHEvPdHXZwHU="
        );
    }

    /// The V3 signature doc's worked example: canonical request, its hash, signature and
    /// Authorization header.
    #[test]
    fn v3_doc_worked_example() {
        let query = params(&[
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
            ("RegionId", "cn-shanghai"),
        ]);
        let headers = params(&[
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-content-sha256", EMPTY_SHA256),
            ("accept", "application/json"),
            ("user-agent", "not-signed"),
        ]);
        let input = V3Input {
            method: "POST",
            uri: "/",
            query: &query,
            headers: &headers,
            hashed_payload: EMPTY_SHA256,
        };
        let canonical = v3_canonical_request(&input);
        assert_eq!(
            canonical,
            "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n\
             host:ecs.cn-shanghai.aliyuncs.com\n\
             x-acs-action:RunInstances\n\
             x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-acs-date:2023-10-26T10:22:32Z\n\
             x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n\
             x-acs-version:2014-05-26\n\
             \n\
             host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(canonical.as_bytes()),
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        let sts = v3_string_to_sign(&canonical);
        assert_eq!(
            v3_signature("YourAccessKeySecret", &sts),
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
        assert_eq!(
            v3_authorization(&input, "YourAccessKeyId", "YourAccessKeySecret"),
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    /// The darabonba-openapi-util V3 vectors: an empty query value and a header repeated under
    /// two spellings of its name (`x-acs-test:http,https`).
    #[test]
    fn v3_darabonba_vectors_with_repeated_headers() {
        let query = params(&[("test", "ok"), ("empty", "")]);
        let headers = params(&[("x-acs-test", "http"), ("x-acs-TEST", "https")]);
        let payload = "55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23";
        assert_eq!(canonical_query(&query), "empty=&test=ok");
        let sign = |method| {
            let input = V3Input {
                method,
                uri: "/",
                query: &query,
                headers: &headers,
                hashed_payload: payload,
            };
            assert!(v3_canonical_request(&input).contains("\nx-acs-test:http,https\n\n"));
            v3_authorization(&input, "acesskey", "secret")
        };
        assert_eq!(
            sign("GET"),
            "ACS3-HMAC-SHA256 Credential=acesskey,SignedHeaders=x-acs-test,Signature=d16b30a7699ae9e43875b13195b2f81bcc3ed10c14a9b5eb780e51619aa50be1"
        );
        assert!(sign("").ends_with(
            "Signature=4ab59fffe3c5738ff8a2729f90cc04fe18b02a4b15b2102cbaf92f9ff3df2ea3"
        ));
    }

    /// A verifier signs exactly the headers the client listed, more than the minimum too.
    #[test]
    fn v3_canonical_request_over_listed_headers() {
        let headers = params(&[
            ("Host", "h"),
            ("User-Agent", "ua"),
            ("x-acs-date", "d"),
            ("x-acs-unlisted", "u"),
        ]);
        let input = V3Input {
            method: "GET",
            uri: "/",
            query: &[],
            headers: &headers,
            hashed_payload: EMPTY_SHA256,
        };
        let listed = ["host".to_string(), "user-agent".into(), "x-acs-date".into()];
        let c = v3_canonical_request_for(&input, &listed);
        assert_eq!(
            c,
            format!(
                "GET\n/\n\nhost:h\nuser-agent:ua\nx-acs-date:d\n\nhost;user-agent;x-acs-date\n{EMPTY_SHA256}"
            )
        );
        // The client-side default signs host and x-acs-* only.
        assert_eq!(
            v3_signed_headers(&headers),
            "host;x-acs-date;x-acs-unlisted"
        );
    }

    #[test]
    fn parses_v3_authorization() {
        let a = parse_v3_authorization(
            "ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=host;x-acs-date,Signature=abc",
        )
        .unwrap();
        assert_eq!(a.access_key_id, "AK");
        assert_eq!(a.signed_headers, ["host", "x-acs-date"]);
        assert_eq!(a.signature, "abc");
        assert!(parse_v3_authorization("ACS3-HMAC-SHA256 Credential=AK,Signature=abc").is_none());
        assert!(parse_v3_authorization("AWS4-HMAC-SHA256 Credential=AK").is_none());
    }
}
