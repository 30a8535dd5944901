//! The OVF manifest (`.mf`): one `ALGORITHM(file name)= hex digest` line per file.

use std::collections::BTreeMap;

use super::digest::Algorithm;

/// Most bytes a manifest may have (a line per file, a few dozen files).
pub const MAX_MANIFEST: u64 = 1 << 20;

/// The digest of each file the manifest names.
pub type Entries = BTreeMap<String, (Algorithm, String)>;

/// Reads a manifest; `Err` names the line and the rule it breaks.
pub fn parse(text: &str) -> Result<Entries, String> {
    let mut entries = Entries::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        let (alg, rest) = line
            .split_once('(')
            .ok_or_else(|| bad("not `ALGORITHM(file)= digest`"))?;
        let (name, digest) = rest
            .rsplit_once(")=")
            .ok_or_else(|| bad("not `ALGORITHM(file)= digest`"))?;
        let algorithm = Algorithm::from_name(alg.trim())
            .ok_or_else(|| bad("the algorithm is not SHA1, SHA256 or SHA512"))?;
        let digest = digest.trim().to_ascii_lowercase();
        if digest.len() != algorithm.hex_len() || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(&format!(
                "a {} digest is {} hex digits",
                algorithm.name(),
                algorithm.hex_len()
            )));
        }
        if entries
            .insert(name.to_string(), (algorithm, digest))
            .is_some()
        {
            return Err(bad("the file is named twice"));
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_both_forms() {
        let sha1 = "a".repeat(40);
        let sha256 = "B".repeat(64);
        let text = format!("SHA1(vm.ovf)= {sha1}\nSHA256(disk1.vmdk)={sha256}\n\n");
        let e = parse(&text).unwrap();
        assert_eq!(e["vm.ovf"], (Algorithm::Sha1, sha1));
        assert_eq!(e["disk1.vmdk"].1, "b".repeat(64));
        assert!(parse("MD5(x)= 00").is_err());
        assert!(parse("SHA1(x)= 00").is_err());
        assert!(
            parse(&format!(
                "SHA1(x)= {}\nSHA1(x)= {}",
                "0".repeat(40),
                "0".repeat(40)
            ))
            .is_err()
        );
    }
}
