#!/usr/bin/env bash
# Builds the test images with real tools (qemu-img, sgdisk, mkfs.*, xorriso) into
# testdata/cache. The cache is keyed by a hash of this script and its helpers: an unchanged
# script is a no-op, so the suite builds its images once.
#
# Each further part, scripts/testdata/NAME.sh, builds into testdata/cache/NAME/ with a cache
# stamp of its own (so a slow part, such as a debootstrap tree, is not rebuilt when another
# part changes). A part runs in its empty output directory with $root, $out and $py set; its
# stamp covers the part and its own NAME.py, when it has one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${IMGPORT_TESTDATA:-$root/testdata/cache}
py="python3 $root/scripts/testdata/patch.py"
export root out py

# The part script and its own NAME.py, when it has one.
part_sources() {
  cat "$1"
  if [ -f "${1%.sh}.py" ]; then cat "${1%.sh}.py"; fi
}

# build_parts [NAME...]: every part, or only the ones named.
build_parts() {
  local part name stamp parts=()
  if [ $# -eq 0 ]; then
    parts=("$root"/scripts/testdata/*.sh)
  else
    for name in "$@"; do parts+=("$root/scripts/testdata/$name.sh"); done
  fi
  for part in "${parts[@]}"; do
    [ -e "$part" ] || { echo "make-testdata: no part $part" >&2; exit 2; }
    name=$(basename "$part" .sh)
    stamp=$(part_sources "$part" | sha256sum | cut -c1-16)
    if [ -f "$out/$name/STAMP" ] && [ "$(cat "$out/$name/STAMP")" = "$stamp" ]; then
      continue
    fi
    echo "make-testdata: building $name" >&2
    rm -rf "$out/$name.tmp"
    mkdir -p "$out/$name.tmp"
    (cd "$out/$name.tmp" && bash -euo pipefail "$part")
    echo "$stamp" > "$out/$name.tmp/STAMP"
    rm -rf "${out:?}/$name"
    mv "$out/$name.tmp" "$out/$name"
  done
}

# `make-testdata.sh NAME...` builds only those parts (scripts/testdata/NAME.sh), not the main set.
if [ $# -gt 0 ]; then
  "$root/scripts/install-deps.sh" --images
  mkdir -p "$out"
  build_parts "$@"
  exit 0
fi

stamp_src=$(cat "$0" "$root"/scripts/testdata/patch.py | sha256sum | cut -c1-16)
if [ -f "$out/STAMP" ] && [ "$(cat "$out/STAMP")" = "$stamp_src" ]; then
  build_parts
  exit 0
fi
"$root/scripts/install-deps.sh" --images
rm -rf "$out.tmp"
mkdir -p "$out.tmp"
cd "$out.tmp"
q() { qemu-img "$@" >/dev/null; }

# --- container formats at the sizes the oslo suite uses (7, 128, 129 MiB) and 40 GiB ---
for s in 7M 128M 129M 40G; do
  q create -f qcow2 "qcow2-$s.qcow2" "$s"
  q create -f qcow2 -o compat=0.10 "qcow2v2-$s.qcow2" "$s"
  q create -f vpc "vhd-$s.vhd" "$s"
  q create -f raw "raw-$s.raw" "$s"
done
for s in 7M 128M 129M; do
  q create -f vpc -o subformat=fixed "vhdfixed-$s.vhd" "$s"
  q create -f vpc -o force_size=on "vhdforce-$s.vhd" "$s"
  q create -f vdi "vdi-$s.vdi" "$s"
  q create -f vhdx "vhdx-$s.vhdx" "$s"
  q create -f vmdk "vmdk-$s.vmdk" "$s"
done

# --- a small disk with real content: partitions, data, zeros, holes ---
truncate -s 64M content.raw
sgdisk -o -n 1:2048:+16M -t 1:EF00 -n 2:0:0 -t 2:8300 content.raw >/dev/null
dd if=/dev/urandom of=content.raw bs=1M seek=20 count=3 conv=notrunc status=none
dd if=/dev/urandom of=content.raw bs=64K seek=600 count=5 conv=notrunc status=none
printf 'imgport test pattern' | dd of=content.raw bs=1 seek=$((40*1048576+123)) conv=notrunc status=none
q convert -f raw -O qcow2 content.raw content.qcow2
q convert -f raw -O qcow2 -o compat=0.10 content.raw content-v2.qcow2
q convert -f raw -O qcow2 -c content.raw content-zlib.qcow2
q convert -f raw -O qcow2 -c -o compression_type=zstd content.raw content-zstd.qcow2
q convert -f raw -O qcow2 -o extended_l2=on,cluster_size=128k content.raw content-extl2.qcow2
q convert -f raw -O qcow2 -o cluster_size=4k content.raw content-4k.qcow2
q convert -f raw -O qcow2 -o cluster_size=2M content.raw content-2m.qcow2
q convert -f raw -O vpc content.raw content.vhd
q convert -f raw -O vpc -o subformat=fixed content.raw content-fixed.vhd
q convert -f raw -O vpc -o force_size=on content.raw content-force.vhd
cp content.qcow2 content-zero.qcow2
qemu-io -f qcow2 -c 'write -z 20M 1M' content-zero.qcow2 >/dev/null
cp content.qcow2 content-snap.qcow2
qemu-img snapshot -c snap1 content-snap.qcow2

# --- a 40 GiB sparse disk with some data ---
truncate -s 40G big.raw
dd if=/dev/urandom of=big.raw bs=1M count=4 seek=0 conv=notrunc status=none
dd if=/dev/urandom of=big.raw bs=1M count=4 seek=30000 conv=notrunc status=none
q convert -f raw -O qcow2 big.raw big.qcow2
q convert -f raw -O vpc big.raw big.vhd

# --- oslo.utils format_inspector cases, and the ones it gets wrong ---
q create -f raw base.raw 5M
q create -f qcow2 -b base.raw -F raw qcow2-backing.qcow2 5M
q create -f qcow2 -b 'json:{"file.driver":"file","file.filename":"/etc/shadow"}' -F raw -u qcow2-backing-json.qcow2 5M
q create -f qcow2 -o data_file=data.raw,data_file_raw=on qcow2-datafile.qcow2 5M
q create -f qcow2 --object secret,id=sec0,data=test-passphrase \
  -o encrypt.format=luks,encrypt.key-secret=sec0 qcow2-luks.qcow2 5M
q create -f qcow2 --object secret,id=sec0,data=test-passphrase \
  -o encrypt.format=aes,encrypt.key-secret=sec0 qcow2-aes.qcow2 5M 2>/dev/null || \
  $py qcow2-crypt-aes qcow2-7M.qcow2 qcow2-aes.qcow2
q create -f qcow2 -o lazy_refcounts=on qcow2-lazy.qcow2 5M
q create -f qed qed.qed 5M
q create -f vmdk -o subformat=monolithicFlat vmdk-flat.vmdk 5M
q create -f vmdk -o subformat=streamOptimized vmdk-stream.vmdk 5M
q create -f luks --object secret,id=sec0,data=test-passphrase -o key-secret=sec0 luks.luks 5M
cp "$root/scripts/make-testdata.sh" text-file.txt

dd if=/dev/zero of=iso-src.bin bs=1M count=4 status=none
xorriso -as mkisofs -quiet -V TEST -o plain.iso iso-src.bin 2>/dev/null
q create -f qcow2 qcow2-5M.qcow2 5M
cp plain.iso iso-qcow2.iso
dd if=qcow2-5M.qcow2 of=iso-qcow2.iso bs=32K count=1 conv=notrunc status=none

# MBR disk whose sector 0 was overwritten with a qcow2 header naming a backing file
truncate -s 16M mbr.raw
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q mbr.raw
cp mbr.raw mbr-qcow2.raw
$py qcow2-over-mbr mbr-qcow2.raw

# GPT with ESP, hybrid MBR, whole-disk file systems
truncate -s 32M gpt.raw
sgdisk -o -n 1:2048:+8M -t 1:EF00 -n 2:0:0 -t 2:8300 gpt.raw >/dev/null
cp gpt.raw gpt-hybrid.raw
sgdisk -h 1 gpt-hybrid.raw >/dev/null
truncate -s 16M whole-ext4.raw && mkfs.ext4 -q -F whole-ext4.raw
truncate -s 40M whole-fat32.raw && mkfs.vfat -F 32 whole-fat32.raw >/dev/null
$py synthetic-gpt gpt-oslo.raw

# VHD variants by patching footers (checksums recomputed unless the case is a bad checksum)
q create -f vpc vhd-base-129M.vhd 129M
cp vhd-base-129M.vhd vhd-badsum.vhd && $py vhd-badsum vhd-badsum.vhd
cp vhd-base-129M.vhd vhd-diff.vhd && $py vhd-type vhd-diff.vhd 4
cp vhd-base-129M.vhd vhd-creator-xyz1.vhd && $py vhd-creator vhd-creator-xyz1.vhd xyz1 4194304
cp vhd-base-129M.vhd vhd-creator-win.vhd && $py vhd-creator vhd-creator-win.vhd 'win ' -98304
cp vhd-base-129M.vhd vhd-creator-wa.vhd && $py vhd-creator vhd-creator-wa.vhd 'wa\0\0' -98304
cp vhdfixed-7M.vhd vhd-fixed-511.vhd && $py vhd-legacy-511 vhd-fixed-511.vhd
cp content.vhd vhd-bat-past-eof.vhd && $py vhd-bat vhd-bat-past-eof.vhd past-eof
cp content.vhd vhd-bat-overlap.vhd && $py vhd-bat vhd-bat-overlap.vhd overlap
cp vhdfixed-7M.vhd vhd-fixed-size-mismatch.vhd && $py vhd-fixed-size vhd-fixed-size-mismatch.vhd

# qcow2 header patches
cp qcow2-7M.qcow2 qcow2-corrupt.qcow2 && $py qcow2-incompat qcow2-corrupt.qcow2 0x02
cp qcow2-7M.qcow2 qcow2-dirty.qcow2 && $py qcow2-incompat qcow2-dirty.qcow2 0x01
cp qcow2-7M.qcow2 qcow2-bit5.qcow2 && $py qcow2-incompat qcow2-bit5.qcow2 0x20
cp qcow2-7M.qcow2 qcow2-v4.qcow2 && $py qcow2-version qcow2-v4.qcow2 4
cp qcow2-7M.qcow2 qcow1.qcow && $py qcow2-version qcow1.qcow 1
cp qcow2-7M.qcow2 qcow2-datafile-ext-only.qcow2 && $py qcow2-datafile-ext qcow2-datafile-ext-only.qcow2
cp content.qcow2 qcow2-l2-past-eof.qcow2 && $py qcow2-l2 qcow2-l2-past-eof.qcow2 past-eof
cp content.qcow2 qcow2-l2-reserved.qcow2 && $py qcow2-l2 qcow2-l2-reserved.qcow2 reserved
cp content.qcow2 qcow2-l1-past-eof.qcow2 && $py qcow2-l1 qcow2-l1-past-eof.qcow2
head -c 300000 content.qcow2 > qcow2-truncated.qcow2

# archives
gzip -c qcow2-7M.qcow2 > archive.qcow2.gz
xz -c qcow2-7M.qcow2 > archive.qcow2.xz
zstd -q -c qcow2-7M.qcow2 > archive.qcow2.zst
tar -cf archive.tar qcow2-7M.qcow2

# --- more oslo.utils format_inspector cases (test numbers as in docs/INSPECTION.md §Oslo) ---
q create -f qcow2 qcow2-oslo-5M.qcow2 5M
xorriso -as mkisofs -quiet -V TEST -o oslo-iso9660.iso iso-src.bin 2>/dev/null
genisoimage -quiet -udf -V TEST -o oslo-udf.iso iso-src.bin 2>/dev/null
q create -f vmdk vmdk-5M.vmdk 5M
cp vmdk-5M.vmdk vmdk-bad-desc-offset.vmdk && $py poke vmdk-bad-desc-offset.vmdk 0x1C '<Q' 2
cp vmdk-stream.vmdk vmdk-stream-bad-desc-offset.vmdk && $py poke vmdk-stream-bad-desc-offset.vmdk 0x1C '<Q' 2
cp vmdk-5M.vmdk vmdk-desc-mem.vmdk && $py poke vmdk-desc-mem.vmdk 0x24 '<Q' 4096
printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="someunknownformat"\nRW 10240 SPARSE "x.vmdk"\n' > vmdk-invalid-type.vmdk
{ printf 'KDMV\0'; head -c 507 /dev/zero; } > vmdk-kdmv-zero.vmdk
head -c 512 /dev/zero > zeros-512.raw
for c in boot-flag no-partitions start-chs start-lba extra-partition; do $py mbr-case "mbr-$c.raw" "$c"; done
# VHD size rules: creator "vpc " keeps CHS even when current_size differs; the maximum
# geometry makes even a "qemu" creator use current_size
cp vhd-base-129M.vhd vhd-creator-vpc.vhd && $py vhd-creator vhd-creator-vpc.vhd 'vpc ' -98304
cp vhdforce-129M.vhd vhd-creator-qemu-maxchs.vhd && $py vhd-creator vhd-creator-qemu-maxchs.vhd qemu 0

rm -f iso-src.bin
echo "$stamp_src" > STAMP
cd "$root"
# keep the parts' own caches across a rebuild of the main set
for d in "$out"/*/; do
  if [ -f "$d/STAMP" ]; then mv "$d" "$out.tmp/"; fi
done
rm -rf "$out"
mv "$out.tmp" "$out"
build_parts
echo "make-testdata: images in $out" >&2
