//! Findings: what a reader concludes about a file, and the verdict that collects them.

use serde::Serialize;

/// How serious a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A fact worth showing (snapshots present, size rounding).
    Info,
    /// Readable, but the user should know (dirty bit, hybrid MBR).
    Warning,
    /// The image is refused: reading or importing it is unsafe or impossible.
    Refuse,
}

/// One observation of the safety inspection, with a stable machine code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier of the rule, e.g. `qcow2.backing_file`.
    pub code: String,
    /// Human sentence naming the field, the offset and the rule.
    pub message: String,
    /// Header field the rule is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Byte offset in the file of the field, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

impl Finding {
    /// A finding with no field or offset.
    pub fn new(severity: Severity, code: &str, message: impl Into<String>) -> Self {
        Self {
            severity,
            code: code.to_string(),
            message: message.into(),
            field: None,
            offset: None,
        }
    }

    /// A finding about `field` stored at byte `offset` of the file.
    pub fn at(
        severity: Severity,
        code: &str,
        field: &str,
        offset: u64,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            code: code.to_string(),
            message: message.into(),
            field: Some(field.to_string()),
            offset: Some(offset),
        }
    }

    /// True when this finding refuses the image.
    pub fn refuses(&self) -> bool {
        self.severity == Severity::Refuse
    }
}

/// Collects a reader's findings while it judges a file, and remembers whether one refused.
/// Every message starts with the field and its offset, then states the rule broken.
pub(crate) struct Verdict<'a> {
    pub(crate) findings: &'a mut Vec<Finding>,
    pub(crate) refused: bool,
}

impl<'a> Verdict<'a> {
    /// A verdict that has refused nothing yet, recording into `findings`.
    pub(crate) fn new(findings: &'a mut Vec<Finding>) -> Self {
        Verdict {
            findings,
            refused: false,
        }
    }

    /// Records a refusal of `code` about `field` at file offset `offset`.
    pub(crate) fn refuse(&mut self, code: &str, field: &str, offset: u64, msg: String) {
        self.refused = true;
        self.findings.push(Finding::at(
            Severity::Refuse,
            code,
            field,
            offset,
            format!("{field} at offset {offset}: {msg}"),
        ));
    }

    /// Records a finding of severity `sev` (a refusal still counts as one).
    pub(crate) fn note(
        &mut self,
        sev: Severity,
        code: &str,
        field: &str,
        offset: u64,
        msg: String,
    ) {
        self.refused |= sev == Severity::Refuse;
        self.findings.push(Finding::at(
            sev,
            code,
            field,
            offset,
            format!("{field} at offset {offset}: {msg}"),
        ));
    }
}
