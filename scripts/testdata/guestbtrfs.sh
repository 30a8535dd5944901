# Debian 12 on Btrfs with an ESP: the guest part's debootstrap tree (reused, not rebuilt:
# hard links into testdata/cache/guest/tree) packed by `mkfs.btrfs --rootdir` into the root
# partition of a GPT disk, as an installer that chose Btrfs lays it out. Nothing is mounted.
#   debian-btrfs.{raw,qcow2,vhd}  GPT: 1 ESP (FAT, EFI/BOOT/BOOTX64.EFI, EFI/debian/grubx64.efi),
#                                 2 btrfs root (label debbtrfs, UUID below), fstab by UUID
# The part runs after `guest` (parts run in name order) and needs its tree.
tree=$out/guest/tree
[ -d "$tree/etc" ] || { echo "guestbtrfs: run the guest part first ($tree is missing)" >&2; exit 1; }
cp -al "$tree" tree
root_uuid=2c7d9e1f-5a3b-4c8d-9e0f-1a2b3c4d5e6f
# A new file, not an edit: the tree's files are hard links to the guest part's.
rm -f tree/etc/fstab tree/etc/hostname
cat > tree/etc/fstab <<FSTAB
# <file system> <mount point> <type> <options> <dump> <pass>
UUID=$root_uuid / btrfs defaults 0 0
UUID=1234-ABCD /boot/efi vfat umask=0077 0 1
FSTAB
echo imgport-btrfs > tree/etc/hostname
kib=$(du -sk tree | cut -f1)
root_mib=$(( (kib * 14 / 10) / 1024 + 128 ))
truncate -s "${root_mib}M" root.btrfs
mkfs.btrfs -q -f -L debbtrfs -U "$root_uuid" -r tree root.btrfs >/dev/null 2>&1
rm -rf tree

# The ESP as in the guest part: a tiny x86-64 PE32+ header under the loaders' names.
python3 -c 'import sys; h=bytearray(512); h[0:2]=b"MZ"; h[0x3c:0x40]=(0x40).to_bytes(4,"little"); h[0x40:0x44]=b"PE\0\0"; h[0x44:0x46]=(0x8664).to_bytes(2,"little"); sys.stdout.buffer.write(h)' > BOOTX64.EFI
truncate -s 16M esp.fat
mkfs.vfat -F 16 -n ESP -i 1234ABCD esp.fat >/dev/null
mmd -i esp.fat ::/EFI ::/EFI/BOOT ::/EFI/debian
mcopy -i esp.fat BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI
mcopy -i esp.fat BOOTX64.EFI ::/EFI/debian/grubx64.efi

total=$((1 + 16 + root_mib + 1))
truncate -s "${total}M" debian-btrfs.raw
root_start=$(( (1 + 16) * 2048 ))
root_end=$(( root_start + root_mib * 2048 - 1 ))
sgdisk -o -n 1:2048:+16M -t 1:EF00 -c 1:ESP \
  -n 2:$root_start:$root_end -t 2:8300 -c 2:root debian-btrfs.raw >/dev/null
dd if=esp.fat of=debian-btrfs.raw bs=1M seek=1 conv=notrunc,sparse status=none
dd if=root.btrfs of=debian-btrfs.raw bs=1M seek=17 conv=notrunc,sparse status=none
rm -f root.btrfs esp.fat BOOTX64.EFI
qemu-img convert -f raw -O qcow2 debian-btrfs.raw debian-btrfs.qcow2
qemu-img convert -f raw -O vpc debian-btrfs.raw debian-btrfs.vhd
