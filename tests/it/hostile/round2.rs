//! Hostile images, second round (issue 26): sizes claimed but not stored, inputs that are not
//! regular files, images nested in images, metadata handed out as guest data, features the
//! reader cannot honour, terminal control in names. Every case is built here, at test time,
//! from real tools (qemu-img, qemu-io) and byte patches, and runs under the same limits as
//! the corpus ([`MAX_SECONDS`], [`MAX_RSS_KB`]).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::{Expect, Limited, MAX_RSS_KB, MAX_SECONDS, Worst, be64, check_all, run_limited};
use crate::util::{sh, sh_in};

/// Runs `imgport ARGS` in `dir` under the limits and asserts it ends in exit `code` without a
/// panic, within [`MAX_SECONDS`] and [`MAX_RSS_KB`].
fn run_ok(dir: &Path, args: &[&OsStr], code: i32, worst: &mut Worst) -> Limited {
    let r = run_limited(dir, args);
    worst.note(&r);
    let what = r.describe();
    assert!(!r.stderr.contains("panicked"), "panic: {what}");
    assert!(
        r.seconds <= MAX_SECONDS,
        "more than {MAX_SECONDS} CPU-s: {what}"
    );
    assert!(r.rss_kb <= MAX_RSS_KB, "more than {MAX_RSS_KB} KiB: {what}");
    assert_eq!(r.code, code, "{what}");
    r
}

fn os(s: &str) -> &OsStr {
    s.as_ref()
}

/// The commands that read an image and print what they found: `inspect P`, `convert --to
/// raw P OUT`, `checksum P`.
fn reading_runs<'a>(p: &'a Path, out: &'a Path) -> Vec<Vec<&'a OsStr>> {
    vec![
        vec![os("inspect"), p.as_os_str()],
        vec![
            os("convert"),
            os("--to"),
            os("raw"),
            p.as_os_str(),
            out.as_os_str(),
        ],
        vec![os("checksum"), p.as_os_str()],
    ]
}

/// `imgport COMMAND SRC` for region cn-hangzhou, `bucket` and `--allow-no-os`.
fn upload_args(command: &str, src: &Path, bucket: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![command.into(), src.into()];
    for a in [
        "--region",
        "cn-hangzhou",
        "--bucket",
        bucket,
        "--allow-no-os",
    ] {
        args.push(a.into());
    }
    args
}

/// `--sandbox` flags keeping the emulator's state and the journals under `d`, in
/// directories named with `tag`.
fn sandbox_args(d: &Path, tag: &str) -> Vec<OsString> {
    [
        "--sandbox",
        "--sandbox-import-seconds",
        "0.5",
        "--sandbox-dir",
        &d.join(format!("sandbox{tag}")).display().to_string(),
        "--journal",
        &d.join(format!("journal{tag}")).display().to_string(),
    ]
    .map(Into::into)
    .to_vec()
}

/// Writes a batch manifest whose defaults are region cn-hangzhou, bucket `sandbox` and
/// `allow_no_os`, plus `defaults` lines, and whose one image is `image` (TOML lines).
fn write_manifest(path: &Path, defaults: &str, image: &str) {
    std::fs::write(
        path,
        format!(
            "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"sandbox\"\nallow_no_os = true\n\
             {defaults}\n\n[[image]]\n{image}\n"
        ),
    )
    .unwrap();
}

/// Builds in `d` a qcow2 `inner.qcow2` naming `/etc/passwd` as its backing file, an 8 MiB
/// `guest.raw` whose first bytes are that qcow2, and `outer.vhd`, that disk as a VHD.
fn nested_image_files(d: &Path) {
    sh_in(
        d,
        "qemu-img create -q -f qcow2 -b /etc/passwd -F raw inner.qcow2 1M && \
         truncate -s 8M guest.raw && \
         dd if=inner.qcow2 of=guest.raw conv=notrunc status=none && \
         qemu-img convert -f raw -O vpc guest.raw outer.vhd",
    );
}

