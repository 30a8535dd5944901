//! The emulated Kingsoft KEC (2016-03-04) ModifyInstanceImage: requests signed with AWS
//! Signature V4 (verified by [`super::sigv4`]), form or query parameters, the rules of
//! docs/CLOUD-API.md §KEC (the emulator's own, in `rules` below) and the documented
//! error codes, answered as `{"RequestId","Error":{"Code","Message"}}`. It knows fixed instances,
//! images and key pairs (the constants below, printed by `imgport sim`); a reinstall changes the
//! instance's image and boots it (Running), so a second one is refused until it is stopped. With a
//! state directory the instances are kept in `kec-state.json`.
//!
//! The signature failure codes (`IncompleteSignature`, `InvalidClientTokenId`,
//! `SignatureDoesNotMatch`, `RequestExpired`) are the AWS-compatible common codes; KEC's
//! common error page is not among the sources (unverified).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use super::auth::Incoming;
use super::sigv4::{self, Signable};
use super::state_file::StateFile;
use super::wire::sha256_hex;

/// The KEC API version (docs/CLOUD-API.md §KEC).
pub const KEC_VERSION: &str = "2016-03-04";
/// The SigV4 service name of KEC.
pub const KEC_SERVICE: &str = "kec";
/// Most `KeyId.N` per instance (docs/CLOUD-API.md §KEC).
pub const MAX_KEYS: usize = 10;

/// ModifyInstanceImage's parameter rules as the ksyun page states them (docs/CLOUD-API.md
/// §KEC): each returns the documented `(code, message)` of a value that does not fit.
mod rules {
    use base64::Engine;

