//! What reading an LVM2 physical volume can fail with.

/// Errors reading a PV.
#[derive(Debug, thiserror::Error)]
pub enum LvmError {
    #[error("lvm2: reading the PV at byte {offset}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("lvm2: {what}: {rule}")]
    Corrupt { what: String, rule: String },
}

pub(super) fn corrupt(what: &str, rule: impl Into<String>) -> LvmError {
    LvmError::Corrupt {
        what: what.into(),
        rule: rule.into(),
    }
}