/// Disks of huge virtual size holding 2 MiB of data: every command costs what the data
/// costs, and a SHA-256 that would have to hash the holes of a RAW output is skipped, saying so.
#[test]
fn claimed_sizes_cost_only_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sh_in(
        d,
        "qemu-img create -q -f qcow2 huge.qcow2 1P && \
         qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 700T 1M' huge.qcow2 >/dev/null && \
         qemu-img create -q -f qcow2 empty.qcow2 100G && \
         qemu-img create -q -f vpc -o subformat=dynamic big.vhd 2040G && \
         qemu-io -f vpc -c 'write -P 0x11 0 1M' -c 'write -P 0x22 1T 1M' big.vhd >/dev/null && \
         truncate -s 4T hole.raw && \
         qemu-io -f raw -c 'write -P 0x33 0 1M' -c 'write -P 0x44 3T 1M' hole.raw >/dev/null",
    );
    let mut worst = Worst::default();
    for name in ["huge.qcow2", "empty.qcow2", "big.vhd", "hole.raw"] {
        let src = d.join(name);
        run_ok(
            d,
            &[os("inspect"), os("--json"), src.as_os_str()],
            0,
            &mut worst,
        );
        // Default digests: the content digest skips holes, the SHA-256 of the RAW form is
        // skipped with a notice (it would hash terabytes of zeros).
        let r = run_ok(
            d,
            &[
                os("checksum"),
                os("--json"),
                os("--to"),
                os("raw"),
                src.as_os_str(),
            ],
            0,
            &mut worst,
        );
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert!(v["sha256"].is_null(), "{}", r.describe());
        assert!(
            v["notices"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n.as_str().unwrap().starts_with("sha256 skipped")),
            "no notice that the SHA-256 was skipped: {}",
            r.describe()
        );
        assert!(v["content"]["digest"].is_string(), "{}", r.describe());
        let out = d.join("out.qcow2");
        run_ok(
            d,
            &[
                os("convert"),
                os("--to"),
                os("qcow2"),
                src.as_os_str(),
                out.as_os_str(),
            ],
            0,
            &mut worst,
        );
        std::fs::remove_file(&out).unwrap();
        // A RAW output up to ext4's file size limit is written with holes, not bytes.
        if name != "huge.qcow2" {
            let out = d.join("out.raw");
            run_ok(
                d,
                &[
                    os("convert"),
                    os("--to"),
                    os("raw"),
                    src.as_os_str(),
                    out.as_os_str(),
                ],
                0,
                &mut worst,
            );
            let used = sh(&format!("du -k '{}' | cut -f1", out.display()));
            assert!(
                used.trim().parse::<u64>().unwrap() < 64 * 1024,
                "{name}: {used} KiB"
            );
            std::fs::remove_file(&out).unwrap();
        }
    }
    // The RAW form of the 2 MiB qcow2 and of the RAW file agree with what they hold: the
    // same content digest whatever the container.
    worst.print("claimed sizes");
}

/// A FIFO, a directory and a dangling symbolic link: every command refuses them at once
/// (a FIFO never blocks), with one wording and exit 1.
#[test]
fn non_regular_inputs_are_refused_alike() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sh_in(
        d,
        "mkfifo fifo.raw && mkdir dir.raw && ln -s nowhere.raw dangling.raw",
    );
    let mut worst = Worst::default();
    for (name, kind) in [
        ("fifo.raw", "a FIFO"),
        ("dir.raw", "a directory"),
        ("dangling.raw", "a symbolic link to nothing"),
    ] {
        let p = d.join(name);
        let out = d.join("out.raw");
        let mut runs = reading_runs(&p, &out);
        runs.push(vec![os("inspect"), os("--json"), p.as_os_str()]);
        runs.push(vec![
            os("plan"),
            os("--region"),
            os("cn-hangzhou"),
            os("--bucket"),
            os("bkt"),
            p.as_os_str(),
        ]);
        for args in runs {
            let r = run_ok(d, &args, 1, &mut worst);
            let want = format!("{}: is {kind}, not a regular file", p.display());
            assert!(r.stderr.contains(&want), "wording: {}", r.describe());
        }
        assert!(!out.exists());
    }
    worst.print("non-regular inputs");
}

