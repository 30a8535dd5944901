# openSUSE's Btrfs layout (issue 20 item 4): the root is not the top-level subvolume but a
# snapper snapshot, and after a rollback the default subvolume is a later snapshot.
#   leap-snapper.raw  GPT: 1 ESP (FAT, EFI/BOOT/BOOTX64.EFI), 2 btrfs (label suseroot):
#                     @, @/.snapshots, @/home, @/var, @/usr/local as subvolumes;
#                     @/.snapshots/1/snapshot  the installed root (Leap 15.4, leap-old)
#                     @/.snapshots/2/snapshot  a writable snapshot of 1 made by a rollback,
#                                              then updated (Leap 15.5, leap-rollback);
#                                              the default subvolume
#                     fstab as the installer writes it: / without subvol=, the rest by
#                     subvol=/@/...
# Made by the kernel's Btrfs through a loop mount and btrfs-progs (subvolume create,
# snapshot, set-default): mkfs.btrfs --rootdir cannot make subvolumes or set the default.
# Needs the guest part's tree for a real x86-64 bash (parts run in name order).
tree=$out/guest/tree
[ -x "$tree/usr/bin/bash" ] || { echo "guestsnapper: run the guest part first ($tree is missing)" >&2; exit 1; }
uuid=8a2b3c4d-5e6f-4071-8293-a4b5c6d7e8f9

truncate -s 300M root.btrfs
mkfs.btrfs -q -f -L suseroot -U "$uuid" root.btrfs >/dev/null 2>&1
mkdir -p mnt
loop=$(losetup -f --show root.btrfs)
cleanup() {
  mountpoint -q mnt && umount mnt
  losetup -d "$loop" 2>/dev/null || true
  rmdir mnt 2>/dev/null || true
}
trap cleanup EXIT
mount -t btrfs "$loop" mnt
sv() { btrfs -q subvolume create "$1" >/dev/null; }
sv mnt/@
sv mnt/@/.snapshots
mkdir -p mnt/@/.snapshots/1 mnt/@/usr
sv mnt/@/.snapshots/1/snapshot
for d in home var usr/local; do sv "mnt/@/$d"; done

# The installed root: a small openSUSE Leap 15.4 tree.
r=mnt/@/.snapshots/1/snapshot
mkdir -p "$r"/etc "$r"/usr/bin "$r"/usr/lib "$r"/home "$r"/var "$r"/.snapshots "$r"/boot/efi
cp "$tree/usr/bin/bash" "$r/usr/bin/bash"
ln -s usr/bin "$r/bin"
leap() { # VERSION
  printf 'NAME="openSUSE Leap"\nVERSION="%s"\nID="opensuse-leap"\nID_LIKE="suse opensuse"\nVERSION_ID="%s"\nPRETTY_NAME="openSUSE Leap %s"\n' \
    "$1" "$1" "$1"
}
leap 15.4 > "$r/usr/lib/os-release"
ln -s ../usr/lib/os-release "$r/etc/os-release"
printf '127.0.0.1 localhost\n' > "$r/etc/hosts"
echo leap-old > "$r/etc/hostname"
{
  echo "UUID=$uuid / btrfs defaults 0 0"
  for d in .snapshots home var usr/local; do
    echo "UUID=$uuid /$d btrfs subvol=/@/$d 0 0"
  done
  echo "UUID=1234-ABCD /boot/efi vfat utf8 0 2"
} > "$r/etc/fstab"
printf '<?xml version="1.0"?>\n<snapshot>\n  <type>single</type>\n  <num>1</num>\n  <description>first root filesystem</description>\n</snapshot>\n' \
  > mnt/@/.snapshots/1/info.xml

# A rollback: a writable snapshot of 1 becomes the default, and is then updated.
mkdir -p mnt/@/.snapshots/2
btrfs -q subvolume snapshot "$r" mnt/@/.snapshots/2/snapshot >/dev/null
r2=mnt/@/.snapshots/2/snapshot
leap 15.5 > "$r2/usr/lib/os-release.new" && mv "$r2/usr/lib/os-release.new" "$r2/usr/lib/os-release"
echo leap-rollback > "$r2/etc/hostname"
printf '<?xml version="1.0"?>\n<snapshot>\n  <type>single</type>\n  <num>2</num>\n  <description>writable copy of #1</description>\n</snapshot>\n' \
  > mnt/@/.snapshots/2/info.xml
id=$(btrfs subvolume show "$r2" | awk '/Subvolume ID:/ {print $3}')
btrfs -q subvolume set-default "$id" mnt
btrfs subvolume get-default mnt > subvolume-default.txt
btrfs subvolume list mnt > subvolume-list.txt
umount mnt
losetup -d "$loop"
rmdir mnt
trap - EXIT

# The ESP: a tiny x86-64 PE32+ header under the removable-media loader's name.
python3 -c 'import sys; h=bytearray(512); h[0:2]=b"MZ"; h[0x3c:0x40]=(0x40).to_bytes(4,"little"); h[0x40:0x44]=b"PE\0\0"; h[0x44:0x46]=(0x8664).to_bytes(2,"little"); sys.stdout.buffer.write(h)' > BOOTX64.EFI
truncate -s 16M esp.fat
mkfs.vfat -F 16 -n ESP -i 1234ABCD esp.fat >/dev/null
mmd -i esp.fat ::/EFI ::/EFI/BOOT
mcopy -i esp.fat BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI

truncate -s $((1 + 16 + 300 + 1))M leap-snapper.raw
sgdisk -o -n 1:2048:+16M -t 1:EF00 -n 2:0:+300M -t 2:8300 leap-snapper.raw >/dev/null
dd if=esp.fat of=leap-snapper.raw bs=1M seek=1 conv=notrunc,sparse status=none
dd if=root.btrfs of=leap-snapper.raw bs=1M seek=17 conv=notrunc,sparse status=none
rm -f esp.fat root.btrfs BOOTX64.EFI
