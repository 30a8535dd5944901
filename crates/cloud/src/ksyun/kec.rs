//! KEC (API 2016-03-04) ModifyInstanceImage: reinstall an instance's operating system, or
//! replace it with another image (docs/CLOUD-API.md §KEC). Its documented rules are pure
//! functions the client checks before any call; the emulator has its own reading of them.

use base64::Engine as _;
use serde::Deserialize;

use super::KsyunCredentials;
use super::sigv4::{KsyunConfig, KsyunError, SigV4Client};
use crate::aliyun::ecs::Params;
use crate::aliyun::validate::Invalid;
use imgport_base::secret::Secret;

/// KEC API version.
pub const KEC_VERSION: &str = "2016-03-04";
/// SigV4 service name of KEC.
pub const KEC_SERVICE: &str = "kec";
/// Most key pairs per instance (docs/CLOUD-API.md §KEC:
/// `InvalidParameter.InstanceKeyLimitExceeded`).
pub const MAX_KEYS: usize = 10;
/// Password length range (docs/CLOUD-API.md §KEC: 8 to 32 characters).
pub const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 8..=32;
/// Largest user-data file imgport reads before encoding (imgport's own bound, not a KEC
/// rule: user data is a small boot script).
pub const MAX_USER_DATA_BYTES: usize = 64 * 1024;

/// Whether `s` is a standard lower-case UUID `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`
/// (docs/CLOUD-API.md §KEC, InstanceId and ImageId).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// InstanceId: a UUID; the service answers `InstanceNotFound`.
pub fn instance_id(s: &str) -> Result<(), Invalid> {
    if is_uuid(s) {
        return Ok(());
    }
    Err(Invalid::new(
        "InstanceId",
        "InstanceNotFound",
        format!("must be a standard UUID like 98284100-f6d1-4bbf-886a-1b0765024738 (got {s:?})"),
    ))
}

/// ImageId: a UUID; the service answers `ImageIdInvalidParameterValue`.
pub fn image_id(s: &str) -> Result<(), Invalid> {
    if is_uuid(s) {
        return Ok(());
    }
    Err(Invalid::new(
        "ImageId",
        "ImageIdInvalidParameterValue",
        format!("must be a standard UUID like 8f12ad9e-ae9a-44b9-95f3-c4e65ce582e2 (got {s:?})"),
    ))
}

/// `KeyId.N` (1-based): a UUID (the documented example's form), at most [`MAX_KEYS`].
pub fn key_ids(keys: &[String]) -> Result<(), Invalid> {
    if keys.len() > MAX_KEYS {
        return Err(Invalid::new(
            format!("KeyId.{}", keys.len()),
            "InvalidParameter.InstanceKeyLimitExceeded",
            format!("at most {MAX_KEYS} key pairs per instance"),
        ));
    }
    for (i, k) in keys.iter().enumerate() {
        if !is_uuid(k) {
            return Err(Invalid::new(
                format!("KeyId.{}", i + 1),
                "KeyIdInvalidParameterValue",
                format!("a key id is a UUID (got {k:?})"),
            ));
        }
    }
    Ok(())
}

/// InstancePassword (docs/CLOUD-API.md §KEC): 8–32 visible ASCII characters with at least one
/// upper-case letter, one lower-case letter and one digit. The error never shows the password. The
/// code follows the `<Field>InvalidParameterValue` pattern of the documented error table
/// (unverified).
pub fn password(p: &str) -> Result<(), Invalid> {
    let fail = |rule: &str| {
        Err(Invalid::new(
            "InstancePassword",
            "InstancePasswordInvalidParameterValue",
            rule,
        ))
    };
    if !PASSWORD_LEN.contains(&p.chars().count()) {
        return fail("must be 8 to 32 characters long");
    }
    if !p.bytes().all(|b| b.is_ascii_graphic()) {
        return fail("may hold only visible ASCII characters");
    }
    let has = |f: fn(&u8) -> bool| p.as_bytes().iter().any(f);
    if !(has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase) && has(u8::is_ascii_digit)) {
        return fail("must contain upper-case and lower-case letters and digits");
    }
    Ok(())
}

/// UserData: standard base64 (docs/CLOUD-API.md §KEC: "must be base64 encoded").
pub fn user_data(b64: &str) -> Result<(), Invalid> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(|_| ())
        .map_err(|e| {
            Invalid::new(
                "UserData",
                "UserDataInvalidParameterValue",
                format!("must be base64 encoded ({e})"),
            )
        })
}