/// Writes an MBR with one partition of type 0x83 starting at `lba` into `disk`.
fn mbr_with_partition(disk: &Path, lba: u32, sectors: u32) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(disk).unwrap();
    let mut s = [0u8; 512];
    s[446 + 4] = 0x83;
    s[446 + 8..446 + 12].copy_from_slice(&lba.to_le_bytes());
    s[446 + 12..446 + 16].copy_from_slice(&sectors.to_le_bytes());
    s[510] = 0x55;
    s[511] = 0xaa;
    f.write_all_at(&s, 0).unwrap();
}

/// Copies the first `len` bytes of `src` into `dst` at `offset`.
fn splice(src: &Path, dst: &Path, offset: u64, len: usize) {
    use std::os::unix::fs::FileExt;
    let bytes = std::fs::read(src).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(dst).unwrap();
    f.write_all_at(&bytes[..len.min(bytes.len())], offset)
        .unwrap();
}

/// Guest data that is another image (a qcow2 naming `/etc/passwd` as its backing file, at
/// the disk's first byte or a partition's) is refused by every command unless asked for;
/// a Bochs image is recognised, not read as RAW.
#[test]
fn nested_images_are_refused_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    nested_image_files(d);
    sh_in(
        d,
        "qemu-img convert -f raw -O qcow2 guest.raw outer.qcow2 && truncate -s 8M part.raw",
    );
    mbr_with_partition(&d.join("part.raw"), 2048, 8192);
    splice(
        &d.join("inner.qcow2"),
        &d.join("part.raw"),
        2048 * 512,
        64 * 1024,
    );
    // A Bochs "growing" image header: magic, type, subtype, version 2, header size 512.
    let mut bochs = vec![0u8; 1 << 20];
    bochs[..23].copy_from_slice(b"Bochs Virtual HD Image\0");
    bochs[32..40].copy_from_slice(b"Redolog\0");
    bochs[48..56].copy_from_slice(b"Growing\0");
    bochs[64..68].copy_from_slice(&0x0002_0000u32.to_le_bytes());
    bochs[68..72].copy_from_slice(&512u32.to_le_bytes());
    std::fs::write(d.join("disk.bochs"), &bochs).unwrap();

    let mut worst = Worst::default();
    for (name, code) in [
        ("outer.vhd", "nested.qcow2"),
        ("outer.qcow2", "nested.qcow2"),
        ("part.raw", "nested.qcow2"),
        ("disk.bochs", "format.unsupported.bochs"),
    ] {
        let p = d.join(name);
        let r = run_ok(
            d,
            &[os("inspect"), os("--json"), p.as_os_str()],
            3,
            &mut worst,
        );
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let codes: Vec<&str> = v[0]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "refuse")
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&code), "{name}: {codes:?}");
        // convert and checksum refuse what inspect refuses.
        check_all(&p, Expect::Refused, &mut worst);
    }
    // Asked for, the nested image is imported as-is, with a warning.
    let p = d.join("outer.vhd");
    let r = run_ok(
        d,
        &[
            os("inspect"),
            os("--json"),
            os("--allow-nested"),
            p.as_os_str(),
        ],
        0,
        &mut worst,
    );
    assert!(r.stdout.contains("nested.qcow2"), "{}", r.describe());
    worst.print("nested images");
}

/// A qcow2 with 64 KiB of data written by qemu-io, and its header fields.
fn small_qcow2(d: &Path, name: &str, extra: &str) -> (PathBuf, Vec<u8>) {
    let p = d.join(name);
    sh_in(
        d,
        &format!(
            "qemu-img create -q -f qcow2 {name} 64M && \
         qemu-io -f qcow2 -c 'write -P 0x5a 0 64k' {name} >/dev/null {extra}"
        ),
    );
    let bytes = std::fs::read(&p).unwrap();
    (p, bytes)
}

fn put_be64(b: &mut [u8], at: u64, v: u64) {
    b[at as usize..at as usize + 8].copy_from_slice(&v.to_be_bytes());
}

