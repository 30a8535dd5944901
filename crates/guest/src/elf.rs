//! The architecture of an ELF binary from its header (`e_ident` and `e_machine`, System V
//! ABI §4): enough to tell a guest's userland (docs/INSPECTION.md §Architecture) without running
//! `file`.

/// Bytes of the header needed: `e_ident` (16), `e_type` (2), `e_machine` (2).
pub const HEADER_LEN: usize = 20;

/// The machine of the ELF image whose first bytes are `head`: `i386`, `x86_64` or `arm64`
/// (the values ImportImage accepts), or another name for machines it does not; `None` when
/// `head` is not an ELF header.
pub fn machine(head: &[u8]) -> Option<&'static str> {
    if head.len() < HEADER_LEN || &head[..4] != b"\x7fELF" {
        return None;
    }
    let class = head[4]; // 1 = 32-bit, 2 = 64-bit
    let m = match head[5] {
        1 => imgport_base::bytes::le16(head, 18),
        2 => imgport_base::bytes::be16(head, 18),
        _ => return None,
    };
    Some(match (m, class) {
        (3, _) => "i386",
        (62, _) => "x86_64",
        (183, _) => "arm64",
        (40, _) => "arm",
        (243, 2) => "riscv64",
        (243, _) => "riscv32",
        (21, _) => "ppc64",
        (20, _) => "ppc",
        (22, 2) => "s390x",
        (22, _) => "s390",
        (258, _) => "loongarch64",
        _ => "unknown",
    })
}

/// True for the architectures ImportImage accepts (docs/CLOUD-API.md §ImportImage `Architecture`).
pub fn importable(arch: &str) -> bool {
    matches!(arch, "i386" | "x86_64" | "arm64")
}

/// Userland binaries tried in order (docs/INSPECTION.md §Architecture): the first that exists
/// decides.
pub const PROBE_BINARIES: &[&str] = &["/bin/bash", "/bin/ls", "/bin/echo", "/bin/rm", "/bin/sh"];

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, m: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = class;
        h[5] = data;
        let b = if data == 1 {
            m.to_le_bytes()
        } else {
            m.to_be_bytes()
        };
        h[18..20].copy_from_slice(&b);
        h
    }

    #[test]
    fn machines() {
        assert_eq!(machine(&header(1, 1, 3)), Some("i386"));
        assert_eq!(machine(&header(2, 1, 62)), Some("x86_64"));
        assert_eq!(machine(&header(2, 1, 183)), Some("arm64"));
        assert_eq!(machine(&header(2, 2, 22)), Some("s390x"));
        assert_eq!(machine(&header(2, 3, 62)), None);
        assert_eq!(machine(b"\x7fELF"), None);
        assert_eq!(machine(&[0u8; 64]), None);
        assert!(importable("arm64") && !importable("s390x"));
    }
}
