//! Kingsoft Cloud (ksyun, KEC) credentials, the chain's [`crate::Cloud::Kingsoft`] branch
//! (docs/CLOUD-API.md §KEC, "Credentials"): flags → `KSYUN_ACCESS_KEY` / `KSYUN_SECRET_KEY`
//! (Kingsoft's Terraform provider) → `KS_ACCESS_KEY_ID` / `KS_SECRET_ACCESS_KEY` with
//! `KS_SECURITY_TOKEN` or `KS_SESSION_TOKEN` (the Kingsoft Python SDK, kscore) → the SDK's
//! shared credentials file (`KS_SHARED_CREDENTIALS_FILE`, else `~/.ks/credentials`; section
//! `[NAME]`) → its config file (`KS_CONFIG_FILE`, else `~/.ks/config`; `[default]` or
//! `[profile NAME]`). Both files are INI with `ks_access_key_id`, `ks_secret_access_key` and
//! an optional `ks_security_token` / `ks_session_token`. The profile is `--profile`, else
//! `KS_PROFILE`, else `KS_DEFAULT_PROFILE`, else `default`; as in the SDK, a profile named
//! by flag or variable skips the `KS_*` key variables.
//!
//! Errors name the file, the line or the section and key, and the rule; never a value.

use std::path::{Path, PathBuf};

use imgport_base::secret::Secret;

use super::model::{CredentialError, CredentialSource, Credentials, MAX_CONFIG_BYTES};

/// What the command line gave.
#[derive(Debug, Default)]
pub(crate) struct Flags<'a> {
    pub access_key_id: Option<&'a str>,
    pub access_key_secret: Option<&'a Secret>,
    pub security_token: Option<&'a Secret>,
    pub profile: Option<&'a str>,
}

/// Key of the AccessKey ID in the SDK's files.
const KEY_ID: &str = "ks_access_key_id";
/// Key of the secret.
const KEY_SECRET: &str = "ks_secret_access_key";
/// Keys of an STS token, in the SDK's order.
const KEY_TOKENS: [&str; 2] = ["ks_security_token", "ks_session_token"];

/// Kingsoft credentials from `opts` (the flags) and `var` (the environment).
pub(crate) fn resolve(
    opts: &Flags<'_>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<(Credentials, CredentialSource), CredentialError> {
    match (opts.access_key_id, opts.access_key_secret) {
        (Some(id), Some(secret)) => {
            let c = Credentials {
                access_key_id: id.to_string(),
                access_key_secret: secret.clone(),
                security_token: opts.security_token.cloned(),
            };
            return Ok((c, CredentialSource::Flags));
        }
        (Some(_), None) | (None, Some(_)) => return Err(CredentialError::Incomplete),
        (None, None) => {}
    }
    let pair = |id: &str, secret: &str| Some((var(id)?, var(secret)?));
    if let Some((id, secret)) = pair("KSYUN_ACCESS_KEY", "KSYUN_SECRET_KEY") {
        let c = Credentials {
            access_key_id: id,
            access_key_secret: Secret::new(secret),
            security_token: None,
        };
        return Ok((c, CredentialSource::Environment));
    }
    let named = opts
        .profile
        .map(str::to_string)
        .or_else(|| var("KS_PROFILE"))
        .or_else(|| var("KS_DEFAULT_PROFILE"));
    if named.is_none()
        && let Some((id, secret)) = pair("KS_ACCESS_KEY_ID", "KS_SECRET_ACCESS_KEY")
    {
        let c = Credentials {
            access_key_id: id,
            access_key_secret: Secret::new(secret),
            security_token: var("KS_SECURITY_TOKEN")
                .or_else(|| var("KS_SESSION_TOKEN"))
                .map(Secret::new),
        };
        return Ok((c, CredentialSource::Environment));
    }
    let profile = named.clone().unwrap_or_else(|| "default".to_string());
    let home = var("HOME");
    let file = |env: &str, rel: &str| {
        var(env)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| Path::new(h).join(rel)))
    };
    let shared = file("KS_SHARED_CREDENTIALS_FILE", ".ks/credentials");
    let config = file("KS_CONFIG_FILE", ".ks/config");
    let mut looked = Vec::new();
    for (path, section) in [
        (shared, profile.clone()),
        (
            config,
            if profile == "default" {
                profile.clone()
            } else {
                format!("profile {profile}")
            },
        ),
    ] {
        let Some(path) = path.filter(|p| p.exists()) else {
            continue;
        };
        if let Some(c) = read_section(&path, &section)? {
            return Ok((c, CredentialSource::Profile(profile)));
        }
        looked.push(path);
    }
    match (named, looked.first()) {
        (Some(name), Some(path)) => Err(CredentialError::NoProfile {
            path: path.clone(),
            name,
        }),
        _ => Err(CredentialError::KsyunNotFound),
    }
}