/// Metadata handed out as guest data (QEMU's overlap checks), a bitmap directory past the
/// end of the file and zstd declared over deflate data: all refused by `inspect`, so `safe`
/// always means that `convert` will read the image.
#[test]
fn qcow2_overlaps_and_unreadable_features_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut worst = Worst::default();
    let mut cases: Vec<(PathBuf, &str)> = Vec::new();
    let (src, bytes) = small_qcow2(d, "base.qcow2", "");
    let l1 = be64(&bytes, 40);
    let refcount_table = be64(&bytes, 48);
    let l2 = be64(&bytes, l1) & 0x00ff_ffff_ffff_fe00;
    for (name, target) in [
        ("data-is-l1.qcow2", l1),
        ("data-is-refcount-table.qcow2", refcount_table),
        ("data-is-own-l2.qcow2", l2),
    ] {
        let mut b = bytes.clone();
        // L2 entry 0: a standard data cluster at `target` (bit 63: refcount 1).
        put_be64(&mut b, l2, target | 1 << 63);
        let p = d.join(name);
        std::fs::write(&p, &b).unwrap();
        cases.push((p, "qcow2.data_overlaps_metadata"));
    }
    assert!(src.exists());

    // A bitmap directory moved past the end of the file (QEMU refuses to open it).
    let (bm, mut b) = small_qcow2(
        d,
        "bitmap.qcow2",
        "&& qemu-img bitmap --add bitmap.qcow2 b0",
    );
    let header_length = super::be32(&b, 100) as usize;
    let mut pos = header_length;
    let mut patched = false;
    while pos + 8 <= b.len().min(65536) {
        let kind = super::be32(&b, pos as u64);
        let len = super::be32(&b, pos as u64 + 4) as usize;
        if kind == 0 {
            break;
        }
        if kind == 0x2385_2875 {
            let end = (b.len() as u64).next_multiple_of(65536);
            put_be64(&mut b, pos as u64 + 8 + 16, end + (1 << 20));
            patched = true;
            break;
        }
        pos += 8 + len.next_multiple_of(8);
    }
    assert!(patched, "no bitmaps extension in {}", bm.display());
    let p = d.join("bitmap-dir-past-eof.qcow2");
    std::fs::write(&p, &b).unwrap();
    cases.push((p, "qcow2.bitmap_directory"));

    // Deflate-compressed clusters under a header that says zstd.
    sh_in(
        d,
        "head -c 1M /etc/services > text.raw; truncate -s 4M text.raw && \
         qemu-img convert -q -c -f raw -O qcow2 -o compression_type=zlib text.raw zlib.qcow2",
    );
    let mut b = std::fs::read(d.join("zlib.qcow2")).unwrap();
    assert!(
        super::be32(&b, 100) >= 112,
        "header too short for compression_type"
    );
    let incompat = be64(&b, 72) | 1 << 3;
    put_be64(&mut b, 72, incompat);
    b[104] = 1;
    let p = d.join("zstd-over-zlib.qcow2");
    std::fs::write(&p, &b).unwrap();
    cases.push((p, "qcow2.compressed_data"));

    for (p, code) in &cases {
        let r = run_ok(
            d,
            &[os("inspect"), os("--json"), p.as_os_str()],
            3,
            &mut worst,
        );
        assert!(r.stdout.contains(code), "{code}: {}", r.describe());
        check_all(p, Expect::Refused, &mut worst);
    }
    worst.print("qcow2 overlaps");
}

