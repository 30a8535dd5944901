//! Kingsoft Cloud (ksyun): credentials, the AWS Signature V4 client ([`sigv4`], signing by the
//! `aws-sigv4` crate) and typed KEC 2016-03-04 requests ([`kec`]).
//!
//! Owns: KEC request building, validation by the rules of docs/CLOUD-API.md §KEC, SigV4 signing,
//! error parsing. Must not touch Alibaba Cloud signing; it shares only the plain HTTP seam
//! ([`crate::aliyun::transport`]) and the rule-failure type
//! ([`crate::aliyun::validate::Invalid`]).

pub mod kec;
pub mod sigv4;

use imgport_base::secret::Secret;

/// Environment variable of the AccessKey ID (the name ksyun's SDKs and Terraform read).
pub const ENV_ACCESS_KEY: &str = "KSYUN_ACCESS_KEY";
/// Environment variable of the secret key.
pub const ENV_SECRET_KEY: &str = "KSYUN_SECRET_KEY";
/// Environment variable of the region, e.g. `cn-beijing-6`.
pub const ENV_REGION: &str = "KSYUN_REGION";

/// A ksyun AccessKey pair.
#[derive(Debug, Clone)]
pub struct KsyunCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
}