    type Misfit = (&'static str, String);

    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lower-case hex.
    fn uuid(s: &str) -> bool {
        let groups: Vec<&str> = s.split('-').collect();
        groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups
                .iter()
                .all(|g| g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    }

    pub fn image_id(s: &str) -> Result<(), Misfit> {
        if uuid(s) {
            return Ok(());
        }
        Err((
            "ImageIdInvalidParameterValue",
            "An invalid or out-of-range value was supplied for the \"ImageId\" parameter.".into(),
        ))
    }

    /// 8–32 visible ASCII characters holding upper- and lower-case letters and digits; the
    /// code follows the documented `<Field>InvalidParameterValue` pattern (unverified).
    pub fn password(p: &str) -> Result<(), Misfit> {
        let visible = p.bytes().all(|b| (0x21..=0x7e).contains(&b));
        let has = |f: fn(u8) -> bool| p.bytes().any(f);
        let ok = (8..=32).contains(&p.len())
            && visible
            && has(|b| b.is_ascii_uppercase())
            && has(|b| b.is_ascii_lowercase())
            && has(|b| b.is_ascii_digit());
        if ok {
            return Ok(());
        }
        Err((
            "InstancePasswordInvalidParameterValue",
            "An invalid value was supplied for the \"InstancePassword\" parameter: 8 to 32 visible characters with upper- and lower-case letters and digits.".into(),
        ))
    }

    /// `KeyId.N`: at most [`super::MAX_KEYS`], each a key pair id (a UUID).
    pub fn key_ids(keys: &[String]) -> Result<(), Misfit> {
        if keys.len() > super::MAX_KEYS {
            return Err((
                "InvalidParameter.InstanceKeyLimitExceeded",
                format!("An instance holds at most {} key pairs.", super::MAX_KEYS),
            ));
        }
        match keys.iter().find(|k| !uuid(k)) {
            None => Ok(()),
            Some(k) => Err((
                "KeyIdInvalidParameterValue",
                format!(
                    "An invalid or out-of-range value was supplied for the \"KeyId\" parameter: {k}."
                ),
            )),
        }
    }

    /// UserData must be base64.
    pub fn user_data(u: &str) -> Result<(), Misfit> {
        match base64::engine::general_purpose::STANDARD.decode(u) {
            Ok(_) => Ok(()),
            Err(_) => Err((
                "UserDataInvalidParameterValue",
                "The \"UserData\" parameter must be base64 encoded.".into(),
            )),
        }
    }
}

/// AccessKey ID the emulated KEC accepts (a fixed test value).
pub const TEST_ACCESS_KEY_ID: &str = "AKLTimgportSimKsyunKey";
/// Its secret: a fixed test value printed by `imgport sim`; never a real secret.
pub const TEST_SECRET_KEY: &str = "imgport-sim-ksyun-secret";

/// A Stopped instance that can be reinstalled (the ModifyInstanceImage doc's example id).
pub const INSTANCE_STOPPED: &str = "98284100-f6d1-4bbf-886a-1b0765024738";
/// A second Stopped instance.
pub const INSTANCE_STOPPED_2: &str = "3b8c61d0-7a4e-4f7e-9c1a-5d2f00000002";
/// A Running instance: `InstanceStateNotSupported`.
pub const INSTANCE_RUNNING: &str = "3b8c61d0-7a4e-4f7e-9c1a-5d2f00000003";
/// A Stopped spot instance: `OperationDenied.SpotInstance`.
pub const INSTANCE_SPOT: &str = "3b8c61d0-7a4e-4f7e-9c1a-5d2f00000004";
/// A public image (the ModifyInstanceImage doc's example id), key login supported, 20 GB minimum.
pub const IMAGE_PUBLIC: &str = "8f12ad9e-ae9a-44b9-95f3-c4e65ce582e2";
/// A custom image (KeepImageLogin applies).
pub const IMAGE_CUSTOM: &str = "6c1f0e52-91b4-4d0a-8e77-2a9b00000101";
/// A custom image holding a data-disk snapshot: `AssembledImageNotSupportReinstallSystem`.
pub const IMAGE_ASSEMBLED: &str = "6c1f0e52-91b4-4d0a-8e77-2a9b00000102";
/// An image whose type has no key login: `ImageTypeNotSupportedKeyLogin`.
pub const IMAGE_NO_KEY_LOGIN: &str = "6c1f0e52-91b4-4d0a-8e77-2a9b00000103";
/// A key pair that exists (the ModifyInstanceImage doc's example id).
pub const KEY_ID: &str = "552a0523-b9b4-4868-b8d9-52ad7a38bf89";

/// Largest system disk the emulator accepts, GB.
const MAX_SYSTEM_DISK_GB: u32 = 500;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Instance {
    state: String,
    spot: bool,
    image_id: String,
}

#[derive(Debug, Clone, Copy)]
struct Image {
    custom: bool,
    data_disk_snapshot: bool,
    key_login: bool,
    min_disk_gb: u32,
}

/// The emulated KEC service.
pub struct Kec {
    instances: Mutex<BTreeMap<String, Instance>>,
    images: BTreeMap<&'static str, Image>,
    /// `kec-state.json` of the state directory, when there is one.
    state_file: StateFile,
}

/// An error answer of KEC.
fn fault(status: u16, code: &str, message: impl Into<String>) -> (u16, Value) {
    let message = message.into();
    (
        status,
        json!({"Error": {"Type": "Sender", "Code": code, "Message": message}}),
    )
}

impl Default for Kec {
    fn default() -> Self {
        Self::new()
    }
}

impl Kec {
    /// The service with its fixed instances, images and keys.
    pub fn new() -> Self {
        let instance = |state: &str, spot| Instance {
            state: state.to_string(),
            spot,
            image_id: IMAGE_PUBLIC.to_string(),
        };
        let instances = BTreeMap::from([
            (INSTANCE_STOPPED.to_string(), instance("Stopped", false)),
            (INSTANCE_STOPPED_2.to_string(), instance("Stopped", false)),
            (INSTANCE_RUNNING.to_string(), instance("Running", false)),
            (INSTANCE_SPOT.to_string(), instance("Stopped", true)),
        ]);
        let image = |custom, data_disk_snapshot, key_login| Image {
            custom,
            data_disk_snapshot,
            key_login,
            min_disk_gb: 20,
        };
        let images = BTreeMap::from([
            (IMAGE_PUBLIC, image(false, false, true)),
            (IMAGE_CUSTOM, image(true, false, true)),
            (IMAGE_ASSEMBLED, image(true, true, true)),
            (IMAGE_NO_KEY_LOGIN, image(false, false, false)),
        ]);
        Self {
            instances: Mutex::new(instances),
            images,
            state_file: StateFile::default(),
        }
    }

    /// The service whose instances are kept in `kec-state.json` of `state_dir` (the
    /// fixtures when absent), or in memory only.
    pub fn open(state_dir: Option<&std::path::Path>) -> std::io::Result<Self> {
        let mut kec = Self::new();
        kec.state_file = StateFile::new(state_dir, "kec-state.json")?;
        if let Some(saved) = kec.state_file.load()? {
            kec.instances = Mutex::new(saved);
        }
        Ok(kec)
    }

    /// Writes the instances atomically (temporary file, then rename).
    fn persist(&self, instances: &BTreeMap<String, Instance>) -> Result<(), (u16, Value)> {
        self.state_file
            .save(instances)
            .map_err(|e| fault(500, "InternalError", format!("saving state: {e}")))
    }

    /// Whether `headers` carry a SigV4 `Authorization` (such requests are KEC's).
    pub fn is_sigv4(headers: &[(String, String)]) -> bool {
        headers
            .iter()
            .any(|(k, v)| k == "authorization" && v.starts_with(sigv4::ALGORITHM))
    }

    /// Authenticates and answers one request at Unix time `now`: (status, body).
    pub fn handle(&self, req: &Incoming<'_>, now: i64) -> (u16, Value) {
        if let Err(f) = authenticate(req, now) {
            return f;
        }
        let params: Vec<(String, String)> = req.query.iter().chain(req.form).cloned().collect();
        let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        if get("Version") != Some(KEC_VERSION) || get("Action") != Some("ModifyInstanceImage") {
            return fault(
                400,
                "InvalidAction",
                format!(
                    "The action {:?} of version {:?} is not valid for this web service.",
                    get("Action").unwrap_or_default(),
                    get("Version").unwrap_or_default()
                ),
            );
        }
        match self.modify_instance_image(&get) {
            Ok(v) => (200, v),
            Err(f) => f,
        }
    }

    fn modify_instance_image<'a>(
        &self,
        get: &dyn Fn(&str) -> Option<&'a str>,
    ) -> Result<Value, (u16, Value)> {
        let bad = |(code, message): (&str, String)| fault(400, code, message);
        let instance_id = get("InstanceId").unwrap_or_default();
        let mut instances = self.instances.lock().unwrap_or_else(|p| p.into_inner());
        let Some(instance) = instances.get(instance_id).cloned() else {
            return Err(fault(
                400,
                "InstanceNotFound",
                format!("The instance {instance_id:?} does not exist."),
            ));
        };
        let image_id = get("ImageId").filter(|s| !s.is_empty());
        if let Some(id) = image_id {
            rules::image_id(id).map_err(bad)?;
        }
        let target = image_id.unwrap_or(&instance.image_id).to_string();
        let Some(image) = self.images.get(target.as_str()).copied() else {
            return Err(fault(
                400,
                "ImageIdInvalidParameterValue",
                "An invalid or out-of-range value was supplied for the \"ImageId\" parameter.",
            ));
        };
        // KeepImageLogin only applies to custom images (docs/CLOUD-API.md §KEC).
        let keep =
            image.custom && get("KeepImageLogin").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        match get("InstancePassword") {
            // KeepImageLogin=true makes InstancePassword ignored (docs/CLOUD-API.md §KEC).
            _ if keep => {}
            Some(p) => rules::password(p).map_err(bad)?,
            None => {
                return Err(fault(
                    400,
                    "MissingParameter",
                    "InstancePassword is required (KeepImageLogin=true applies to custom images only).",
                ));
            }
        }
        let keys: Vec<String> = (1..=MAX_KEYS + 1)
            .filter_map(|n| get(&format!("KeyId.{n}")).map(str::to_string))
            .collect();
        rules::key_ids(&keys).map_err(bad)?;
        if let Some(k) = keys.iter().find(|k| k.as_str() != KEY_ID) {
            return Err(fault(
                400,
                "KeyIdInvalidParameterValue",
                format!(
                    "An invalid or out-of-range value was supplied for the \"KeyId\" parameter: {k}."
                ),
            ));
        }
        if !keys.is_empty() && !image.key_login {
            return Err(fault(
                400,
                "ImageTypeNotSupportedKeyLogin",
                "The ImageType for this not supported KeyLogin",
            ));
        }
        if image.data_disk_snapshot {
            return Err(fault(
                400,
                "AssembledImageNotSupportReinstallSystem",
                "You cannot reinstall the system by using an image that contains a data disk snapshot.",
            ));
        }
        if let Some(size) = get("SystemDisk.DiskSize") {
            let ok = size
                .parse::<u32>()
                .is_ok_and(|gb| (image.min_disk_gb..=MAX_SYSTEM_DISK_GB).contains(&gb));
            if !ok {
                return Err(fault(
                    400,
                    "RootDiskGbInvalidParameterValue",
                    "An invalid or out-of-range value was supplied for the \"RootDiskGb\" parameter.",
                ));
            }
        }
        if let Some(r) = get("SystemDisk.ResizeType")
            && !matches!(r, "offline" | "online")
        {
            return Err(fault(
                400,
                "InvalidParameterValue",
                "SystemDisk.ResizeType is offline or online.",
            ));
        }
        if let Some(u) = get("UserData") {
            rules::user_data(u).map_err(bad)?;
        }
        if instance.spot {
            return Err(fault(
                400,
                "OperationDenied.SpotInstance",
                "The operation is not permitted due to charge type of the instance.",
            ));
        }
        if instance.state != "Stopped" {
            return Err(fault(
                400,
                "InstanceStateNotSupported",
                "The InstanceState for this action should be \"Stopped\"",
            ));
        }
        if let Some(i) = instances.get_mut(instance_id) {
            i.image_id = target;
            i.state = "Running".to_string();
        }
        self.persist(&instances)?;
        Ok(json!({ "Return": true }))
    }
}

/// Checks the SigV4 `Authorization` of `req` against the test key at `now`.
fn authenticate(req: &Incoming<'_>, now: i64) -> Result<(), (u16, Value)> {
    let header = |n: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let auth = sigv4::parse_authorization(header("authorization").unwrap_or_default()).ok_or_else(
        || {
            fault(
                400,
                "IncompleteSignature",
                "The Authorization header needs Credential, SignedHeaders and Signature.",
            )
        },
    )?;
    for must in ["host", "x-amz-date"] {
        if !auth.signed_headers.iter().any(|h| h == must) {
            return Err(fault(
                400,
                "IncompleteSignature",
                format!("The header {must} must be signed."),
            ));
        }
    }
    let mut sorted = auth.signed_headers.clone();
    sorted.sort();
    sorted.dedup();
    if sorted != auth.signed_headers {
        return Err(fault(
            400,
            "IncompleteSignature",
            "SignedHeaders must be lower-case, sorted and unique.",
        ));
    }
    if let Some(missing) = sorted.iter().find(|n| header(n).is_none()) {
        return Err(fault(
            400,
            "IncompleteSignature",
            format!("The signed header {missing} is missing."),
        ));
    }
    if auth.access_key_id != TEST_ACCESS_KEY_ID {
        return Err(fault(
            403,
            "InvalidClientTokenId",
            "The AccessKey ID in the request does not exist.",
        ));
    }
    let amz_date = header("x-amz-date").unwrap_or_default();
    let when = sigv4::parse_amz_date(amz_date).ok_or_else(|| {
        fault(
            400,
            "IncompleteSignature",
            "x-amz-date is not yyyymmddThhmmssZ.",
        )
    })?;
    if (now - when).abs() > sigv4::WINDOW_SECS || !amz_date.starts_with(&auth.date) {
        return Err(fault(
            400,
            "RequestExpired",
            "The request is dated more than 15 minutes away from the server time.",
        ));
    }
    let payload_hash = sha256_hex(req.body);
    let signable = Signable {
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        signed: &sorted,
        payload_hash: &payload_hash,
        amz_date,
        region: &auth.region,
        service: &auth.service,
    };
    let expected = sigv4::signature(&signable, TEST_SECRET_KEY);
    if auth.service != KEC_SERVICE || expected != auth.signature {
        return Err(fault(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgport_base::secret::Secret;
    use imgport_cloud::ksyun::KsyunCredentials;
    use imgport_cloud::ksyun::sigv4::{KsyunConfig, SigV4Client};
    use std::time::{Duration, SystemTime};

    /// Signs with the client (aws-sigv4) and answers with the emulator (own verifier).
    fn exchange(secret: &str, params: &[(&str, &str)], tamper: bool) -> (u16, Value) {
        let mut cfg = KsyunConfig::new("cn-beijing-6");
        cfg.endpoint = Some("http://127.0.0.1:9".into());
        let client = SigV4Client::new(
            cfg,
            KsyunCredentials {
                access_key_id: TEST_ACCESS_KEY_ID.into(),
                secret_access_key: Secret::new(secret),
            },
        )
        .unwrap();
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let now = 1_700_000_000;
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(now as u64);
        let mut req = client
            .build_request(
                KEC_SERVICE,
                "ModifyInstanceImage",
                KEC_VERSION,
                &params,
                time,
            )
            .unwrap();
        if tamper {
            req.body.push(b'1');
        }
        let query = super::super::form::parse_form(req.url.split_once('?').unwrap().1);
        let form = super::super::form::parse_form(&String::from_utf8_lossy(&req.body));
        let incoming = Incoming {
            method: req.method,
            path: "/",
            query: &query,
            form: &form,
            headers: &req.headers,
            body: &req.body,
        };
        Kec::new().handle(&incoming, now)
    }

    #[test]
    fn verifies_what_aws_sigv4_signs() {
        let ok = [
            ("InstanceId", INSTANCE_STOPPED),
            ("InstancePassword", "1qaQ!abc"),
        ];
        let (status, body) = exchange(TEST_SECRET_KEY, &ok, false);
        assert_eq!((status, &body["Return"]), (200, &json!(true)), "{body}");
        let (status, body) = exchange("wrong", &ok, false);
        assert_eq!(
            (status, &body["Error"]["Code"]),
            (403, &json!("SignatureDoesNotMatch"))
        );
        let (status, body) = exchange(TEST_SECRET_KEY, &ok, true);
        assert_eq!(
            (status, &body["Error"]["Code"]),
            (403, &json!("SignatureDoesNotMatch"))
        );
        let spot = [
            ("InstanceId", INSTANCE_SPOT),
            ("InstancePassword", "1qaQ!abc"),
        ];
        let (_, body) = exchange(TEST_SECRET_KEY, &spot, false);
        assert_eq!(body["Error"]["Code"], "OperationDenied.SpotInstance");
    }
}
