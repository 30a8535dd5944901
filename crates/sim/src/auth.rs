//! Authentication of RPC requests as Alibaba Cloud does it: V3 (`Authorization:
//! ACS3-HMAC-SHA256 …`, 15-minute `x-acs-date` window) or V2 (`Signature` parameter,
//! HMAC-SHA1, 31-minute `Timestamp` window), nonces used once, STS tokens checked against
//! their key. Signatures are recomputed by the emulator's own canonicalisation (below, on
//! [`super::wire`]) from what the request actually carries, not by the client's signer: a
//! mistake on either side is a `SignatureDoesNotMatch` in the tests. The unit tests pin the
//! public vectors of the V2 and V3 signature docs and of `darabonba-openapi-util`.
//!
//! Kept whole: V2 and V3 share the nonce and time-window checks, and the tests beside them pin
//! the public vectors of both.

use std::collections::HashMap;

use base64::Engine;

use super::fault::ApiFault;
use super::wire::{self, parse_iso_utc};

/// V3 requests must be dated within this many seconds of now (docs/CLOUD-API.md §Signing).
pub const V3_WINDOW_SECS: i64 = 15 * 60;
/// V2 timestamps are valid this long (docs/CLOUD-API.md §Signing: 31 minutes).
pub const V2_WINDOW_SECS: i64 = 31 * 60;

/// One accepted AccessKey.
#[derive(Debug, Clone)]
pub struct Key {
    pub id: String,
    /// Test secret of the emulator (never a real one).
    pub secret: String,
    /// STS token this key requires, if it is an STS key.
    pub security_token: Option<String>,
}

/// What the server knows of an incoming request.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Decoded query parameters.
    pub query: &'a [(String, String)],
    /// Decoded form-body parameters (POST `application/x-www-form-urlencoded`).
    pub form: &'a [(String, String)],
    /// Headers with lower-case names.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Incoming<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An authenticated call: its action, version and operation parameters.
#[derive(Debug, Clone)]
pub struct Call {
    pub action: String,
    pub version: String,
    /// Operation parameters (query and form merged), common V2 parameters removed.
    pub params: Vec<(String, String)>,
    pub access_key_id: String,
}

/// Nonces seen recently, forgotten once their window has passed.
#[derive(Debug, Default)]
pub struct NonceCache {
    seen: HashMap<String, i64>,
}

impl NonceCache {
    /// Records `nonce` at `now`; false when it was already used within the window.
    fn use_once(&mut self, nonce: &str, now: i64) -> bool {
        self.seen
            .retain(|_, &mut t| now.saturating_sub(t) <= V2_WINDOW_SECS);
        self.seen.insert(nonce.to_string(), now).is_none()
    }
}

/// Parameters V2 adds to every call; not passed on to the action.
const V2_COMMON: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
    "SecurityToken",
    "Signature",
];

/// Name of the V3 algorithm (`Authorization: ACS3-HMAC-SHA256 …`).
pub const V3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// The fields of a V3 `Authorization` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V3Authorization {
    pub access_key_id: String,
    /// Lower-case names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// Lower-case hex.
    pub signature: String,
}

/// Reads `ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<a;b>,Signature=<hex>`; `None` when
/// the algorithm differs or one of the three is missing or empty.
pub fn parse_v3_authorization(value: &str) -> Option<V3Authorization> {
    let fields = value.trim().strip_prefix(V3_ALGORITHM)?;
    if !fields.starts_with(' ') {
        return None;
    }
    let mut found: [Option<&str>; 3] = [None; 3];
    for item in fields.trim().split(',') {
        let (name, val) = item.trim().split_once('=')?;
        let slot = match name {
            "Credential" => 0,
            "SignedHeaders" => 1,
            "Signature" => 2,
            _ => continue,
        };
        found[slot] = Some(val).filter(|v| !v.is_empty());
    }
    let [Some(id), Some(signed), Some(signature)] = found else {
        return None;
    };
    Some(V3Authorization {
        access_key_id: id.to_string(),
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature: signature.to_string(),
    })
}

