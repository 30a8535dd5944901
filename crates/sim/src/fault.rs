//! The error answer every emulated API returns, apart from the APIs so that request
//! authentication and object checks can fail without depending on the ECS emulation.

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
