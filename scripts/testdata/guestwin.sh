# A whole Windows Server 2022 system disk for the guest inspector (tests/it/guest.rs):
# GPT with 1 = ESP (FAT32: \EFI\Microsoft\Boot\bootmgfw.efi and \EFI\BOOT\BOOTX64.EFI, both
# x86-64 PE files) and 2 = Microsoft basic data (NTFS: the Server 2022 SOFTWARE and SYSTEM
# hives, an x86-64 System32\cmd.exe, SysWOW64).
# Run by make-testdata.sh in an empty directory (the future $IMGPORT_TESTDATA/guestwin/).
#
# Reuses the windows part's generator (scripts/testdata/windows.py) for the hives and PE files,
# mtools for the FAT volume, and mkntfs + the ntfs-3g FUSE driver for the NTFS volume, as
# scripts/testdata/windows.sh does (the ntfs-3g tools cannot make directories unmounted).
gen="python3 $root/scripts/testdata/windows.py"
"$root/scripts/install-deps.sh"
if [ ! -c /dev/fuse ]; then
  echo "guestwin.sh: /dev/fuse is missing: the NTFS volume needs the ntfs-3g FUSE driver" >&2
  exit 1
fi

# --- ESP: FAT32 (mkfs.vfat needs >= 33 MiB for FAT32 with 512-byte clusters) ---
$gen pe BOOTX64.EFI 0x8664 10 20000
$gen pe bootmgfw.efi 0x8664 10 70000
truncate -s 40M esp.fat
mkfs.vfat -F 32 -S 512 -s 1 -i 5EC0ADE5 -n SYSTEM esp.fat >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i esp.fat ::/EFI ::/EFI/BOOT ::/EFI/Microsoft ::/EFI/Microsoft/Boot
mcopy -i esp.fat BOOTX64.EFI ::/EFI/BOOT/BOOTX64.EFI
mcopy -i esp.fat bootmgfw.efi ::/EFI/Microsoft/Boot/bootmgfw.efi

# --- the Windows volume: NTFS ---
mkdir -p hives
$gen hives hives win2022
truncate -s 16M win.ntfs
mkntfs -q -F -f -L WINSYS -s 512 -c 4096 win.ntfs >/dev/null 2>&1
mkdir -p mnt
cleanup() { mountpoint -q mnt && umount mnt; rmdir mnt 2>/dev/null || true; }
trap cleanup EXIT
ntfs-3g win.ntfs mnt
mkdir -p mnt/Windows/System32/config mnt/Windows/System32/drivers mnt/Windows/SysWOW64 mnt/Users
cp hives/SOFTWARE hives/SYSTEM mnt/Windows/System32/config/
$gen pe mnt/Windows/System32/cmd.exe 0x8664
umount mnt

# --- the GPT disk: ESP at 1 MiB, the NTFS volume after it, 1 MiB for the backup table ---
truncate -s $((1 + 40 + 16 + 1))M win2022-gpt.raw
sgdisk -o -n 1:2048:+40M -t 1:EF00 -c 1:"EFI system partition" \
  -n 2:0:+16M -t 2:0700 -c 2:"Basic data partition" win2022-gpt.raw >/dev/null
dd if=esp.fat of=win2022-gpt.raw bs=1M seek=1 conv=notrunc,sparse status=none
dd if=win.ntfs of=win2022-gpt.raw bs=1M seek=41 conv=notrunc,sparse status=none
rm -rf esp.fat win.ntfs BOOTX64.EFI bootmgfw.efi