/// The credentials of `[section]` in the INI file `path`: `None` when the file has no such
/// section; an error when it is not INI or the section lacks a key.
pub(crate) fn read_section(
    path: &Path,
    section: &str,
) -> Result<Option<Credentials>, CredentialError> {
    use std::io::Read;
    let bad = |line: Option<usize>, rule: &'static str| CredentialError::KsyunFile {
        path: path.to_path_buf(),
        line,
        rule,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|source| CredentialError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(bad(None, "larger than 1 MiB: not a credentials file"));
    }
    let text = String::from_utf8(bytes).map_err(|_| bad(None, "not UTF-8 text"))?;
    if let Some((line, rule)) = line_rule(&text) {
        return Err(bad(Some(line), rule));
    }
    // rust-ini's messages may quote a character of the file (a secret): only the line is kept.
    let ini = ini::Ini::load_from_str(&text).map_err(|e| {
        bad(
            Some(e.line),
            "expected `[section]`, `key = value` or a `#`/`;` comment",
        )
    })?;
    let Some(props) = ini.section(Some(section)) else {
        return Ok(None);
    };
    let need = |key: &'static str| {
        props
            .get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| CredentialError::ProfileField {
                path: path.to_path_buf(),
                name: section.to_string(),
                field: key,
            })
    };
    Ok(Some(Credentials {
        access_key_id: need(KEY_ID)?,
        access_key_secret: Secret::new(need(KEY_SECRET)?),
        security_token: KEY_TOKENS
            .iter()
            .find_map(|k| props.get(k).map(str::trim).filter(|v| !v.is_empty()))
            .map(Secret::new),
    }))
}

