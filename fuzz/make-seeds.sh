#!/usr/bin/env bash
# Regenerates the committed seed corpus fuzz/corpus/<target>/ from real tools (qemu-img,
# mkfs.*, ntfscp, mtools) and a few tiny images of scripts/make-testdata.sh's cache. Large
# volumes are stored in the SPRS sparse form (fuzz/sparse.py), so every seed stays small.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${IMGPORT_TESTDATA:-$here/../testdata/cache}
corpus=$here/corpus
sparse="python3 $here/sparse.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
rm -rf "$corpus"
mkdir -p "$corpus"/{detect,qcow2,vhd,vhdx,vmdk,xfs,ext4,fat,ntfs,registry,initramfs,partition,lvm,btrfs,ova}

# A small guest tree shared by the file-system seeds.
mkdir -p tree/etc/sub tree/boot
printf 'NAME="Seed"\nID=seed\nVERSION_ID="1"\n' > tree/etc/os-release
printf 'UUID=1234 / xfs defaults 0 1\n' > tree/etc/fstab
head -c 7000 /dev/urandom | base64 > tree/boot/big.txt
echo deep > tree/etc/sub/file

# qcow2: 512-byte clusters keep the tables and data a few KiB.
qemu_write() { qemu-io -f qcow2 -c "write -P 0x5a 0 1k" -c "write -P 0xa5 100k 512" "$1" >/dev/null; }
qemu-img create -q -f qcow2 -o cluster_size=512 q3.qcow2 256K && qemu_write q3.qcow2
qemu-img create -q -f qcow2 -o cluster_size=512,compat=0.10 q2.qcow2 256K && qemu_write q2.qcow2
qemu-img create -q -f qcow2 -o cluster_size=16384,extended_l2=on q3x.qcow2 256K && qemu_write q3x.qcow2
qemu-img snapshot -c snap q3.qcow2
qemu-img create -q -f raw r.raw 256K && qemu-io -f raw -c "write -P 0x11 0 4k" r.raw >/dev/null
qemu-img convert -q -c -O qcow2 -o cluster_size=4096 r.raw qz.qcow2
qemu-img convert -q -c -O qcow2 -o cluster_size=4096,compression_type=zstd r.raw qzstd.qcow2
cp q3.qcow2 q2.qcow2 q3x.qcow2 qz.qcow2 qzstd.qcow2 "$corpus/qcow2/"

# vhd: dynamic (empty: qemu's 2 MiB blocks would make a written one large), fixed, diff.
qemu-img create -q -f vpc -o subformat=dynamic d.vhd 4M
qemu-img create -q -f vpc -o subformat=fixed f.vhd 16K
qemu-img create -q -f raw r16.raw 16K && qemu-io -f raw -c "write -P 0x11 0 4k" r16.raw >/dev/null
qemu-img convert -q -O vpc -o subformat=fixed r16.raw fdata.vhd
cp d.vhd f.vhd fdata.vhd "$cache/vhd-diff.vhd" "$corpus/vhd/"

# vmdk: the sparse subformats of a 128 KiB disk with 4 KiB of data (one 64 KiB grain), one
# in VMware's layout (directory at the end, footer), and a flat descriptor.
qemu-img create -q -f raw v.raw 128K && qemu-io -f raw -c "write -P 0x11 0 4k" v.raw >/dev/null
for s in monolithicSparse streamOptimized monolithicFlat; do
  qemu-img convert -q -O vmdk -o subformat=$s v.raw "vmdk-$s.vmdk"
done
cp vmdk-streamOptimized.vmdk vmdk-gd-at-end.vmdk
python3 "$here/../scripts/testdata/vmdk.py" gd-at-end vmdk-gd-at-end.vmdk
cp vmdk-monolithicSparse.vmdk vmdk-streamOptimized.vmdk vmdk-gd-at-end.vmdk vmdk-monolithicFlat.vmdk \
  "$corpus/vmdk/"

