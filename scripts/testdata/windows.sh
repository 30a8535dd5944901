# Test images for the FAT and NTFS readers, the registry reader and Windows detection.
# Run by make-testdata.sh in an empty directory (the future $IMGPORT_TESTDATA/windows/).
#
# FAT: mkfs.vfat makes the volumes and mtools (mmd, mcopy) fills them without mounting.
# NTFS: mkntfs makes the volume. The ntfs-3g tools cannot make directories in an unmounted
# volume (ntfscp only copies into existing ones), so the volume is mounted with the ntfs-3g
# FUSE driver (the machine runs as root and /dev/fuse is usable) and filled with cp; a
# directory marked compressed (system.ntfs_attrib_be, with -o compression) makes an
# LZNT1-compressed cmd.exe as CompactOS would. The registry hives come from windows.py (our
# own regf writer); hivexget (libhivex-bin) reads them back as an oracle.
gen="python3 $root/scripts/testdata/windows.py"
# make-testdata.sh installs packages only when its main set is rebuilt; this part's tools
# (ntfs-3g, libhivex-bin) may be newer than a cached main set.
"$root/scripts/install-deps.sh"
if [ ! -c /dev/fuse ]; then
  echo "windows.sh: /dev/fuse is missing: the NTFS images need the ntfs-3g FUSE driver" >&2
  exit 1
fi

# --- source files, kept beside the images so tests compare bytes ---
mkdir -p files
$gen pe files/BOOTX64.EFI 0x8664 10 20000
$gen pe files/bootmgfw.efi 0x8664 10 70000
head -c 300000 /dev/urandom > files/big.bin
printf 'long name content\n' > files/long.txt
printf 'lower\n' > files/lower.txt

# --- FAT volumes: 32 (ESP), 16 and 12 ---
fat() { # name size fatbits serial label sectors-per-cluster
  truncate -s "$2" "$1"
  mkfs.vfat -F "$3" -S 512 -s "$6" -i "$4" -n "$5" "$1" >/dev/null
  export MTOOLS_SKIP_CHECK=1
  mmd -i "$1" ::/EFI ::/EFI/BOOT ::/EFI/Microsoft ::/EFI/Microsoft/Boot ::/many
  mcopy -i "$1" files/BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI
  mcopy -i "$1" files/bootmgfw.efi ::/EFI/Microsoft/Boot/bootmgfw.efi
  mcopy -i "$1" files/long.txt "::/A long file name, with spaces.txt"
  mcopy -i "$1" files/lower.txt ::/lower.txt
  mcopy -i "$1" files/big.bin ::/big.bin
  # Enough entries (with long names) that the directory spans many clusters.
  for i in $(seq 1 120); do printf 'entry %d\n' "$i" > "files/entry-$i.txt"; done
  mcopy -i "$1" files/entry-*.txt ::/many/
}
fat esp32.img 40M 32 1234ABCD ESP 1
fat esp16.img 24M 16 0BADF00D FAT16VOL 4
fat esp12.img 3M 12 00C0FFEE FAT12VOL 4

# --- NTFS system volumes, one per hive set ---
for set in $($gen sets); do
  mkdir -p "hives/$set"
  $gen hives "hives/$set" "$set"
done
hivexget hives/win2022/SOFTWARE 'Microsoft\Windows NT\CurrentVersion' ProductName \
  | grep -qx 'Windows Server 2022 Datacenter'
hivexget hives/win2019/SYSTEM 'ControlSet002\Services\stornvme' Start | grep -qx 3

machine_of() {
  case $1 in win11) echo 0xAA64 ;; win2008) echo 0x14c ;; *) echo 0x8664 ;; esac
}
mkdir -p mnt
cleanup() { mountpoint -q mnt && umount mnt; rmdir mnt 2>/dev/null || true; }
trap cleanup EXIT
for set in $($gen sets); do
  img="ntfs-$set.img"
  truncate -s 12M "$img"
  mkntfs -q -F -f -L "${set^^}" -s 512 -c 4096 "$img" >/dev/null 2>&1
  ntfs-3g -o compression "$img" mnt
  mkdir -p mnt/Windows/System32/config mnt/Windows/System32/drivers mnt/Users
  cp "hives/$set/SOFTWARE" "hives/$set/SYSTEM" mnt/Windows/System32/config/
  if [ "$set" = win2019 ]; then
    # CompactOS-like: System32 compressed, so cmd.exe is LZNT1 and unreadable for `ntfs`.
    python3 -c "import os,sys; os.setxattr(sys.argv[1], 'system.ntfs_attrib_be', (0x10|0x800).to_bytes(4, 'big'))" mnt/Windows/System32
  fi
  $gen pe mnt/Windows/System32/cmd.exe "$(machine_of "$set")"
  if [ "$set" = win2012r2 ]; then
    mkdir -p "mnt/Program Files/Cloudbase Solutions/Cloudbase-Init/bin"
    printf 'MZ' > "mnt/Program Files/Cloudbase Solutions/Cloudbase-Init/bin/OpenStackService.exe"
  fi
  case $set in win11|win2008) ;; *) mkdir -p mnt/Windows/SysWOW64 ;; esac
  if [ "$set" = win2025 ]; then
    # Hibernated / Fast Startup: hiberfil.sys with a non-zero header.
    { printf 'HIBR'; head -c 8188 /dev/zero; } > mnt/hiberfil.sys
  fi
  umount mnt
done
# A system volume whose SOFTWARE hive is cut short (the base block says more bins follow).
truncate -s 12M ntfs-badhive.img
mkntfs -q -F -f -L BADHIVE -s 512 -c 4096 ntfs-badhive.img >/dev/null 2>&1
ntfs-3g ntfs-badhive.img mnt
mkdir -p mnt/Windows/System32/config
head -c 8192 hives/win2022/SOFTWARE > mnt/Windows/System32/config/SOFTWARE
cp hives/win2022/SYSTEM mnt/Windows/System32/config/
$gen pe mnt/Windows/System32/cmd.exe 0x8664
umount mnt
# A copy of the win2022 cmd.exe for byte comparison.
$gen pe files/cmd-x86_64.exe 0x8664