/// The first line (1-based) that breaks a rule of the SDK's INI files, and the rule:
/// rust-ini reports an unclosed `[` only at the end of the file and keeps keys before any
/// section in a nameless one, where the SDK's parser refuses both on their line.
fn line_rule(text: &str) -> Option<(usize, &'static str)> {
    let mut in_section = false;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        let rule = if t.starts_with('[') {
            in_section = true;
            (!t.ends_with(']') || t.len() < 3)
                .then_some("a `[section]` header needs a name and `]`")
        } else if !t.contains('=') && !t.contains(':') {
            Some("expected `[section]`, `key = value` or a `#`/`;` comment")
        } else {
            (!in_section).then_some("a `key = value` line before any `[section]`")
        };
        if let Some(rule) = rule {
            return Some((n + 1, rule));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(
        opts: &Flags<'_>,
        vars: &[(&str, &str)],
    ) -> Result<(Credentials, CredentialSource), CredentialError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(opts, &|k| map.get(k).cloned())
    }

    const SECRET: &str = "sk-very-secret-value";

    fn home_with(credentials: &str, config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".ks")).unwrap();
        if !credentials.is_empty() {
            std::fs::write(dir.path().join(".ks/credentials"), credentials).unwrap();
        }
        if !config.is_empty() {
            std::fs::write(dir.path().join(".ks/config"), config).unwrap();
        }
        dir
    }

    #[test]
    fn flags_then_terraform_env_then_sdk_env_then_files() {
        let home = home_with(
            &format!("[default]\nks_access_key_id = AKLTfile\nks_secret_access_key = {SECRET}\n"),
            "",
        );
        let h = home.path().to_str().unwrap();
        let env = [
            ("KSYUN_ACCESS_KEY", "AKLTtf"),
            ("KSYUN_SECRET_KEY", "s1"),
            ("KS_ACCESS_KEY_ID", "AKLTsdk"),
            ("KS_SECRET_ACCESS_KEY", "s2"),
            ("KS_SESSION_TOKEN", "tok"),
            ("HOME", h),
        ];
        let s0 = Secret::new("s0");
        let flags = Flags {
            access_key_id: Some("AKLTflag"),
            access_key_secret: Some(&s0),
            ..Flags::default()
        };
        let id = |r: Result<(Credentials, CredentialSource), CredentialError>| {
            let (c, s) = r.unwrap();
            (c.access_key_id, s)
        };
        assert_eq!(
            id(run(&flags, &env)),
            ("AKLTflag".into(), CredentialSource::Flags)
        );
        let none = Flags::default();
        assert_eq!(
            id(run(&none, &env)),
            ("AKLTtf".into(), CredentialSource::Environment)
        );
        let (c, _) = run(&none, &env[2..]).unwrap();
        assert_eq!(c.access_key_id, "AKLTsdk");
        assert_eq!(c.security_token.unwrap().expose(), "tok");
        let (c, s) = run(&none, &env[5..]).unwrap();
        assert_eq!(c.access_key_id, "AKLTfile");
        assert_eq!(c.access_key_secret.expose(), SECRET);
        assert!(c.security_token.is_none());
        assert_eq!(s, CredentialSource::Profile("default".into()));
        assert!(matches!(
            run(&none, &[("HOME", "/nonexistent")]),
            Err(CredentialError::KsyunNotFound)
        ));
    }

    #[test]
    fn profiles_of_the_credentials_and_config_files() {
        let home = home_with(
            "# comment\n[default]\nks_access_key_id = AKLTa\nks_secret_access_key = sa\n\n\
             [work]\nks_access_key_id=AKLTw\nks_secret_access_key=sw\nks_security_token=t\n",
            "[profile ops]\nks_access_key_id = AKLTops\nks_secret_access_key = so\n",
        );
        let h = home.path().to_str().unwrap();
        let named = |p| Flags {
            profile: Some(p),
            ..Flags::default()
        };
        // A named profile wins over the SDK's key variables, as in the SDK.
        let env = [
            ("HOME", h),
            ("KS_ACCESS_KEY_ID", "AKLTsdk"),
            ("KS_SECRET_ACCESS_KEY", "s2"),
        ];
        let (c, s) = run(&named("work"), &env).unwrap();
        assert_eq!(c.access_key_id, "AKLTw");
        assert_eq!(c.security_token.unwrap().expose(), "t");
        assert_eq!(s, CredentialSource::Profile("work".into()));
        let (c, _) = run(&named("ops"), &env).unwrap();
        assert_eq!(c.access_key_id, "AKLTops");
        let (c, _) = run(&Flags::default(), &[("HOME", h), ("KS_PROFILE", "work")]).unwrap();
        assert_eq!(c.access_key_id, "AKLTw");
        let err = run(&named("nope"), &env).unwrap_err();
        assert!(
            matches!(&err, CredentialError::NoProfile { name, .. } if name == "nope"),
            "{err}"
        );
        // The files may be elsewhere.
        let other = home.path().join("creds.ini");
        std::fs::write(
            &other,
            "[default]\nks_access_key_id = AKLTx\nks_secret_access_key = sx\n",
        )
        .unwrap();
        let (c, _) = run(
            &Flags::default(),
            &[("KS_SHARED_CREDENTIALS_FILE", other.to_str().unwrap())],
        )
        .unwrap();
        assert_eq!(c.access_key_id, "AKLTx");
    }

    #[test]
    fn malformed_files_name_the_file_line_and_rule_never_the_secret() {
        let cases = [
            (
                format!("ks_access_key_id = AKLT\nks_secret_access_key = {SECRET}\n"),
                "line 1",
                "before any `[section]`",
            ),
            (
                format!(
                    "[default]\nks_access_key_id = AKLT\n[default\nks_secret_access_key = {SECRET}\n"
                ),
                "line 3",
                "needs a name and `]`",
            ),
            (
                format!("[default]\nks_access_key_id = AKLT\n{SECRET}\n"),
                "line 3",
                "expected `[section]`",
            ),
            (
                format!("[default]\nks_secret_access_key = {SECRET}\n"),
                "\"default\"",
                "lacks ks_access_key_id",
            ),
            (
                "[default]\nks_access_key_id = AKLT\nks_secret_access_key =   \n".to_string(),
                "\"default\"",
                "lacks ks_secret_access_key",
            ),
        ];
        for (text, at, rule) in cases {
            let home = home_with(&text, "");
            let env = [("HOME", home.path().to_str().unwrap())];
            let err = run(&Flags::default(), &env).unwrap_err().to_string();
            let path = home.path().join(".ks/credentials");
            assert!(
                err.contains(path.to_str().unwrap()) && err.contains(at) && err.contains(rule),
                "{text:?}: {err}"
            );
            assert!(!err.contains(SECRET), "{err}");
        }
        let home = home_with("", "");
        std::fs::write(home.path().join(".ks/credentials"), [0xffu8, 0xfe, b'\n']).unwrap();
        let env = [("HOME", home.path().to_str().unwrap())];
        let err = run(&Flags::default(), &env).unwrap_err().to_string();
        assert!(err.contains("not UTF-8"), "{err}");
    }
}
