//! Alibaba Cloud credentials (AccessKey pair, optional STS token), shared by the OSS uploader
//! and the RPC client.

use crate::secret::Secret;

/// An AccessKey pair with an optional STS security token.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Option<Secret>,
}