# vhdx: dynamic (1 MiB blocks, a hole), fixed, and 4096-byte sectors in the SPRS form
# (structures at MiB offsets), plus one dirty log; vhdx.py is the test-data part's patcher.
vx="python3 $here/../scripts/testdata/vhdx.py"
qemu-img create -q -f raw rx.raw 3M
qemu-io -f raw -c "write -P 0x5a 0 4k" -c "write -P 0xa5 2M 512" rx.raw >/dev/null
qemu-img convert -q -O vhdx -o block_size=1M rx.raw dx.vhdx
qemu-img convert -q -O vhdx -o subformat=fixed,block_size=1M rx.raw fx.vhdx
cp dx.vhdx d4k.vhdx && $vx 4k d4k.vhdx
cp dx.vhdx dlog.vhdx && $vx dirty-log dlog.vhdx
for f in dx fx d4k dlog; do $sparse $f.vhdx "$corpus/vhdx/$f"; done

# detect: one of each thing the detector tells apart.
cp q3.qcow2 d.vhd f.vhd "$cache/vdi-7M.vdi" "$cache/vmdk-flat.vmdk" "$cache/zeros-512.raw" \
  "$cache/mbr-start-lba.raw" "$cache/gpt-oslo.raw" "$cache/archive.qcow2.zst" "$corpus/detect/"

# xfs: mkfs.xfs's minimum is 300 MiB, stored sparse.
cat > proto <<P
/dev/null
0 0
d--755 0 0
etc d--755 0 0
os-release ---644 0 0 $PWD/tree/etc/os-release
fstab ---644 0 0 $PWD/tree/etc/fstab
sub d--755 0 0
file ---644 0 0 $PWD/tree/etc/sub/file
\$
link l--777 0 0 ../etc/os-release
\$
boot d--755 0 0
big.txt ---644 0 0 $PWD/tree/boot/big.txt
\$
\$
P
for v in v5 v4; do
  truncate -s 300M x.img
  crc=1 && [ $v = v4 ] && crc=0
  mkfs.xfs -q -f -m crc=$crc -p proto x.img 2>/dev/null
  $sparse x.img "$corpus/xfs/$v"
  rm x.img
done

# ext4: ext2 and ext4 (journal, extents, 1 KiB blocks) filled from the tree by mkfs -d,
# plus the fuzz findings of fuzz/findings/ (see the tests of src/guest/fs/ext4.rs).
ln -s ../etc/os-release tree/boot/link
for spec in "ext4 4M" "ext2 2M"; do
  set -- $spec
  truncate -s "$2" e.img
  mkfs.ext4 -q -F -t "$1" -b 1024 -d tree e.img
  $sparse e.img "$corpus/ext4/$1"
  rm e.img
done
rm tree/boot/link
cp "$here"/findings/ext4-* "$corpus/ext4/"

# fat: FAT12 and FAT16 via mtools.
for spec in "12 1M" "16 16M"; do
  set -- $spec
  truncate -s "$2" v.img
  mkfs.vfat -F "$1" -n SEED v.img >/dev/null
  mcopy -s -i v.img tree/etc tree/boot ::/
  $sparse v.img "$corpus/fat/fat$1"
  rm v.img
done

# ntfs: a fresh volume with the tree copied in by ntfscp.
truncate -s 2M n.img
mkntfs -q -F -f -L SEED n.img 2>/dev/null
ntfscp -q n.img tree/etc/os-release os-release
ntfscp -q n.img tree/boot/big.txt big.txt
$sparse --drop-ff n.img "$corpus/ntfs/ntfs"

# registry and initramfs: the small generated hives and archives of the test-data cache.
cp "$cache/windows/hives/win11/SYSTEM" "$corpus/registry/SYSTEM"
cp "$cache/windows/hives/win2008/SOFTWARE" "$corpus/registry/SOFTWARE"
for f in early.cpio junk-after.img early-bzip2.img truncated.cpio.gz bomb.cpio.xz; do
  cp "$cache/initramfs/$f" "$corpus/initramfs/"
