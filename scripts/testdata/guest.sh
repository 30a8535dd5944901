# Guest-inspection test disks, packed from the debootstrap tree of debian-rootfs.sh WITHOUT
# mounting anything: `mkfs.ext4 -d` fills the root file system from the tree, mkfs.vfat +
# mtools make the ESP, sgdisk/sfdisk write the tables and dd places the volumes.
#   debian-gpt.{raw,qcow2,vhd}  GPT: 1 ESP (FAT, EFI/BOOT/BOOTX64.EFI), 2 ext4 root
#   debian-mbr.{raw,qcow2,vhd}  MBR: 1 ext4 root (active), GRUB's boot.img in sector 0
# Fixed identities so tests can assert them: root label debroot, UUID below, ESP serial
# 1234-ABCD (the tree's fstab names both).
tree=$out/debian-rootfs/tree
[ -d "$tree/etc" ] || { echo "guest.sh: $tree missing (debian-rootfs.sh builds it)" >&2; exit 1; }
root_uuid=6f1b3c2a-8d4e-4f5a-9b6c-7d8e9f0a1b2c
kib=$(cat "$out/debian-rootfs/tree.du")
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
