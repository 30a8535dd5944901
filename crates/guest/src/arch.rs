//! CPU architecture of guest executables, from their headers alone (no `file(1)`).
//!
//! Owns the [`Arch`] names ImportImage uses and the header parsers that yield them. Currently
//! PE (the COFF `Machine` field, as libguestfs uses `file` on `System32\cmd.exe`;
//! docs/INSPECTION.md §Architecture). Must not read files itself: callers hand in the first bytes
//! of one.

/// An architecture as ImportImage names it (`Architecture` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    I386,
    X86_64,
    Arm64,
}

impl Arch {
    /// `i386`, `x86_64` or `arm64`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::I386 => "i386",
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }
}

/// COFF machine types (PE/COFF specification, "Machine Types").
const IMAGE_FILE_MACHINE_I386: u16 = 0x014C;
const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
const IMAGE_FILE_MACHINE_ARM64: u16 = 0xAA64;

/// The raw COFF `Machine` of a PE file: `MZ` at 0, the offset of `PE\0\0` at 0x3C, the
/// machine right after the signature. `None` when the bytes are not a PE header.
pub fn pe_machine_raw(bytes: &[u8]) -> Option<u16> {
    if bytes.len() < 0x40 || &bytes[0..2] != b"MZ" {
        return None;
    }
    let lfanew = imgport_base::bytes::get_le32(bytes, 0x3C)? as usize;
    let sig = bytes.get(lfanew..lfanew.checked_add(6)?)?;
    if &sig[0..4] != b"PE\0\0" {
        return None;
    }
    imgport_base::bytes::get_le16(sig, 4)
}

/// The architecture of a PE file from its header bytes (the first 4 KiB are plenty); `None`
/// when not a PE file or of another machine.
pub fn pe_machine(bytes: &[u8]) -> Option<Arch> {
    match pe_machine_raw(bytes)? {
        IMAGE_FILE_MACHINE_I386 => Some(Arch::I386),
        IMAGE_FILE_MACHINE_AMD64 => Some(Arch::X86_64),
        IMAGE_FILE_MACHINE_ARM64 => Some(Arch::Arm64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DOS header with `e_lfanew` = 0x80, then `PE\0\0` and the machine.
    fn pe(machine: u16) -> Vec<u8> {
        let mut b = vec![0u8; 0x200];
        b[0..2].copy_from_slice(b"MZ");
        b[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        b[0x84..0x86].copy_from_slice(&machine.to_le_bytes());
        b
    }

    #[test]
    fn machines() {
        assert_eq!(pe_machine(&pe(0x14C)), Some(Arch::I386));
        assert_eq!(pe_machine(&pe(0x8664)), Some(Arch::X86_64));
        assert_eq!(pe_machine(&pe(0xAA64)), Some(Arch::Arm64));
        assert_eq!(pe_machine(&pe(0x01C4)), None);
        assert_eq!(pe_machine_raw(&pe(0x01C4)), Some(0x01C4));
        assert_eq!(Arch::X86_64.as_str(), "x86_64");
        assert_eq!(Arch::I386.as_str(), "i386");
        assert_eq!(Arch::Arm64.as_str(), "arm64");
    }

    #[test]
    fn refuses_non_pe() {
        let mut b = pe(0x8664);
        b[0] = b'X';
        assert_eq!(pe_machine(&b), None);
        let mut b = pe(0x8664);
        b[0x81] = b'X';
        assert_eq!(pe_machine(&b), None);
        // e_lfanew past the end, and near u32::MAX (no overflow).
        for lfanew in [0x1FCu32, u32::MAX] {
            let mut b = pe(0x8664);
            b[0x3C..0x40].copy_from_slice(&lfanew.to_le_bytes());
            assert_eq!(pe_machine(&b), None);
        }
        assert_eq!(pe_machine(b"MZ"), None);
        assert_eq!(pe_machine(&[]), None);
    }
}