/// The V3 canonical request (docs/CLOUD-API.md §Signing): method, path, the sorted encoded
/// query, one `name:value` line per signed header (values of a name sent more than once
/// trimmed, sorted and joined by `,`), a blank line, the names joined by `;`, the payload hash.
pub fn v3_canonical_request(
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    signed: &[String],
    payload_hash: &str,
) -> String {
    let mut names: Vec<String> = signed.iter().map(|n| n.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    let mut lines = String::new();
    for name in &names {
        let mut values: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect();
        values.sort_unstable();
        lines.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    [
        method,
        path,
        &wire::sorted_query(query),
        &lines,
        &names.join(";"),
        payload_hash,
    ]
    .join("\n")
}

/// The V3 signature of `canonical_request`: lower-case hex HMAC-SHA256, keyed with the plain
/// secret, of `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request.
pub fn v3_signature(secret: &str, canonical_request: &str) -> String {
    let string_to_sign = format!(
        "{V3_ALGORITHM}\n{}",
        wire::sha256_hex(canonical_request.as_bytes())
    );
    hex::encode(wire::hmac_sha256(
        secret.as_bytes(),
        string_to_sign.as_bytes(),
    ))
}

/// The V2 string to sign: `METHOD&%2F&` + the encoded canonical query (every parameter but
/// `Signature`), so each value ends up encoded twice (docs/CLOUD-API.md §Signing).
pub fn v2_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let signed: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .cloned()
        .collect();
    format!(
        "{method}&{}&{}",
        wire::encode("/"),
        wire::encode(&wire::sorted_query(&signed))
    )
}

/// The V2 signature: Base64 of HMAC-SHA1 keyed with `secret + "&"`.
pub fn v2_signature(secret: &str, string_to_sign: &str) -> String {
    let key = format!("{secret}&");
    base64::engine::general_purpose::STANDARD
        .encode(wire::hmac_sha1(key.as_bytes(), string_to_sign.as_bytes()))
}

fn incomplete(what: &str) -> ApiFault {
    ApiFault::new(
        400,
        "IncompleteSignature",
        format!("The request signature does not conform to Aliyun standards: {what}."),
    )
}

fn find_key<'k>(keys: &'k [Key], id: &str) -> Result<&'k Key, ApiFault> {
    keys.iter().find(|k| k.id == id).ok_or_else(|| {
        ApiFault::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        )
    })
}

fn check_token(key: &Key, token: Option<&str>) -> Result<(), ApiFault> {
    match (&key.security_token, token) {
        (None, None) => Ok(()),
        (Some(want), Some(got)) if want == got => Ok(()),
        (Some(_), None) => Err(ApiFault::new(
            400,
            "MissingSecurityToken",
            "The security token of this STS AccessKey is not supplied.",
        )),
        _ => Err(ApiFault::new(
            400,
            "InvalidSecurityToken.MismatchWithAccessKey",
            "The security token does not match the AccessKey.",
        )),
    }
}

/// Authenticates `req` against `keys` at Unix time `now`.
pub fn authenticate(
    req: &Incoming<'_>,
    keys: &[Key],
    nonces: &mut NonceCache,
    now: i64,
) -> Result<Call, ApiFault> {
    if req.header("authorization").is_some() {
        v3(req, keys, nonces, now)
    } else if req
        .query
        .iter()
        .chain(req.form)
        .any(|(k, _)| k == "Signature")
    {
        v2(req, keys, nonces, now)
    } else {
        Err(incomplete(
            "neither an Authorization header nor a Signature parameter",
        ))
    }
}

