# md RAID1 roots made by the real tools (issue 20 item 4): Linux's md driver and mdadm run in
# a small emulated machine (qemu-system-x86_64, KVM when it works, else TCG), since the
# machine building the test data may have no md driver of its own. The guest is the Debian
# kernel and modules of the guest part's tree, booted with an initramfs made here (static
# busybox, mdadm with its libraries, the modules, the /init below) that creates two
# RAID1 arrays of two members each, copies the Debian root (an ext4 made on the host with
# `mkfs.ext4 -d` from the tree) onto each array, waits for the resync, stops the arrays and
# powers off. The host then checks every member with `mdadm --examine` (which reads a plain
# file) and fails loudly if the superblocks are not what was asked for.
#   md12-a.raw           GPT: 1 ESP, 2 Linux RAID (FD00) member of a RAID1, metadata 1.2
#                        (superblock 4 KiB into the member, data at mdadm's data offset)
#   md090-a.raw          MBR: 1 Linux raid autodetect (0xfd, active) member of a RAID1,
#                        metadata 0.90 (superblock in the last 64 KiB-aligned 64 KiB of the
#                        member, data from its first byte); GRUB's boot.img in sector 0
#   md*-{a,b}.examine.txt  `mdadm --examine` of each member partition, both members
# Only member a of each pair is kept: imgport imports one disk, as an operator imports
# /dev/sda of a RAID1 pair (tests/it/guest.rs converts every guest*/ raw disk to qcow2 and
# VHD itself). Array UUIDs are fixed (--uuid) so tests can name the arrays. The part runs
# after `guest` (parts run in name order); it takes about a minute under TCG.
tree=$out/guest/tree
[ -d "$tree/etc" ] || { echo "guestmd: run the guest part first ($tree is missing)" >&2; exit 1; }

kver=$(basename "$(echo "$tree"/lib/modules/*)")
[ -f "$tree/boot/vmlinuz-$kver" ] || { echo "guestmd: no kernel for $kver in $tree/boot" >&2; exit 1; }
md12_uuid=7d4e5f6a-8b9c-4dae-8f01-2b3c4d5e6f70
md090_uuid=8e5f6a7b-9cad-4ebf-9012-3c4d5e6f7a81

# --- the Debian root, one ext4 per array (each names its own UUID in fstab) ----------------
ext4() { # IMAGE UUID FSTAB-EXTRA MDADM-CONF-LINE
  local kib mib
  rm -f tree/etc/fstab
  printf '%s\n' '# <file system> <mount point> <type> <options> <dump> <pass>' \
    "UUID=$2 / ext4 errors=remount-ro 0 1" "$3" > tree/etc/fstab
  rm -f tree/etc/mdadm/mdadm.conf
  printf '%s\n' '# the root array, as the installer writes it' "$4" > tree/etc/mdadm/mdadm.conf
  kib=$(du -sk tree | cut -f1)
  mib=$(( (kib * 13 / 10) / 1024 + 32 ))
  truncate -s "${mib}M" "$1"
  mkfs.ext4 -q -F -L mdroot -U "$2" -E root_owner=0:0 -d tree "$1"
}
cp -al "$tree" tree
mkdir -p tree/etc/mdadm
ext4 root12.ext4 "$md12_uuid" "UUID=1234-ABCD /boot/efi vfat umask=0077 0 1" \
  "ARRAY /dev/md/0 metadata=1.2 name=imgport:0"
ext4 root090.ext4 "$md090_uuid" "" "ARRAY /dev/md1 metadata=0.90"
rm -rf tree
mib_of() { echo $(( ($(stat -c %s "$1") + 1048575) / 1048576 )); }
r=$(mib_of root12.ext4); r090=$(mib_of root090.ext4); [ "$r090" -le "$r" ] || r=$r090

