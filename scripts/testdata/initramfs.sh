# Part: real initramfs images for src/guest/initramfs and src/guest/kmod, made with the tools
# dracut and initramfs-tools use: cpio -o -H newc, gzip, xz --check=crc32, zstd, lz4 -l, and
# an uncompressed early-microcode cpio concatenated before the compressed main archive.
# Runs in its empty output directory (see make-testdata.sh).

ver=6.1.0-test
mkdir -p tree-virtio tree-plain early

# A main tree with the virtio and nvme modules, in the merged-/usr layout of Debian 12.
make_tree() { # dir with-virtio
  local d=$1 m
  m=$d/usr/lib/modules/$ver
  mkdir -p "$m/kernel/fs/ext4" "$d/etc/modprobe.d" "$d/usr/bin" "$d/conf"
  head -c 3000 /dev/urandom | xz --check=crc32 > "$m/kernel/fs/ext4/ext4.ko.xz"
  if [ "$2" = yes ]; then
    mkdir -p "$m/kernel/drivers/block" "$m/kernel/drivers/virtio" "$m/kernel/drivers/net" \
      "$m/kernel/drivers/nvme/host" "$m/kernel/drivers/scsi"
    for k in block/virtio_blk virtio/virtio_pci net/virtio_net nvme/host/nvme scsi/virtio_scsi; do
      head -c 2000 /dev/urandom | xz --check=crc32 > "$m/kernel/drivers/$k.ko.xz"
    done
    printf '%s\n' kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko > "$m/modules.builtin"
  else
    printf '%s\n' kernel/drivers/ata/libata.ko > "$m/modules.builtin"
  fi
  printf 'kernel/fs/ext4/ext4.ko.xz:\n' > "$m/modules.dep"
  printf 'options ext4 debug=0\n' > "$d/etc/modprobe.d/local.conf"
  printf 'virtio_blk\n' > "$d/conf/modules"
  head -c 70000 /dev/urandom > "$d/usr/bin/busybox"
  ln -s usr/lib "$d/lib"
  ln -s busybox "$d/usr/bin/sh"
}
make_tree tree-virtio yes
make_tree tree-plain no

# Early microcode archive, as dracut and initramfs-tools write it (uncompressed).
mkdir -p early/kernel/x86/microcode
head -c 10000 /dev/urandom > early/kernel/x86/microcode/GenuineIntel.bin

pack() { # dir format > out
  (cd "$1" && find . | LC_ALL=C sort | cpio --quiet -o -H "$2" -R 0:0)
}

pack tree-virtio newc > virtio.cpio
pack tree-plain newc > plain.cpio
pack early newc > early.cpio
pack tree-virtio crc > virtio-crc.cpio
pack tree-virtio odc > virtio-odc.cpio
pack tree-virtio bin > virtio-bin.cpio

gzip -9 -n -c virtio.cpio > virtio.cpio.gz
xz --check=crc32 --lzma2=dict=1MiB -c virtio.cpio > virtio.cpio.xz
xz --format=lzma -c virtio.cpio > virtio.cpio.lzma
zstd -q -19 -c virtio.cpio > virtio.cpio.zst
lz4 -q -l -9 -c virtio.cpio > virtio.cpio.lz4
gzip -n -c plain.cpio > plain.cpio.gz

# Early microcode + compressed main archive, as the boot loaders hand them to the kernel.
cat early.cpio virtio.cpio.zst > early-virtio-zstd.img
cat early.cpio plain.cpio.gz > early-plain-gzip.img
cat early.cpio virtio.cpio.xz > early-virtio-xz.img
cat early.cpio virtio.cpio.lz4 > early-virtio-lz4.img
# Two archives in one compressed stream, and two compressed archives with padding between.
cat plain.cpio virtio.cpio | gzip -n -c > two-in-one.cpio.gz
{ cat plain.cpio.gz; head -c 3 /dev/zero; cat virtio.cpio.xz; } > gz-pad-xz.img
# One cpio stream split over two zstd frames (the kernel reads them as one stream).
head -c 40000 virtio.cpio | zstd -q -c > two-frames.cpio.zst
tail -c +40001 virtio.cpio | zstd -q -c >> two-frames.cpio.zst

# Broken variants: truncated streams, a corrupt gzip body, a non-hex header field, junk.
size=$(stat -c %s virtio.cpio.gz)
head -c $((size / 2)) virtio.cpio.gz > truncated.cpio.gz
size=$(stat -c %s virtio.cpio)
head -c $((size / 2)) virtio.cpio > truncated.cpio
cat early.cpio > early-truncated-zstd.img
size=$(stat -c %s virtio.cpio.zst)
head -c $((size - 100)) virtio.cpio.zst >> early-truncated-zstd.img
cp virtio.cpio.gz corrupt.cpio.gz
python3 "$root/scripts/testdata/initramfs.py" corrupt-middle corrupt.cpio.gz
cp virtio.cpio badhex.cpio
python3 "$root/scripts/testdata/initramfs.py" badhex badhex.cpio
{ cat early.cpio; printf 'JUNKJUNK'; } > junk-after.img
{ cat early.cpio; head -c 64 /dev/urandom | bzip2 -c; } > early-bzip2.img

# A bomb: a tiny archive followed by 1.2 GiB of zeros, zstd-compressed to a few hundred KiB.
{ cat early.cpio; head -c 1200M /dev/zero; } | zstd -q -3 -c > bomb.cpio.zst
# An xz bomb of 200 MiB, refused by a lower cap in ReadOptions (xz decodes slower than zstd).
{ cat early.cpio; head -c 200M /dev/zero; } | xz -T1 --check=crc32 -0 -c > bomb.cpio.xz

rm -rf tree-virtio tree-plain early
