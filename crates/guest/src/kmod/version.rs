//! Ordering of Linux kernel version strings (`5.14.0-362.el9.x86_64`, `6.1.0-18-amd64`,
//! `5.14.21-150500.55.39-default`), in the manner of rpm's `rpmvercmp`: the strings are split
//! into runs of digits and runs of letters, digits compare as numbers, a digit run is newer than
//! a letter run, and `~` sorts before anything (pre-releases).

use std::cmp::Ordering;

/// Compares two kernel versions; `Greater` means `a` is newer.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        a = skip_separators(a);
        b = skip_separators(b);
        // '~' sorts before everything, even the end of the string.
        match (a.first() == Some(&b'~'), b.first() == Some(&b'~')) {
            (true, true) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let numeric = a[0].is_ascii_digit();
        if numeric != b[0].is_ascii_digit() {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let run = |s: &[u8]| {
            s.iter()
                .take_while(|c| {
                    if numeric {
                        c.is_ascii_digit()
                    } else {
                        c.is_ascii_alphabetic()
                    }
                })
                .count()
        };
        let (la, lb) = (run(a), run(b));
        let (sa, sb) = (&a[..la], &b[..lb]);
        let ord = if numeric {
            let sa = trim_zeros(sa);
            let sb = trim_zeros(sb);
            sa.len().cmp(&sb.len()).then_with(|| sa.cmp(sb))
        } else {
            sa.cmp(sb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[la..];
        b = &b[lb..];
    }
}

fn skip_separators(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .take_while(|c| !c.is_ascii_alphanumeric() && **c != b'~')
        .count();
    &s[n..]
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b'0').count();
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn kernel_versions_order() {
        for (a, b, want) in [
            ("5.14.0-362.el9.x86_64", "5.14.0-70.el9", Greater),
            ("5.14.0-70.el9.x86_64", "5.14.0-362.el9.x86_64", Less),
            ("6.1.0-18-amd64", "6.1.0-9-amd64", Greater),
            ("6.1.0-18-amd64", "6.10.0-1-amd64", Less),
            ("6.1.0-18-amd64", "6.1.0-18-amd64", Equal),
            (
                "4.18.0-513.5.1.el8_9.x86_64",
                "4.18.0-513.el8.x86_64",
                Greater,
            ),
            (
                "5.14.21-150500.55.39-default",
                "5.14.21-150500.55.7-default",
                Greater,
            ),
            ("5.15.0-91-generic", "5.15.0-100-generic", Less),
            ("6.1.0-007", "6.1.0-7", Equal),
            ("6.1.0~rc1", "6.1.0", Less),
            ("6.1.0", "6.1.0.1", Less),
            ("6.1.0a", "6.1.0.1", Less),
            ("", "1", Less),
        ] {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn sorting_a_list() {
        let mut v = vec![
            "5.14.0-70.el9",
            "5.14.0-362.el9.x86_64",
            "5.14.0-284.11.1.el9_2.x86_64",
        ];
        v.sort_by(|a, b| compare_versions(b, a));
        assert_eq!(
            v,
            [
                "5.14.0-362.el9.x86_64",
                "5.14.0-284.11.1.el9_2.x86_64",
                "5.14.0-70.el9"
            ]
        );
    }
}
