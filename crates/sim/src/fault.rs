//! The error answer every emulated API returns, apart from the APIs so that request
//! authentication and object checks can fail without depending on the ECS emulation.

use imgport_cloud::aliyun::validate::Invalid;

/// An error answer: HTTP status, ECS code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFault {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ApiFault {
    /// A fault with `status`, `code` and `message`.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl From<Invalid> for ApiFault {
    /// A broken parameter rule: 400, except the codes the docs list under 403.
    fn from(e: Invalid) -> Self {
        let status = match e.code {
            "TagKey.Duplication" => 403,
            _ => 400,
        };
        let message = if e.code == "MissingParameter" {
            e.rule
        } else {
            format!(
                "The specified parameter \"{}\" is not valid: {}.",
                e.field, e.rule
            )
        };
        ApiFault::new(status, e.code, message)
    }
}