/// How the reinstalled system is logged into: exactly one (docs/CLOUD-API.md §KEC: "KeepImageLogin
/// and InstancePassword: one of the two is required").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// `InstancePassword`.
    Password(Secret),
    /// `KeepImageLogin=true`: keep the login of the (custom) image.
    KeepImageLogin,
}

/// `SystemDisk.ResizeType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeType {
    Offline,
    Online,
}

impl ResizeType {
    /// Wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ResizeType::Offline => "offline",
            ResizeType::Online => "online",
        }
    }
}

/// ModifyInstanceImage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModifyInstanceImageRequest {
    pub instance_id: String,
    /// `None` reinstalls the current image.
    pub image_id: Option<String>,
    pub login: Login,
    pub key_ids: Vec<String>,
    /// `SystemDisk.DiskSize` in GB.
    pub system_disk_size: Option<u32>,
    /// `SystemDisk.DiskType`.
    pub system_disk_type: Option<String>,
    pub resize_type: Option<ResizeType>,
    /// Already base64 encoded; see [`ModifyInstanceImageRequest::user_data_bytes`].
    pub user_data: Option<String>,
}

impl ModifyInstanceImageRequest {
    /// Reinstalls `instance_id` with `login`.
    pub fn new(instance_id: impl Into<String>, login: Login) -> Self {
        Self {
            instance_id: instance_id.into(),
            image_id: None,
            login,
            key_ids: Vec::new(),
            system_disk_size: None,
            system_disk_type: None,
            resize_type: None,
            user_data: None,
        }
    }

    /// Sets UserData from raw bytes (base64 encoded here).
    pub fn user_data_bytes(mut self, data: &[u8]) -> Self {
        self.user_data = Some(base64::engine::general_purpose::STANDARD.encode(data));
        self
    }

    /// Checks every rule of docs/CLOUD-API.md §KEC; the first broken one is the error.
    pub fn validate(&self) -> Result<(), Invalid> {
        instance_id(&self.instance_id)?;
        if let Some(i) = &self.image_id {
            image_id(i)?;
        }
        if let Login::Password(p) = &self.login {
            password(p.expose())?;
        }
        key_ids(&self.key_ids)?;
        if self.system_disk_size == Some(0) {
            return Err(Invalid::new(
                "SystemDisk.DiskSize",
                "RootDiskGbInvalidParameterValue",
                "the system disk size is a positive number of GB",
            ));
        }
        if let Some(u) = &self.user_data {
            user_data(u)?;
        }
        Ok(())
    }

    /// Wire parameters (form body); `KeyId.N` is 1-based as the docs write it.
    pub fn params(&self) -> Params {
        let mut p = Params::default();
        p.put("InstanceId", &self.instance_id);
        p.put_opt("ImageId", self.image_id.as_ref());
        p.put_opt("SystemDisk.DiskSize", self.system_disk_size);
        p.put_opt("SystemDisk.DiskType", self.system_disk_type.as_ref());
        p.put_opt(
            "SystemDisk.ResizeType",
            self.resize_type.map(ResizeType::as_str),
        );
        match &self.login {
            Login::Password(s) => p.put("InstancePassword", s.expose()),
            Login::KeepImageLogin => p.put("KeepImageLogin", "true"),
        }
        p.put_list("KeyId", &self.key_ids);
        p.put_opt("UserData", self.user_data.as_ref());
        p
    }
}

/// ModifyInstanceImage's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ModifyInstanceImageResponse {
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub r#return: bool,
}

/// Typed KEC calls over the SigV4 client.
#[derive(Debug, Clone)]
pub struct KecClient {
    client: SigV4Client,
}

impl KecClient {
    /// A client for `config` with `credentials`.
    pub fn new(config: KsyunConfig, credentials: KsyunCredentials) -> Result<Self, KsyunError> {
        Ok(Self {
            client: SigV4Client::new(config, credentials)?,
        })
    }

    /// The underlying SigV4 client, for raw calls.
    pub fn sigv4(&self) -> &SigV4Client {
        &self.client
    }

