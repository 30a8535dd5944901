#!/usr/bin/env bash
# Installs the system packages the test suite and the test-data script need, and the npm
# package of the report render test, only when something is missing. Safe to run repeatedly.
# `--images`: only what scripts/make-testdata.sh needs (not the browser of the render test).
set -euo pipefail
images_only=0
[ "${1:-}" = --images ] && images_only=1

need=()
check() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
check qemu-img qemu-utils
check sgdisk gdisk
check sfdisk fdisk
check mkfs.vfat dosfstools
check mcopy mtools
check mkfs.xfs xfsprogs
check mkfs.ext4 e2fsprogs
check xorriso xorriso
check genisoimage genisoimage
check debootstrap debootstrap
check cpio cpio
check zstd zstd
check lz4 lz4
check xz xz-utils
# Windows part: NTFS volumes (mkntfs, the ntfs-3g FUSE driver) and a hive oracle (hivexget).
check mkntfs ntfs-3g
check ntfs-3g ntfs-3g
check hivexget libhivex-bin
check bzip2 bzip2
# Guest-inspection test data: real LVM metadata on a loop device (scripts/testdata/guest.sh).
check pvcreate lvm2
check losetup mount
check mkfs.btrfs btrfs-progs
check file file
# md RAID part (scripts/testdata/guestmd.sh): real mdadm and Linux's md driver, run in an
# emulated machine (qemu-system-x86_64) from an initramfs holding busybox.
check mdadm mdadm
check busybox busybox-static
qemu_system=0
command -v qemu-system-x86_64 >/dev/null 2>&1 || qemu_system=1
# Progress tests (tests/it/cli_progress.rs) run the binary on a pseudo-terminal with script(1).
check script bsdutils
# Hostile corpus (tests/it/hostile.rs): GNU time for wall time and max RSS (`command -v time`
# finds the shell keyword, so look for the file), qemu-io and debugfs to build the images.
[ -x /usr/bin/time ] || need+=(time)
check qemu-io qemu-utils
check debugfs e2fsprogs
# The official-SDK smoke test (tests/it/cloud/sdk.rs) makes a venv with pip.
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# The bench scripts time each process (wall, peak RSS, disk writes) with GNU time.
check /usr/bin/time time
# Report render test (tests/it/report_render.rs): Debian's Chromium, driven from Node.js by
# playwright-core (tests/browser/package-lock.json, installed below).
if [ $images_only = 0 ]; then
  check chromium chromium
  check node nodejs
  check npm npm
fi

if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  echo "install-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # apt's own chatter (debconf notes, dpkg progress) is not about imgport: kept in a log that
  # is printed only when the install fails.
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: apt-get failed installing ${need[*]}" >&2
    exit 1
  fi
fi

# qemu-system-x86 at the version of the installed qemu-utils: Debian's own older one would
# replace a backported qemu-img (the oracle of the tests), so a backport is matched from
# bookworm-backports.
if [ $qemu_system = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  utils=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
  target=()
  if [[ $utils == *~bpo* ]]; then
    suite=$(. /etc/os-release && echo "$VERSION_CODENAME")-backports
    if ! grep -rqs "$suite" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$suite" > /etc/apt/sources.list.d/imgport-backports.sources
    fi
    target=(-t "$suite")
  fi
  echo "install-deps: installing qemu-system-x86 ${utils:+(as qemu-utils $utils)}" >&2
  log=$(mktemp)
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${target[@]}" \
    "qemu-system-x86${utils:+=$utils}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: apt-get failed installing qemu-system-x86" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi

[ $images_only = 1 ] && exit 0
# playwright-core, exactly as locked, with `npm ci`: again only when the lock file changed
# since the last install (its digest is kept inside node_modules).
browser=$(cd "$(dirname "$0")/../tests/browser" && pwd)
lock=$(sha256sum "$browser/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$browser/node_modules/.imgport-lock" 2>/dev/null)" != "$lock" ]; then
  echo "install-deps: npm ci in tests/browser" >&2
  npm_log=$(mktemp)
  if ! (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error) >"$npm_log" 2>&1; then
    cat "$npm_log" >&2
    rm -f "$npm_log"
    echo "install-deps: npm ci failed in tests/browser" >&2
    exit 1
  fi
  rm -f "$npm_log"
  echo "$lock" > "$browser/node_modules/.imgport-lock"
fi
