# Linux layouts real fleets have (issue 20 item 4), packed from the guest part's debootstrap
# tree (hard links into testdata/cache/guest/tree, not rebuilt) without mounting anything:
#   usr-split.raw     GPT: 1 ESP, 2 ext4 root without /usr (/bin, /lib -> usr/..., and
#                     /etc/os-release -> ../usr/lib/os-release all need the mount), 3 ext4 /usr;
#                     fstab mounts / and /usr by UUID
#   whole-debian.raw  the Debian root as ext4 on the whole disk, no partition table
#   gpt-4kn.raw       GPT on 4096-byte sectors (sgdisk on a 4 KiB loop device): 1 ESP (FAT
#                     with 4 KiB sectors), 2 ext4 root; sfdisk's JSON of the device beside it
#   luks-root.raw     GPT: 1 ESP, 2 ext4 /boot (kernel, config, grub.cfg), 3 LUKS (a real
#                     LUKS header by qemu-img; the root inside cannot be read)
# The part runs after `guest` (parts run in name order) and needs its tree.
tree=$out/guest/tree
[ -d "$tree/etc" ] || { echo "guestlayouts: run the guest part first ($tree is missing)" >&2; exit 1; }

# A tiny x86-64 PE32+ header under the loaders' names, on a FAT ESP of SECTOR-byte sectors.
esp() { # IMAGE MIB SECTOR
  python3 -c 'import sys; h=bytearray(512); h[0:2]=b"MZ"; h[0x3c:0x40]=(0x40).to_bytes(4,"little"); h[0x40:0x44]=b"PE\0\0"; h[0x44:0x46]=(0x8664).to_bytes(2,"little"); sys.stdout.buffer.write(h)' > BOOTX64.EFI
  truncate -s "$2M" "$1"
  mkfs.vfat -S "$3" -n ESP -i 1234ABCD "$1" >/dev/null
  mmd -i "$1" ::/EFI ::/EFI/BOOT ::/EFI/debian
  mcopy -i "$1" BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI
  mcopy -i "$1" BOOTX64.EFI ::/EFI/debian/grubx64.efi
  rm -f BOOTX64.EFI
}
ext4() { # IMAGE DIR LABEL UUID: an ext4 sized to hold DIR
  local kib mib
  kib=$(du -sk "$2" | cut -f1)
  mib=$(( (kib * 13 / 10) / 1024 + 32 ))
  truncate -s "${mib}M" "$1"
  mkfs.ext4 -q -F -L "$3" -U "$4" -E root_owner=0:0 -d "$2" "$1"
}
mib_of() { echo $(( ($(stat -c %s "$1") + 1048575) / 1048576 )); }
fstab() { # DIR, then fstab lines: a new file (the tree's files are hard links)
  local dir=$1; shift
  rm -f "$dir/etc/fstab"
  printf '%s\n' '# <file system> <mount point> <type> <options> <dump> <pass>' "$@" > "$dir/etc/fstab"
}

root_uuid=4a1b2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d
usr_uuid=5b2c3d4e-6f7a-4b8c-9d0e-1f2a3b4c5d6e
boot_uuid=6c3d4e5f-7a8b-4c9d-8e1f-2a3b4c5d6e7f
cp -al "$tree" tree

# --- /usr on its own partition ---------------------------------------------------------
mv tree/usr usr
mkdir tree/usr
fstab tree "UUID=$root_uuid / ext4 errors=remount-ro 0 1" "UUID=$usr_uuid /usr ext4 defaults 0 2" \
  "UUID=1234-ABCD /boot/efi vfat umask=0077 0 1"
ext4 root.ext4 tree splitroot "$root_uuid"
ext4 usr.ext4 usr splitusr "$usr_uuid"
esp esp.fat 16 512
r=$(mib_of root.ext4); u=$(mib_of usr.ext4)
truncate -s $((1 + 16 + r + u + 1))M usr-split.raw
sgdisk -o -n 1:2048:+16M -t 1:EF00 -n 2:0:+${r}M -t 2:8304 -n 3:0:+${u}M -t 3:8314 usr-split.raw >/dev/null
dd if=esp.fat of=usr-split.raw bs=1M seek=1 conv=notrunc,sparse status=none
dd if=root.ext4 of=usr-split.raw bs=1M seek=17 conv=notrunc,sparse status=none
dd if=usr.ext4 of=usr-split.raw bs=1M seek=$((17 + r)) conv=notrunc,sparse status=none
rm -rf tree/usr root.ext4 usr.ext4
mv usr tree/usr

# --- the whole disk one file system, and the same root on a 4Kn GPT disk ----------------
fstab tree "UUID=$root_uuid / ext4 errors=remount-ro 0 1"
ext4 whole-debian.raw tree debroot "$root_uuid"
esp esp4k.fat 32 4096
r=$(mib_of whole-debian.raw)
truncate -s $((1 + 32 + r + 1))M gpt-4kn.raw
loop=$(losetup -b 4096 -f --show gpt-4kn.raw)
sgdisk -o -n 1:256:+32M -t 1:EF00 -n 2:0:+${r}M -t 2:8304 "$loop" >/dev/null
sfdisk --json "$loop" > gpt-4kn.sfdisk.json
losetup -d "$loop"
dd if=esp4k.fat of=gpt-4kn.raw bs=1M seek=1 conv=notrunc,sparse status=none
dd if=whole-debian.raw of=gpt-4kn.raw bs=1M seek=33 conv=notrunc,sparse status=none
rm -f esp4k.fat

# --- a LUKS-encrypted root with /boot apart ------------------------------------------------
mkdir boot
cp -a tree/boot/config-* boot/
mkdir boot/grub
printf 'set default=0\nmenuentry "Debian GNU/Linux" {\n  linux /vmlinuz root=/dev/mapper/root\n}\n' > boot/grub/grub.cfg
ext4 boot.ext4 boot debboot "$boot_uuid"
qemu-img create -q -f luks --object secret,id=s0,data=test-passphrase -o key-secret=s0 root.luks 64M
b=$(mib_of boot.ext4)
truncate -s $((1 + 16 + b + 64 + 1))M luks-root.raw
sgdisk -o -n 1:2048:+16M -t 1:EF00 -n 2:0:+${b}M -t 2:8300 -n 3:0:+64M -t 3:8309 luks-root.raw >/dev/null
dd if=esp.fat of=luks-root.raw bs=1M seek=1 conv=notrunc,sparse status=none
dd if=boot.ext4 of=luks-root.raw bs=1M seek=17 conv=notrunc,sparse status=none
dd if=root.luks of=luks-root.raw bs=1M seek=$((17 + b)) conv=notrunc,sparse status=none
rm -rf boot boot.ext4 root.luks esp.fat tree