fn v3(
    req: &Incoming<'_>,
    keys: &[Key],
    nonces: &mut NonceCache,
    now: i64,
) -> Result<Call, ApiFault> {
    let auth = parse_v3_authorization(req.header("authorization").unwrap_or_default())
        .ok_or_else(|| incomplete("malformed Authorization header"))?;
    for required in [
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
    ] {
        if req.header(required).is_none() {
            return Err(ApiFault::new(
                400,
                "MissingParameter",
                format!(
                    "The input parameter \"{required}\" that is mandatory for processing this request is not supplied."
                ),
            ));
        }
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(incomplete(&format!("header {required} is not signed")));
        }
    }
    // Every x-acs-* header that was sent must be signed, or it could be altered in transit.
    if let Some((name, _)) = req
        .headers
        .iter()
        .find(|(k, _)| k.starts_with("x-acs-") && !auth.signed_headers.contains(k))
    {
        return Err(incomplete(&format!("header {name} is not signed")));
    }
    let key = find_key(keys, &auth.access_key_id)?;
    let date = req.header("x-acs-date").unwrap_or_default();
    let when = parse_iso_utc(date).ok_or_else(|| {
        ApiFault::new(
            400,
            "IllegalTimestamp",
            format!(
                "The input parameter \"x-acs-date\" {date:?} is not in yyyy-MM-ddTHH:mm:ssZ format."
            ),
        )
    })?;
    if (now - when).abs() > V3_WINDOW_SECS {
        return Err(ApiFault::new(
            400,
            "IllegalTimestamp",
            "The input parameter \"x-acs-date\" that is mandatory for processing this request is not within 15 minutes of the server time.",
        ));
    }
    let payload_hash = wire::sha256_hex(req.body);
    if let Some(claimed) = req.header("x-acs-content-sha256")
        && !claimed.eq_ignore_ascii_case(&payload_hash)
    {
        return Err(ApiFault::new(
            400,
            "SignatureDoesNotMatch",
            "The x-acs-content-sha256 header does not match the request body.",
        ));
    }
    let mut query: Vec<(String, String)> = req.query.to_vec();
    query.extend(req.form.iter().cloned());
    // The names as the client listed them must be sorted and unique, and every one present.
    let mut wanted = auth.signed_headers.clone();
    wanted.sort();
    wanted.dedup();
    if let Some(name) = wanted.iter().find(|n| req.header(n).is_none()) {
        return Err(incomplete(&format!("signed header {name} is missing")));
    }
    let canonical = v3_canonical_request(
        req.method,
        req.path,
        req.query,
        req.headers,
        &wanted,
        &payload_hash,
    );
    let expected = v3_signature(&key.secret, &canonical);
    if expected != auth.signature || wanted.join(";") != auth.signed_headers.join(";") {
        return Err(ApiFault::new(
            400,
            "SignatureDoesNotMatch",
            format!(
                "Specified signature is not matched with our calculation. server canonical request is:{canonical}"
            ),
        ));
    }
    check_token(key, req.header("x-acs-security-token"))?;
    let nonce = req.header("x-acs-signature-nonce").unwrap_or_default();
    if !nonces.use_once(nonce, now) {
        return Err(ApiFault::new(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    Ok(Call {
        action: req.header("x-acs-action").unwrap_or_default().to_string(),
        version: req.header("x-acs-version").unwrap_or_default().to_string(),
        params: query,
        access_key_id: key.id.clone(),
    })
}

fn v2(
    req: &Incoming<'_>,
    keys: &[Key],
    nonces: &mut NonceCache,
    now: i64,
) -> Result<Call, ApiFault> {
    let all: Vec<(String, String)> = req.query.iter().chain(req.form).cloned().collect();
    let get = |name: &str| all.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    for required in [
        "AccessKeyId",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "Timestamp",
        "Action",
        "Version",
    ] {
        if get(required).is_none() {
            return Err(ApiFault::new(
                400,
                "MissingParameter",
                format!(
                    "The input parameter \"{required}\" that is mandatory for processing this request is not supplied."
                ),
            ));
        }
    }
    if get("SignatureMethod") != Some("HMAC-SHA1") || get("SignatureVersion") != Some("1.0") {
        return Err(incomplete(
            "SignatureMethod must be HMAC-SHA1 and SignatureVersion 1.0",
        ));
    }
    let key = find_key(keys, get("AccessKeyId").unwrap_or_default())?;
    let ts = get("Timestamp").unwrap_or_default();
    let when = parse_iso_utc(ts).ok_or_else(|| {
        ApiFault::new(
            400,
            "InvalidTimeStamp.Format",
            format!("Specified time stamp {ts:?} is not in yyyy-MM-ddTHH:mm:ssZ format."),
        )
    })?;
    if (now - when).abs() > V2_WINDOW_SECS {
        return Err(ApiFault::new(
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    let string_to_sign = v2_string_to_sign(req.method, &all);
    let expected = v2_signature(&key.secret, &string_to_sign);
    if get("Signature") != Some(expected.as_str()) {
        return Err(ApiFault::new(
            400,
            "SignatureDoesNotMatch",
            format!(
                "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
            ),
        ));
    }
    check_token(key, get("SecurityToken"))?;
    if !nonces.use_once(get("SignatureNonce").unwrap_or_default(), now) {
        return Err(ApiFault::new(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    Ok(Call {
        action: get("Action").unwrap_or_default().to_string(),
        version: get("Version").unwrap_or_default().to_string(),
        params: all
            .iter()
            .filter(|(k, _)| !V2_COMMON.contains(&k.as_str()))
            .cloned()
            .collect(),
        access_key_id: key.id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgport_base::secret::Secret;
    use imgport_cloud::aliyun::rpc::{ClientConfig, RpcClient, SignatureVersion};
    use imgport_credentials::Credentials;

    const NOW: i64 = 1_700_000_000;

    fn keys() -> Vec<Key> {
        vec![Key {
            id: "AK".into(),
            secret: "SK".into(),
            security_token: None,
        }]
    }

    fn decode_query(url: &str) -> Vec<(String, String)> {
        super::super::form::parse_form(url.split_once('?').map_or("", |(_, q)| q))
    }

    fn run(
        version: SignatureVersion,
        secret: &str,
        when: i64,
        nonce: &str,
    ) -> Result<Call, ApiFault> {
        let mut cfg = ClientConfig::new("cn-hangzhou");
        cfg.endpoint = Some("http://127.0.0.1:1".into());
        cfg.signature = version;
        let client = RpcClient::new(
            cfg,
            Credentials {
                access_key_id: "AK".into(),
                access_key_secret: Secret::new(secret),
                security_token: None,
            },
        )
        .unwrap();
        let params = vec![("RegionId".to_string(), "cn-hangzhou".to_string())];
        let req = client.build_request("DescribeImages", "2014-05-26", &params, nonce, when);
        let query = decode_query(&req.url);
        let incoming = Incoming {
            method: req.method,
            path: "/",
            query: &query,
            form: &[],
            headers: &req.headers,
            body: &[],
        };
        let mut nonces = NonceCache::default();
        let first = authenticate(&incoming, &keys(), &mut nonces, NOW);
        if first.is_ok() {
            // A replay with the same nonce must fail.
            let again = authenticate(&incoming, &keys(), &mut nonces, NOW).unwrap_err();
            assert_eq!(again.code, "SignatureNonceUsed");
        }
        first
    }

    #[test]
    fn accepts_our_client_v3_and_v2() {
        for v in [SignatureVersion::V3, SignatureVersion::V2] {
            let call = run(v, "SK", NOW, "n-1").unwrap();
            assert_eq!(call.action, "DescribeImages");
            assert_eq!(
                call.params,
                [("RegionId".to_string(), "cn-hangzhou".to_string())]
            );
        }
    }

    #[test]
    fn rejects_wrong_secret_and_old_time() {
        assert_eq!(
            run(SignatureVersion::V3, "bad", NOW, "n").unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            run(SignatureVersion::V2, "bad", NOW, "n").unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            run(SignatureVersion::V3, "SK", NOW - 16 * 60, "n")
                .unwrap_err()
                .code,
            "IllegalTimestamp"
        );
        assert!(run(SignatureVersion::V2, "SK", NOW - 30 * 60, "n").is_ok());
        assert_eq!(
            run(SignatureVersion::V2, "SK", NOW - 32 * 60, "n")
                .unwrap_err()
                .code,
            "InvalidTimeStamp.Expired"
        );
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Alibaba Cloud "Request syntax and signature method V2 for RPC APIs": the DescribeRegions
    /// example (string to sign and signature) and the newer DescribeDedicatedHosts example.
    #[test]
    fn v2_matches_the_signature_doc_examples() {
        let p = pairs(&[
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
        let p = pairs(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeDedicatedHosts"),
            ("Format", "JSON"),
            ("RegionId", "cn-beijing"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "edb2b34af0af9a6d14deaf7c1a5315eb"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2023-03-13T08:34:30Z"),
            ("Version", "2014-05-26"),
        ]);
        assert_eq!(
            v2_signature("testsecret", &v2_string_to_sign("GET", &p)),
            "9NaGiOspFP5UPcwX8Iwt2YJXXuk="
        );
    }

    /// The unit-test vectors of `darabonba-openapi-util` (Python and Go) for V2.
    #[test]
    fn v2_matches_the_darabonba_vectors() {
        let p = pairs(&[("query", "test"), ("body", "test")]);
        assert_eq!(
            v2_signature("secret", &v2_string_to_sign("GET", &p)),
            "XlUyV4sXjOuX5FnjUz9IF9tm5rU="
        );
        let p = pairs(&[("test", "ok")]);
        assert_eq!(
            v2_signature("accessKeySecret", &v2_string_to_sign("", &p)),
            "jHx/oHoHNrbVfhncHEvPdHXZwHU="
        );
    }

    /// Alibaba Cloud "Request syntax and signature method V3": the worked RunInstances example.
    #[test]
    fn v3_matches_the_signature_doc_example() {
        let query = pairs(&[
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
            ("RegionId", "cn-shanghai"),
        ]);
        let headers = pairs(&[
            ("host", "ecs.cn-shanghai.aliyuncs.com"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2023-10-26T10:22:32Z"),
            ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
            ("x-acs-content-sha256", wire::EMPTY_PAYLOAD_SHA256),
        ]);
        let auth = parse_v3_authorization(
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0",
        )
        .unwrap();
        assert_eq!(auth.access_key_id, "YourAccessKeyId");
        let canonical = v3_canonical_request(
            "POST",
            "/",
            &query,
            &headers,
            &auth.signed_headers,
            wire::EMPTY_PAYLOAD_SHA256,
        );
        assert_eq!(
            wire::sha256_hex(canonical.as_bytes()),
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            v3_signature("YourAccessKeySecret", &canonical),
            auth.signature
        );
    }

    /// The `darabonba-openapi-util` V3 vectors: an empty query value (`empty=`) and one header
    /// sent under two spellings, canonical `x-acs-test:http,https`.
    #[test]
    fn v3_matches_the_darabonba_vectors() {
        let query = pairs(&[("test", "ok"), ("empty", "")]);
        let headers = pairs(&[("x-acs-test", "http"), ("x-acs-TEST", "https")]);
        let payload = "55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23";
        let signed = ["x-acs-test".to_string()];
        let canonical =
            |method| v3_canonical_request(method, "/", &query, &headers, &signed, payload);
        assert!(canonical("GET").contains("\nempty=&test=ok\nx-acs-test:http,https\n\n"));
        assert_eq!(
            v3_signature("secret", &canonical("GET")),
            "d16b30a7699ae9e43875b13195b2f81bcc3ed10c14a9b5eb780e51619aa50be1"
        );
        assert_eq!(
            v3_signature("secret", &canonical("")),
            "4ab59fffe3c5738ff8a2729f90cc04fe18b02a4b15b2102cbaf92f9ff3df2ea3"
        );
    }

    #[test]
    fn a_malformed_v3_authorization_is_refused() {
        for bad in [
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host",
            "ACS3-HMAC-SHA256Credential=a,SignedHeaders=host,Signature=x",
            "AWS4-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=x",
            "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=x",
        ] {
            assert_eq!(parse_v3_authorization(bad), None, "{bad}");
        }
    }
}
