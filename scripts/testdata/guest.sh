# Guest-inspection test disks, packed from a real Debian tree WITHOUT mounting anything:
# `mkfs.ext4 -d` fills the root file system from the tree, mkfs.vfat + mtools make the ESP,
# sgdisk/sfdisk write the tables and dd places the volumes.
#   tree/                       debootstrap --variant=minbase of bookworm plus a cloud kernel
#                               with initramfs-tools (real modules, /boot/config-*, initramfs,
#                               modules.builtin), cloud-init, qemu-guest-agent, grub-pc-bin
#   debian-gpt.{raw,qcow2,vhd}  GPT: 1 ESP (FAT, EFI/BOOT/BOOTX64.EFI), 2 ext4 root
#   debian-mbr.{raw,qcow2,vhd}  MBR: 1 ext4 root (active), GRUB's boot.img in sector 0
#   rhel-lvm.raw, lvm-ext4.raw  LVM layouts (below)
# Fixed identities so tests can assert them: root label debroot, UUID below, ESP serial
# 1234-ABCD (the tree's fstab names both).
#
# The debootstrap tree is the slow step: it is kept across rebuilds of this part
# as long as the debootstrap command line below is unchanged (tree.key).
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
include=linux-image-cloud-amd64,initramfs-tools,cloud-init,qemu-guest-agent,grub-pc-bin,systemd-sysv,python3-cffi-backend
key="$suite $include v1"
if [ -f "$out/guest/tree.key" ] && [ "$(cat "$out/guest/tree.key")" = "$key" ] && [ -d "$out/guest/tree/etc" ]; then
  mv "$out/guest/tree" tree