    /// ModifyInstanceImage (checked first, sent once).
    pub async fn modify_instance_image(
        &self,
        request: &ModifyInstanceImageRequest,
    ) -> Result<ModifyInstanceImageResponse, KsyunError> {
        request.validate()?;
        let params = request.params().into_pairs();
        let body = self
            .client
            .call_raw(KEC_SERVICE, "ModifyInstanceImage", KEC_VERSION, &params)
            .await?;
        serde_json::from_slice(&body).map_err(|source| KsyunError::Decode {
            action: "ModifyInstanceImage",
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: &str = "98284100-f6d1-4bbf-886a-1b0765024738";
    const M: &str = "8f12ad9e-ae9a-44b9-95f3-c4e65ce582e2";

    fn code(r: &ModifyInstanceImageRequest) -> &'static str {
        r.validate().err().map_or("ok", |e| e.code)
    }

    #[test]
    fn uuid_rule() {
        assert!(is_uuid(I) && is_uuid(M));
        for bad in [
            "",
            "98284100f6d14bbf886a1b0765024738",
            "98284100-F6D1-4BBF-886A-1B0765024738",
            "98284100-f6d1-4bbf-886a-1b076502473",
            "98284100-f6d1-4bbf-886a-1b07650247388",
            "g8284100-f6d1-4bbf-886a-1b0765024738",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }

    #[test]
    fn a_negative_case_per_rule() {
        let ok = || {
            let mut r =
                ModifyInstanceImageRequest::new(I, Login::Password(Secret::new("1qaQ!abc")));
            r.image_id = Some(M.into());
            r
        };
        assert_eq!(code(&ok()), "ok");
        let mut r = ok();
        r.instance_id = "i-123".into();
        assert_eq!(code(&r), "InstanceNotFound");
        let mut r = ok();
        r.image_id = Some("IMG".into());
        assert_eq!(code(&r), "ImageIdInvalidParameterValue");
        for bad in [
            "1qaQ!ab",
            &format!("1qaQ{}", "x".repeat(29)),
            "1qaq!abc",
            "1QAQ!ABC",
            "qaQ!abcd",
            "1qaQ abc",
            "1qaQ!abcé",
        ] {
            let mut r = ok();
            r.login = Login::Password(Secret::new(bad));
            assert_eq!(code(&r), "InstancePasswordInvalidParameterValue", "{bad}");
            let e = r.validate().unwrap_err();
            assert!(!e.to_string().contains(bad));
        }
        let mut r = ok();
        r.login = Login::Password(Secret::new(format!("1qaQ{}", "x".repeat(28))));
        assert_eq!(code(&r), "ok");
        let mut r = ok();
        r.key_ids = vec![I.to_string(); 11];
        assert_eq!(code(&r), "InvalidParameter.InstanceKeyLimitExceeded");
        r.key_ids.truncate(10);
        assert_eq!(code(&r), "ok");
        r.key_ids[3] = "key-1".into();
        assert_eq!(code(&r), "KeyIdInvalidParameterValue");
        let mut r = ok();
        r.system_disk_size = Some(0);
        assert_eq!(code(&r), "RootDiskGbInvalidParameterValue");
        let mut r = ok();
        r.user_data = Some("not base64!".into());
        assert_eq!(code(&r), "UserDataInvalidParameterValue");
    }

    #[test]
    fn params_are_the_documented_names() {
        let mut r = ModifyInstanceImageRequest::new(I, Login::KeepImageLogin)
            .user_data_bytes(b"#!/bin/sh\necho hi\n");
        r.key_ids = vec![M.into(), I.into()];
        r.system_disk_size = Some(40);
        r.resize_type = Some(ResizeType::Online);
        let p = r.params();
        assert_eq!(p.get("KeepImageLogin"), Some("true"));
        assert_eq!(p.get("InstancePassword"), None);
        assert_eq!(p.get("KeyId.1"), Some(M));
        assert_eq!(p.get("KeyId.2"), Some(I));
        assert_eq!(p.get("SystemDisk.DiskSize"), Some("40"));
        assert_eq!(p.get("SystemDisk.ResizeType"), Some("online"));
        assert_eq!(p.get("UserData"), Some("IyEvYmluL3NoCmVjaG8gaGkK"));
        assert!(
            !format!(
                "{:?}",
                ModifyInstanceImageRequest::new(I, Login::Password(Secret::new("Secr3tPass")))
            )
            .contains("Secr3tPass")
        );
    }
}