# --- member disks: tables by sgdisk/sfdisk; 8 MiB more than the root for md's own room ----
python3 -c 'import sys; h=bytearray(512); h[0:2]=b"MZ"; h[0x3c:0x40]=(0x40).to_bytes(4,"little"); h[0x40:0x44]=b"PE\0\0"; h[0x44:0x46]=(0x8664).to_bytes(2,"little"); sys.stdout.buffer.write(h)' > BOOTX64.EFI
truncate -s 16M esp.fat
mkfs.vfat -F 16 -n ESP -i 1234ABCD esp.fat >/dev/null
mmd -i esp.fat ::/EFI ::/EFI/BOOT ::/EFI/debian
mcopy -i esp.fat BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI
mcopy -i esp.fat BOOTX64.EFI ::/EFI/debian/grubx64.efi
for m in a b; do
  truncate -s $((1 + 16 + r + 8 + 1))M "md12-$m.raw"
  sgdisk -o -n 1:2048:+16M -t 1:EF00 -c 1:ESP -n 2:0:+$((r + 8))M -t 2:FD00 -c 2:raid \
    "md12-$m.raw" >/dev/null
  dd if=esp.fat of="md12-$m.raw" bs=1M seek=1 conv=notrunc,sparse status=none
  truncate -s $((1 + r + 8))M "md090-$m.raw"
  printf 'label: dos\nlabel-id: 0x0d15ea5f\nstart=2048, type=fd, bootable\n' | sfdisk -q "md090-$m.raw"
  dd if="$tree/usr/lib/grub/i386-pc/boot.img" of="md090-$m.raw" bs=440 count=1 conv=notrunc status=none
done
rm -f esp.fat BOOTX64.EFI

# --- the initramfs: busybox, mdadm and its libraries, the modules, /init -------------------
mkdir -p initrd/bin initrd/lib/modules
# Each binary with the libraries it links (none for busybox-static).
for bin in busybox mdadm; do
  path=$(command -v "$bin")
  cp "$path" "initrd/bin/$bin"
  for lib in $(ldd "$path" 2>/dev/null | grep -o '/[^ ]*' || true); do
    mkdir -p "initrd$(dirname "$lib")"
    cp -L "$lib" "initrd$lib"
  done
done
for tool in sh mount sleep cat insmod poweroff sync dd blockdev; do
  ln -s busybox "initrd/bin/$tool"
done
# The modules in load order, each after what it needs (modules.dep).
mods=$tree/lib/modules/$kver
order=()
add_mod() {
  local m=$1 d
  for d in $(grep "^$m:" "$mods/modules.dep" | cut -d: -f2); do add_mod "$d"; done
  case " ${order[*]} " in *" $m "*) ;; *) order+=("$m") ;; esac
}
for m in drivers/virtio/virtio_pci drivers/block/virtio_blk drivers/md/raid1; do
  add_mod "kernel/$m.ko"
done
for m in "${order[@]}"; do
  cp "$mods/$m" initrd/lib/modules/
  echo "/lib/modules/$(basename "$m")" >> initrd/lib/modules/order
done
# /init: the arrays as an installer makes them (mdadm --create, the kernel writes the rest).
cat > initrd/init <<'INIT'
#!/bin/sh
fail() { echo "guestmd: FAILED: $*"; poweroff -f; }
mkdir -p /proc /sys /dev /run /tmp
mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev || fail mount
for m in $(cat /lib/modules/order); do insmod "$m" || fail "insmod $m"; done
n=0
while [ ! -b /dev/vdf1 ]; do n=$((n + 1)); [ $n -lt 100 ] || fail "no /dev/vdf1"; sleep 0.1; done
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 --homehost=imgport \
  --name=0 --uuid=0a1b2c3d:4e5f6a7b:8c9d0e1f:2a3b4c5d /dev/vdb2 /dev/vdc2 || fail "mdadm --create 1.2"
mdadm --create /dev/md1 --run --level=1 --raid-devices=2 --metadata=0.90 \
  --uuid=1b2c3d4e:5f6a7b8c:9d0e1f2a:3b4c5d6e /dev/vde1 /dev/vdf1 \
  || fail "mdadm --create 0.90"