else
  debootstrap --variant=minbase --include="$include" "$suite" tree "$mirror" >debootstrap.log 2>&1 \
    || { tail -30 debootstrap.log >&2; exit 1; }
  rm -f debootstrap.log
  # Keep what inspection looks at; drop what only makes the tree big.
  rm -rf tree/usr/share/doc/* tree/usr/share/man/* tree/usr/share/locale/* tree/usr/share/info/* \
    tree/var/lib/apt/lists/* tree/var/cache/apt/*.bin tree/var/cache/apt/archives/*.deb \
    tree/usr/share/zoneinfo/[a-z]* tree/var/log/*.log
  # A minimal fstab naming the root by LABEL and the ESP by UUID, as an installer writes it.
  cat > tree/etc/fstab <<'FSTAB'
# <file system> <mount point> <type> <options> <dump> <pass>
LABEL=debroot / ext4 errors=remount-ro 0 1
UUID=1234-ABCD /boot/efi vfat umask=0077 0 1
FSTAB
  echo imgport-debian > tree/etc/hostname
fi
echo "$key" > tree.key
tree=$PWD/tree
kib=$(du -sk tree | cut -f1)
root_uuid=6f1b3c2a-8d4e-4f5a-9b6c-7d8e9f0a1b2c
# room for the tree plus ext4 metadata, rounded to whole MiB
root_mib=$(( (kib * 13 / 10) / 1024 + 64 ))
truncate -s "${root_mib}M" root.ext4
mkfs.ext4 -q -F -L debroot -U "$root_uuid" -E root_owner=0:0 -d "$tree" root.ext4

# A tiny PE32+ image for x86-64 (MZ, e_lfanew = 0x40, "PE\0\0", Machine 0x8664) standing in
# for a real boot loader: the inspector only reads the name and the COFF machine.
python3 -c 'import sys; h=bytearray(512); h[0:2]=b"MZ"; h[0x3c:0x40]=(0x40).to_bytes(4,"little"); h[0x40:0x44]=b"PE\0\0"; h[0x44:0x46]=(0x8664).to_bytes(2,"little"); sys.stdout.buffer.write(h)' > BOOTX64.EFI
truncate -s 16M esp.fat
mkfs.vfat -F 16 -n ESP -i 1234ABCD esp.fat >/dev/null
mmd -i esp.fat ::/EFI ::/EFI/BOOT ::/EFI/debian
mcopy -i esp.fat BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI
mcopy -i esp.fat BOOTX64.EFI ::/EFI/debian/grubx64.efi

# GPT disk: ESP at 1 MiB, root right after it, 1 MiB left for the backup table.
total=$((1 + 16 + root_mib + 1))
truncate -s "${total}M" debian-gpt.raw
root_start=$(( (1 + 16) * 2048 ))
root_end=$(( root_start + root_mib * 2048 - 1 ))
sgdisk -o -n 1:2048:+16M -t 1:EF00 -c 1:ESP \
  -n 2:$root_start:$root_end -t 2:8300 -c 2:root debian-gpt.raw >/dev/null
dd if=esp.fat of=debian-gpt.raw bs=1M seek=1 conv=notrunc,sparse status=none
dd if=root.ext4 of=debian-gpt.raw bs=1M seek=17 conv=notrunc,sparse status=none

# MBR disk: one active Linux partition at 1 MiB, GRUB's boot.img code in bytes 0..440.
truncate -s "$((1 + root_mib))M" debian-mbr.raw
printf 'label: dos\nlabel-id: 0x0d15ea5e\nstart=2048, type=83, bootable\n' | sfdisk -q debian-mbr.raw
dd if="$tree/usr/lib/grub/i386-pc/boot.img" of=debian-mbr.raw bs=440 count=1 conv=notrunc status=none
dd if=root.ext4 of=debian-mbr.raw bs=1M seek=1 conv=notrunc,sparse status=none
rm -f root.ext4 esp.fat BOOTX64.EFI

for d in debian-gpt debian-mbr; do
  qemu-img convert -f raw -O qcow2 "$d.raw" "$d.qcow2"
  qemu-img convert -f raw -O vpc "$d.raw" "$d.vhd"
done

# --- LVM layouts -------------------------------------------------------------------------
# Real lvm2 metadata: pvcreate/vgcreate/lvcreate run on a loop device over the PV partition
# with device-mapper activation switched off (`global/activation = 0`: no dm needed, nothing
# is activated or zeroed). The file systems are built as images and copied to where LVM put
# each LV's extents (guest.py place). Each root LV is grown after the next LV was made, so
# it has two segments.
lvmcfg='global { activation = 0 } backup { backup = 0 archive = 0 } devices { obtain_device_list_from_udev = 0 }'
export LVM_SUPPRESS_FD_WARNINGS=1
# lvm, without the two notes that this configuration makes it print on every call (no
# activation, no metadata backup); any other message still shows.
lvmq() {
  "$@" 2> >(grep -v -e 'Activation disabled' -e 'metadata update is NOT backed up' >&2)
}
gp="python3 $root/scripts/testdata/guest.py"

lvm_on() { # DISK OFFSET SIZE: a loop device over the PV partition, in $loop
  loop=$(losetup -f --show -o "$2" --sizelimit "$3" "$1")
}
lvm_place() { # DISK OFFSET VG LV IMAGE
  local pe_start extent segs
  pe_start=$(lvmq pvs --config "$lvmcfg" --noheadings --units b --nosuffix -o pe_start "$loop" | tr -d ' ')
  extent=$(lvmq vgs --config "$lvmcfg" --noheadings --units b --nosuffix -o vg_extent_size "$3" | tr -d ' ')
  segs=$(lvmq lvs --config "$lvmcfg" --noheadings --segments -o seg_start_pe,seg_pe_ranges "$3/$4" \
    | awk '{print $1":"$2}')
  # shellcheck disable=SC2086
  $gp place "$1" "$2" "$pe_start" "$extent" "$5" $segs
}
lvm_off() { # detach (no vgremove: that would wipe the metadata just written)
  losetup -d "$loop"
}

# A small RHEL-like tree: real x86-64 bash from the Debian tree, /bin -> usr/bin, release
# files, a kernel config and module names (empty .ko.xz files stand for the modules).
rhel_tree() { # DIR OS_RELEASE RELEASE_FILE RELEASE_TEXT KERNEL FW_CFG FSTAB
  mkdir -p "$1"/etc "$1"/usr/bin "$1"/boot "$1"/lib/modules/"$5"/kernel/drivers/block \
    "$1"/lib/modules/"$5"/kernel/drivers/net "$1"/lib/modules/"$5"/kernel/drivers/virtio \
    "$1"/lib/modules/"$5"/kernel/drivers/nvme/host
  cp "$tree/usr/bin/bash" "$1/usr/bin/bash"
  ln -s usr/bin "$1/bin"
  printf '%s' "$2" > "$1/etc/os-release"
  printf '%s\n' "$4" > "$1/etc/$3"
  printf '127.0.0.1 localhost\n' > "$1/etc/hosts"
  printf '%s' "$7" > "$1/etc/fstab"
  printf 'CONFIG_VIRTIO_BLK=m\nCONFIG_VIRTIO_NET=m\nCONFIG_VIRTIO_PCI=y\nCONFIG_BLK_DEV_NVME=m\n%s\n' "$6" \
    > "$1/boot/config-$5"
  for m in block/virtio_blk net/virtio_net nvme/host/nvme; do
    : > "$1/lib/modules/$5/kernel/drivers/$m.ko.xz"
  done
  printf 'kernel/drivers/virtio/virtio_pci.ko\n' > "$1/lib/modules/$5/modules.builtin"
}

# 1. CentOS 7 default layout: MBR, sda1 = XFS /boot, sda2 = LVM PV (VG centos: root XFS,
#    swap), fstab naming /dev/mapper/centos-root and UUID= for /boot.
boot_uuid=3e8d1c52-1b2a-4c6d-8e9f-0a1b2c3d4e5f
rhel_tree centos-root 'NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
' centos-release 'CentOS Linux release 7.9.2009 (Core)' 3.10.0-1160.el7.x86_64 \
  '# CONFIG_FW_CFG_SYSFS is not set' "/dev/mapper/centos-root / xfs defaults 0 0
UUID=$boot_uuid /boot xfs defaults 0 0
/dev/mapper/centos-swap swap swap defaults 0 0
"
mkdir -p centos-boot/grub2
printf 'menuentry "CentOS Linux (3.10.0-1160.el7.x86_64) 7 (Core)" {\n}\n' > centos-boot/grub2/grub.cfg
# XFS refuses file systems under 300 MiB; the files are sparse.
truncate -s 320M boot.xfs
$gp proto centos-boot > boot.proto
mkfs.xfs -q -f -m uuid=$boot_uuid -p boot.proto boot.xfs
truncate -s 1024M rhel-lvm.raw
printf 'label: dos\nlabel-id: 0x0c3e7057\nstart=2048, size=655360, type=83, bootable\nstart=657408, type=8e\n' \
  | sfdisk -q rhel-lvm.raw
dd if=boot.xfs of=rhel-lvm.raw bs=1M seek=1 conv=notrunc,sparse status=none
pv_off=$((657408 * 512)); pv_len=$(( 1024 * 1048576 - pv_off ))
lvm_on rhel-lvm.raw $pv_off $pv_len
lvmq pvcreate --config "$lvmcfg" -q -ff -y "$loop" >/dev/null
lvmq vgcreate --config "$lvmcfg" -q centos "$loop" >/dev/null
lvcreate --config "$lvmcfg" -q -an -Zn -y -L 320M -n root centos >/dev/null 2>&1
lvcreate --config "$lvmcfg" -q -an -Zn -y -L 32M -n swap centos >/dev/null 2>&1
lvextend --config "$lvmcfg" -q -L +80M centos/root >/dev/null 2>&1
truncate -s 400M root.xfs
$gp proto centos-root > root.proto
mkfs.xfs -q -f -p root.proto root.xfs
truncate -s 32M swap.img && mkswap -q -U 5a5a5a5a-0000-4000-8000-000000000001 swap.img
lvm_place rhel-lvm.raw $pv_off centos root root.xfs
lvm_place rhel-lvm.raw $pv_off centos swap swap.img
lvm_off
rm -rf centos-root centos-boot boot.xfs root.xfs swap.img boot.proto root.proto

# 2. GPT: 1 BIOS boot, 2 ext4 /boot (kernel config, grub2/grub.cfg; fstab mounts it by
#    UUID), 3 LVM PV (VG "vg-test", a dash that /dev/mapper doubles) whose root LV is ext4
#    with a Rocky Linux 8 tree: its kernel lacks FW_CFG_SYSFS=y (the config is on /boot, so
#    only the fstab mount finds it), no cloud-init, and an fstab that names /dev/vdb1.
rocky_boot_uuid=9d2c4b1a-3e5f-4a6b-8c7d-1e2f3a4b5c6d
rhel_tree rocky-root 'NAME="Rocky Linux"
VERSION="8.8 (Green Obsidian)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="8.8"
PRETTY_NAME="Rocky Linux 8.8 (Green Obsidian)"
' rocky-release 'Rocky Linux release 8.8 (Green Obsidian)' 4.18.0-477.10.1.el8_8.x86_64 \
  'CONFIG_FW_CFG_SYSFS=m' "/dev/mapper/vg--test-root / ext4 defaults 1 1
UUID=$rocky_boot_uuid /boot ext4 defaults 1 2
/dev/vdb1 /data ext4 defaults 0 2
"
echo rocky-lvm > rocky-root/etc/hostname
mkdir -p rocky-boot/grub2
mv rocky-root/boot/* rocky-boot/
printf 'set default=0\n' > rocky-boot/grub2/grub.cfg
truncate -s 32M rocky-boot.ext4
mkfs.ext4 -q -F -L rockyboot -U $rocky_boot_uuid -E root_owner=0:0 -d rocky-boot rocky-boot.ext4
truncate -s 288M lvm-ext4.raw
sgdisk -o -n 1:2048:+1M -t 1:EF02 -c 1:bios -n 2:0:+32M -t 2:8300 -c 2:boot \
  -n 3:0:0 -t 3:8E00 -c 3:pv lvm-ext4.raw >/dev/null
dd if=rocky-boot.ext4 of=lvm-ext4.raw bs=1M seek=2 conv=notrunc,sparse status=none
pv_start=$(sgdisk -i 3 lvm-ext4.raw | awk '/First sector/ {print $3}')
pv_end=$(sgdisk -i 3 lvm-ext4.raw | awk '/Last sector/ {print $3}')
pv_off=$((pv_start * 512)); pv_len=$(( (pv_end - pv_start + 1) * 512 ))
lvm_on lvm-ext4.raw $pv_off $pv_len
lvmq pvcreate --config "$lvmcfg" -q -ff -y "$loop" >/dev/null
lvmq vgcreate --config "$lvmcfg" -q -s 1M vg-test "$loop" >/dev/null
lvcreate --config "$lvmcfg" -q -an -Zn -y -L 64M -n root vg-test >/dev/null 2>&1
lvcreate --config "$lvmcfg" -q -an -Zn -y -L 8M -n data vg-test >/dev/null 2>&1
lvextend --config "$lvmcfg" -q -L +32M vg-test/root >/dev/null 2>&1
truncate -s 96M rocky.ext4
mkfs.ext4 -q -F -L rockyroot -E root_owner=0:0 -d rocky-root rocky.ext4
lvm_place lvm-ext4.raw $pv_off vg-test root rocky.ext4
lvm_off
rm -rf rocky-root rocky-boot rocky.ext4 rocky-boot.ext4

# --- partition-table cases ----------------------------------------------------------------
# GPT on 4096-byte logical sectors: sgdisk on a loop device with 4 KiB blocks; sfdisk's JSON of
# that device is kept as the oracle (sfdisk reading the plain file would assume 512).
truncate -s 64M tables-4kn.raw
loop=$(losetup -b 4096 -f --show tables-4kn.raw)
sgdisk -o -n 1:0:+8M -t 1:EF00 -c 1:esp -n 2:0:0 -t 2:8300 -c 2:data "$loop" >/dev/null
sfdisk --json "$loop" > tables-4kn.sfdisk.json
losetup -d "$loop"
# MBR with an extended partition holding three logicals (an EBR chain).
truncate -s 64M tables-ebr.raw
printf 'label: dos\nstart=2048, size=16MiB, type=83\ntype=5\nsize=8MiB, type=83\nsize=8MiB, type=82\ntype=83\n' \
  | sfdisk -q tables-ebr.raw
# Hybrid MBR: GPT plus partitions 1 and 2 also listed in the protective MBR.
truncate -s 64M tables-hybrid.raw
sgdisk -o -n 1:2048:+16M -t 1:EF00 -n 2:0:0 -t 2:8300 tables-hybrid.raw >/dev/null
sgdisk -h 1:2 tables-hybrid.raw >/dev/null
# GPT whose primary header is corrupt (one byte of its first-usable-LBA field flipped).
truncate -s 64M tables-bad-primary.raw
sgdisk -o -n 1:2048:+16M -t 1:EF00 -n 2:0:0 -t 2:8300 tables-bad-primary.raw >/dev/null
printf '\x7f' | dd of=tables-bad-primary.raw bs=1 seek=$((512 + 40)) conv=notrunc status=none

# --- volumes imgport detects but does not read -------------------------------------------
# GPT: 1 btrfs, 2 LUKS (a LUKS header made by qemu-img), 3 swap, 4 ext2.
truncate -s 256M volumes.raw
sgdisk -o -n 1:2048:+128M -t 1:8300 -n 2:0:+16M -t 2:8309 -n 3:0:+16M -t 3:8200 \
  -n 4:0:0 -t 4:8300 volumes.raw >/dev/null
part_off() { sgdisk -i "$1" volumes.raw | awk '/First sector/ {print $3 * 512}'; }
truncate -s 128M vol.btrfs && mkfs.btrfs -q -f -L btrvol -U 0b7cfa3e-1d2c-4e5f-a6b7-c8d9e0f1a2b3 vol.btrfs >/dev/null
qemu-img create -q -f luks --object secret,id=s0,data=test-passphrase -o key-secret=s0 vol.luks 16M
truncate -s 16M vol.swap && mkswap -q -L swapvol vol.swap
truncate -s 16M vol.ext2 && mkfs.ext2 -q -F -L ext2vol vol.ext2
i=1
for v in vol.btrfs vol.luks vol.swap vol.ext2; do
  dd if=$v of=volumes.raw bs=512 seek=$(( $(part_off $i) / 512 )) conv=notrunc,sparse status=none
  i=$((i + 1))
done
rm -f vol.btrfs vol.luks vol.swap vol.ext2

# --- openSUSE-like root on btrfs ------------------------------------------------------------
# GPT: 1 BIOS boot, 2 btrfs root (mkfs.btrfs --rootdir: 400 files so the trees have interior
# nodes, real x86-64 bash as a regular extent, /bin -> usr/bin), 3 ESP.
mkdir -p suse/etc/sysconfig suse/usr/bin suse/usr/lib
cp "$tree/usr/bin/bash" suse/usr/bin/bash
ln -s usr/bin suse/bin
printf 'NAME="openSUSE Leap"\nVERSION="15.5"\nID="opensuse-leap"\nID_LIKE="suse opensuse"\nVERSION_ID="15.5"\nPRETTY_NAME="openSUSE Leap 15.5"\n' \
  > suse/usr/lib/os-release
ln -s ../usr/lib/os-release suse/etc/os-release
printf '127.0.0.1 localhost\n' > suse/etc/hosts
echo suse-btrfs > suse/etc/hostname
btrfs_uuid=7e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b
printf 'UUID=%s / btrfs defaults 0 0\n' "$btrfs_uuid" > suse/etc/fstab
for i in $(seq 400); do echo "KEY_$i=value" > "suse/etc/sysconfig/file-$i"; done
truncate -s 300M suse.btrfs
mkfs.btrfs -q -f -L suseroot -U "$btrfs_uuid" -r suse suse.btrfs >/dev/null 2>&1
truncate -s 340M suse-btrfs.raw
sgdisk -o -n 1:2048:+1M -t 1:EF02 -n 2:0:+300M -t 2:8300 -n 3:0:0 -t 3:EF00 suse-btrfs.raw >/dev/null
dd if=suse.btrfs of=suse-btrfs.raw bs=1M seek=2 conv=notrunc,sparse status=none
rm -rf suse suse.btrfs
