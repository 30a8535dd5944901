//! Credentials for the S3 client: the one chain of `credentials` (flags → env →
//! CLI profile → ECS RAM role → AWS variables for plain S3), handed to aws-sdk-s3 as static
//! credentials. The secret leaves its [`Secret`](imgport_base::secret::Secret) only here, into the
//! SDK's own redacting credentials type.

pub use imgport_credentials::{ChainOptions, CredentialSource, Credentials, Provider, resolve};

use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError, future};

/// The chain's [`Provider`] as the SDK's credentials provider: each load gives the renewed
/// credentials with their expiry, so the SDK's identity cache loads again before they expire
/// and a long upload never signs with an expired STS token.
#[derive(Debug)]
pub struct Renewing(pub Provider);

impl ProvideCredentials for Renewing {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let c = self
                .0
                .fresh()
                .await
                .map_err(CredentialsError::provider_error)?;
            Ok(aws_credential_types::Credentials::new(
                c.access_key_id.clone(),
                c.access_key_secret.expose().to_string(),
                c.security_token.as_ref().map(|t| t.expose().to_string()),
                self.0.expiration(),
                "imgport",
            ))
        })
    }
}

/// The SDK's credentials for `c`; an STS token becomes the session token
/// (`x-amz-security-token`, docs/CLOUD-API.md §Credentials).
pub fn to_sdk(c: &Credentials) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        c.access_key_id.clone(),
        c.access_key_secret.expose().to_string(),
        c.security_token.as_ref().map(|t| t.expose().to_string()),
        None,
        "imgport",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgport_base::secret::Secret;

    #[test]
    fn sdk_credentials_keep_values_and_hide_them() {
        let c = Credentials {
            access_key_id: "AKID".into(),
            access_key_secret: Secret::new("the-secret"),
            security_token: Some(Secret::new("the-token")),
        };
        let s = to_sdk(&c);
        assert_eq!(s.secret_access_key(), "the-secret");
        assert_eq!(s.session_token(), Some("the-token"));
        let text = format!("{s:?}");
        assert!(
            !text.contains("the-secret") && !text.contains("the-token"),
            "{text}"
        );
    }
}