/// A file name holding ESC [2J and a newline is printed escaped by every human-readable
/// line and error (the JSON escapes by itself).
#[test]
fn terminal_control_in_names_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let name = "evil\x1b[2J\nname.qcow2";
    let p = d.join(name);
    sh_in(
        d,
        "qemu-img create -q -f qcow2 -b /etc/passwd -F raw \"$(printf 'evil\\033[2J\\nname.qcow2')\" 1M",
    );
    assert!(p.exists());
    let mut worst = Worst::default();
    let out = d.join("out.raw");
    let runs = reading_runs(&p, &out);
    for args in runs {
        let r = run_ok(d, &args, 3, &mut worst);
        for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
            assert!(
                !text.contains('\x1b'),
                "raw ESC on {stream}: {}",
                r.describe()
            );
        }
        let all = format!("{}{}", r.stdout, r.stderr);
        assert!(
            all.contains("evil\\x1b[2J\\nname.qcow2"),
            "{}",
            r.describe()
        );
    }
    // The commands that import print the name too: `plan` in its Markdown, `import` in its
    // summary, `batch` in its table; here the disk is readable and has a nested image allowed
    // in, so every line that names it is printed.
    let fine = d.join("evil\x1b[2J\nfine.vhd");
    sh_in(
        d,
        "qemu-img create -q -f vpc -o subformat=dynamic \"$(printf 'evil\\033[2J\\nfine.vhd')\" 8M",
    );
    assert!(fine.exists());
    let manifest = d.join("batch.toml");
    // TOML's own escapes name the file: \u001b and \n.
    write_manifest(
        &manifest,
        "",
        &format!("files = [\"{}/evil\\u001b[2J\\nfine.vhd\"]", d.display()),
    );
    let plan = upload_args("plan", &fine, "sandbox");
    let mut import = upload_args("import", &fine, "sandbox");
    import.extend(sandbox_args(d, ""));
    let mut batch: Vec<OsString> = vec!["batch".into(), manifest.into()];
    batch.extend(sandbox_args(d, ""));
    for args in [plan, import, batch] {
        let r = crate::util::imgport_in(d, &args);
        r.expect_code(0);
        let (stdout, stderr) = (r.stdout(), r.stderr());
        for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            assert!(!text.contains('\x1b'), "raw ESC on {stream}: {:?}", r.cmd);
            assert!(
                !text.contains("[2J\nfine"),
                "raw newline from the name on {stream}: {:?}\n{text:?}",
                r.cmd
            );
        }
        assert!(
            format!("{stdout}{stderr}").contains("evil\\x1b[2J\\nfine"),
            "{}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            r.cmd
        );
    }
    worst.print("names");
}

/// `import`, `plan` and `batch` refuse a nested image like `inspect` does (exit 3, naming
/// the rule) and take it as-is when asked (`--allow-nested`, manifest key `allow_nested`).
#[test]
fn import_plan_and_batch_refuse_a_nested_image_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    nested_image_files(d);
    let src = d.join("outer.vhd");
    let import = |extra: &[&str]| {
        let mut args = upload_args("import", &src, "sandbox");
        args.extend(sandbox_args(d, &format!("-import{}", extra.len())));
        args.extend(extra.iter().map(Into::into));
        crate::util::imgport_in(d, args)
    };
    let refused = import(&[]);
    refused.expect_code(3);
    assert!(
        refused.stderr().contains("an image nested in the image"),
        "{}",
        refused.stderr()
    );
    let accepted = import(&["--allow-nested", "--json"]);
    accepted.expect_code(0);
    assert_eq!(accepted.json()["status"], "Available");

    let plan = |extra: &[&str]| {
        let mut args = upload_args("plan", &src, "plan-bucket");
        args.extend(extra.iter().map(Into::into));
        crate::util::imgport_in(d, args)
    };
    let refused = plan(&[]);
    refused.expect_code(3);
    assert!(
        refused.stderr().contains("an image nested in the image"),
        "{}",
        refused.stderr()
    );
    plan(&["--allow-nested"]).expect_code(0);

    let batch = |key: &str| {
        let m = d.join(format!("batch-{}.toml", key.len()));
        let image = format!("name = \"nested\"\nfiles = [\"{}\"]", src.display());
        write_manifest(&m, key, &image);
        let mut args: Vec<OsString> = vec!["batch".into(), m.into(), "--json".into()];
        args.extend(sandbox_args(d, &format!("-batch{}", key.len())));
        crate::util::imgport_in(d, args)
    };
    let refused = batch("");
    refused.expect_code(3);
    assert!(
        refused.stdout().contains("an image nested in the image"),
        "{}",
        refused.stdout()
    );
    batch("allow_nested = true").expect_code(0);
}
