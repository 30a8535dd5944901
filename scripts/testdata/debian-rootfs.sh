# A real Debian root tree for the guest-inspection tests (used by guest.sh): debootstrap
# --variant=minbase of bookworm plus a cloud kernel with initramfs-tools (so real modules,
# /boot/config-*, an initramfs and modules.builtin exist), cloud-init, qemu-guest-agent and
# grub-pc-bin (for a real MBR boot.img). Built once; its own stamp keeps it cached.
# Output: tree/ (the root file system, owned by root) and tree.du (its size in KiB).
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
debootstrap --variant=minbase \
  --include=linux-image-cloud-amd64,initramfs-tools,cloud-init,qemu-guest-agent,grub-pc-bin,systemd-sysv,python3-cffi-backend \
  "$suite" tree "$mirror" >debootstrap.log 2>&1 || { tail -30 debootstrap.log >&2; exit 1; }
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
du -sk tree | cut -f1 > tree.du