done
du -sh "$corpus"/*

# partition tables: the guest part's test disks (EBR chain, hybrid MBR, 4Kn GPT, corrupt
# primary GPT), a plain GPT and one MBR sector.
for f in tables-ebr tables-hybrid tables-4kn tables-bad-primary; do
  $sparse "$cache/guest/$f.raw" "$corpus/partition/$f"
done
$sparse "$cache/gpt.raw" "$corpus/partition/gpt"
head -c 512 "$cache/mbr.raw" > "$corpus/partition/mbr-sector"

# lvm: the first MiB of the real PV of the guest part's LVM disk (label and metadata text).
start=$(sfdisk -d "$cache/guest/lvm-ext4.raw" | awk -F'[=,]' '/raw3/ {gsub(/ /, "", $2); print $2}')
dd if="$cache/guest/lvm-ext4.raw" of=pv.head bs=512 skip="$start" count=2048 status=none
$sparse pv.head "$corpus/lvm/pv-head"

# btrfs: the smallest volume mkfs.btrfs makes, filled from a tiny tree.
mkdir -p btree/etc btree/usr/lib
printf 'ID=opensuse-leap\nVERSION_ID="15.5"\n' > btree/usr/lib/os-release
ln -s ../usr/lib/os-release btree/etc/os-release
head -c 9000 /dev/urandom > btree/etc/blob
truncate -s 120M b.img
mkfs.btrfs -q -r btree b.img
$sparse b.img "$corpus/btrfs/small"

# ova: VMware's layout (descriptor, SHA-256 manifest, a streamOptimized VMDK), one with a
# qcow2 disk and no manifest, and the loose descriptor's shape with a SHA-1 manifest.
qemu-img create -q -f raw o.raw 128K && qemu-io -f raw -c "write -P 0x5a 0 4k" o.raw >/dev/null
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized o.raw o-disk1.vmdk
qemu-img convert -q -f raw -O qcow2 -o cluster_size=512 o.raw o-disk1.qcow2
ovf() { # HREF
  printf '<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf"><References><File ovf:href="%s" ovf:id="file1"/></References><DiskSection><Disk ovf:capacity="128" ovf:capacityAllocationUnits="byte * 2^10" ovf:diskId="vmdisk1" ovf:fileRef="file1"/></DiskSection><VirtualSystem ovf:id="vm"><OperatingSystemSection ovf:id="94" vmw:osType="ubuntu64Guest"/><VirtualHardwareSection><Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>vmware.nvme.controller</rasd:ResourceSubType><rasd:ResourceType>20</rasd:ResourceType></Item><Item><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>5</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item><vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/></VirtualHardwareSection></VirtualSystem></Envelope>' "$1"
}
ovf o-disk1.vmdk > vmware.ovf
printf 'SHA256(vmware.ovf)= %s\nSHA256(o-disk1.vmdk)= %s\n' "$(sha256sum vmware.ovf | cut -c1-64)" "$(sha256sum o-disk1.vmdk | cut -c1-64)" > vmware.mf
tar --format=ustar -cf "$corpus/ova/vmware.ova" vmware.ovf vmware.mf o-disk1.vmdk
ovf o-disk1.qcow2 > qcow2.ovf
tar --format=ustar -cf "$corpus/ova/qcow2.ova" qcow2.ovf o-disk1.qcow2
printf 'SHA1(qcow2.ovf)= %s\nSHA1(o-disk1.qcow2)= %s\n' "$(sha1sum qcow2.ovf | cut -c1-40)" "$(sha1sum o-disk1.qcow2 | cut -c1-40)" > qcow2.mf
tar --format=ustar -cf "$corpus/ova/qcow2-sha1.ova" qcow2.ovf qcow2.mf o-disk1.qcow2
du -sh "$corpus/ova"