for pair in md0:vda md1:vdd; do
  md=/dev/${pair%:*} src=/dev/${pair#*:}
  [ "$(blockdev --getsize64 "$md")" -ge "$(blockdev --getsize64 "$src")" ] || fail "$md too small"
  dd if="$src" of="$md" bs=1M conv=fsync 2>/dev/null || fail "dd to $md"
done
mdadm --wait /dev/md0 /dev/md1
cat /proc/mdstat
sync
mdadm --stop /dev/md0 /dev/md1 || fail "mdadm --stop"
echo "guestmd: done"
poweroff -f
INIT
chmod +x initrd/init
(cd initrd && find . | cpio -o -H newc --quiet | gzip -1) > initrd.gz
rm -rf initrd

# --- run it -------------------------------------------------------------------------------
# KVM only where /dev/kvm opens and the CPU has virtualisation; TCG everywhere else.
accel=tcg
if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then accel=kvm:tcg; fi
drive() { echo "-drive file=$1,format=raw,if=virtio,cache=unsafe"; }
# shellcheck disable=SC2046
timeout 900 qemu-system-x86_64 -machine q35 -accel "$accel" -m 512 -smp 1 -nodefaults \
  -display none -serial file:console.log -no-reboot \
  -kernel "$tree/boot/vmlinuz-$kver" -initrd initrd.gz \
  -append "console=ttyS0 panic=-1 quiet" \
  $(drive root12.ext4) $(drive md12-a.raw) $(drive md12-b.raw) \
  $(drive root090.ext4) $(drive md090-a.raw) $(drive md090-b.raw) \
  || { tail -40 console.log >&2; echo "guestmd: the VM failed" >&2; exit 1; }
tr -d '\r' < console.log | grep -qx 'guestmd: done' \
  || { tail -40 console.log >&2; echo "guestmd: the VM did not finish its arrays" >&2; exit 1; }
rm -f initrd.gz root12.ext4 root090.ext4

# --- check what the VM made, on the host --------------------------------------------------
part() { # IMAGE N OUT: partition N of IMAGE as a file of its own
  local start size
  read -r start size < <(sfdisk -d "$1" | awk -v n="$1$2" '$1 == n {gsub(",", ""); print $4, $6}')
  dd if="$1" of="$3" bs=512 skip="$start" count="$size" conv=sparse status=none
}
check() { # IMAGE N METADATA ARRAY-UUID
  local p=${1%.raw}.member
  part "$1" "$2" "$p"
  mdadm --examine "$p" > "${1%.raw}.examine.txt" \
    || { echo "guestmd: mdadm --examine finds no member in $1 partition $2" >&2; exit 1; }
  grep -Eq "^ *Version : $3(\\.00)?\$" "${1%.raw}.examine.txt" \
    && grep -Eq '^ *Raid Level : raid1$' "${1%.raw}.examine.txt" \
    && grep -Eq '^ *Raid Devices : 2$' "${1%.raw}.examine.txt" \
    && grep -Eq '^ *State : clean$' "${1%.raw}.examine.txt" \
    && grep -Eq "^ *(Array )?UUID : $4\$" "${1%.raw}.examine.txt" \
    || { cat "${1%.raw}.examine.txt" >&2; echo "guestmd: $1 is not a $3 RAID1 member" >&2; exit 1; }
  rm -f "$p"
}
for m in a b; do
  check "md12-$m.raw" 2 1.2 0a1b2c3d:4e5f6a7b:8c9d0e1f:2a3b4c5d
  check "md090-$m.raw" 1 0.90 1b2c3d4e:5f6a7b8c:9d0e1f2a:3b4c5d6e
done
rm -f md12-b.raw md090-b.raw console.log
# The VM wrote every byte of the arrays, zeros too: give the zeros back as holes.
for d in md12-a md090-a; do fallocate --dig-holes "$d.raw"; done
