//! Authentication of RPC requests as Alibaba Cloud does it: V3 (`Authorization:
//! ACS3-HMAC-SHA256 …`, 15-minute `x-acs-date` window) or V2 (`Signature` parameter,
//! HMAC-SHA1, 31-minute `Timestamp` window), nonces used once, STS tokens checked against
//! their key. Signatures are recomputed with the shared pure functions of
//! [`imgport_cloud::aliyun::sign`] from what the request actually carries.

use std::collections::HashMap;

use super::fault::ApiFault;
use imgport_cloud::aliyun::rpc::parse_utc_timestamp;
use imgport_cloud::aliyun::sign;

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
    let auth = sign::parse_v3_authorization(req.header("authorization").unwrap_or_default())
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
    let when = parse_utc_timestamp(date).ok_or_else(|| {
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
    let payload_hash = sign::sha256_hex(req.body);
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
    let input = sign::V3Input {
        method: req.method,
        uri: req.path,
        query: req.query,
        headers: req.headers,
        hashed_payload: &payload_hash,
    };
    let mut wanted = auth.signed_headers.clone();
    wanted.sort();
    wanted.dedup();
    // Every signed header must be present.
    if let Some(name) = wanted.iter().find(|n| req.header(n).is_none()) {
        return Err(incomplete(&format!("signed header {name} is missing")));
    }
    let canonical = sign::v3_canonical_request_for(&input, &wanted);
    let string_to_sign = sign::v3_string_to_sign(&canonical);
    let expected = sign::v3_signature(&key.secret, &string_to_sign);
    if expected != auth.signature || wanted.join(";") != auth.signed_headers.join(";") {
        return Err(ApiFault::new(
            400,
            "SignatureDoesNotMatch",
            format!(
                "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
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
    let when = parse_utc_timestamp(ts).ok_or_else(|| {
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
    let string_to_sign = sign::v2_string_to_sign(req.method, &all);
    let expected = sign::v2_signature(&key.secret, &string_to_sign);
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
}
