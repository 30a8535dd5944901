//! Memory hints shared by the layers that fill large fresh buffers.

/// Asks for transparent huge pages on the 2 MiB-aligned middle of `len` bytes at `ptr`: a
/// fresh buffer of tens of MiB then takes a few dozen page faults instead of thousands, which
/// matters on VMs where first touch is slow (docs/LIMITS.md §Memory). Only a hint;
/// contents are unchanged.
pub fn advise_huge_pages(ptr: *const u8, len: usize) {
    const HUGE: usize = 2 << 20;
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize).saturating_add(len) & !(HUGE - 1);
    if end > start {
        // SAFETY: the range lies inside the caller's allocation; MADV_HUGEPAGE changes no
        // contents and cannot fail in a way that matters here.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

/// Bytes of memory this process may still take without swapping or meeting its container's
/// limit: the kernel's `MemAvailable`, lowered by the room left under a cgroup (v2 or v1)
/// limit. `None` where neither is known (not Linux).
pub fn available() -> Option<u64> {
    let host = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| meminfo_available(&t));
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| cgroup_room(&t, |p| std::fs::read_to_string(p).ok()));
    host.into_iter().chain(cgroup).min()
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn meminfo_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// Room under the memory limit of the cgroup named in a `/proc/self/cgroup` text: limit
/// minus usage, read through `read` (a path to its text). The group's own directory is
/// tried first, then the mount's root (a container sees its group there). `None` when no
/// limit is set.
fn cgroup_room(self_cgroup: &str, read: impl Fn(&str) -> Option<String>) -> Option<u64> {
    let number = |path: String| read(&path).and_then(|t| t.trim().parse::<u64>().ok());
    // Limits this high mean "none" (v1 writes the largest page-aligned i64).
    const NO_LIMIT: u64 = 1 << 62;
    for line in self_cgroup.lines() {
        let mut fields = line.splitn(3, ':').skip(1);
        let (Some(controllers), Some(path)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (root, limit_file, usage_file) = if controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max", "memory.current")
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                "/sys/fs/cgroup/memory",
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        let path = path.trim_end_matches('/');
        for dir in [format!("{root}{path}"), root.to_string()] {
            if let Some(limit) = number(format!("{dir}/{limit_file}")) {
                if limit >= NO_LIMIT {
                    break;
                }
                let usage = number(format!("{dir}/{usage_file}")).unwrap_or(0);
                return Some(limit.saturating_sub(usage));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_read_in_bytes() {
        let text = "MemTotal:       24683520 kB\nMemFree:        20445000 kB\n\
                    MemAvailable:   24125440 kB\nBuffers:          1000 kB\n";
        assert_eq!(meminfo_available(text), Some(24_125_440 * 1024));
        assert_eq!(meminfo_available("MemTotal: 1 kB\n"), None);
    }

    fn files(entries: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let entries: Vec<(String, String)> = entries
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect();
        move |p| entries.iter().find(|(q, _)| q == p).map(|(_, t)| t.clone())
    }

    #[test]
    fn a_cgroup_v2_limit_leaves_its_room() {
        let fs = files(&[
            ("/sys/fs/cgroup/kubepods/pod1/memory.max", "2147483648\n"),
            ("/sys/fs/cgroup/kubepods/pod1/memory.current", "536870912\n"),
        ]);
        assert_eq!(cgroup_room("0::/kubepods/pod1\n", &fs), Some(3 << 29));
        // No limit: "max" is not a number, so nothing is lowered.
        let fs = files(&[("/sys/fs/cgroup/memory.max", "max\n")]);
        assert_eq!(cgroup_room("0::/\n", &fs), None);
    }

    #[test]
    fn a_cgroup_v1_limit_is_found_at_the_mount_root_of_a_container() {
        let text = "5:devices:/\n4:memory:/docker/abc\n0::/\n";
        let fs = files(&[
            (
                "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                "1073741824\n",
            ),
            ("/sys/fs/cgroup/memory/memory.usage_in_bytes", "73741824\n"),
        ]);
        assert_eq!(cgroup_room(text, &fs), Some(1_000_000_000));
        let unlimited = files(&[(
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "9223372036854771712\n",
        )]);
        assert_eq!(cgroup_room(text, &unlimited), None);
    }
}
