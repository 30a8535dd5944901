# The hostile corpus beyond the main set and the qcow2/xfs/windows/initramfs parts: images
# made by real tools, then broken in one rule each by hostile.py. tests/it/hostile.rs runs
# imgport on all of them (and on the hostile images of the other parts) under time and
# memory limits. Guest-facing cases (partition tables, ext4 loops, a huge os-release) are
# read by the guest layer once inspection descends into partitions.
h="python3 $root/scripts/testdata/hostile.py"

# qcow2: 16 MiB disk, 64 KiB clusters, two data clusters.
qemu-img create -q -f qcow2 q.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0x5a 0 64k' -c 'write -P 0x33 8M 64k' q.qcow2 >/dev/null
qf() { cp q.qcow2 "qcow2-$1.qcow2" && $h qcow2-field "qcow2-$1.qcow2" "$2"; }
qf refcount-table-past-eof refcount_table_offset=eof+1048576
qf refcount-table-huge refcount_table_clusters=0xffffffff
qf l1-at-header l1_table_offset=0
qf l1-unaligned l1_table_offset=0x30001
qf l1-past-eof-huge l1_table_offset=0x7fffffffffff0000
qf cluster-bits-31 cluster_bits=31
qf cluster-bits-8 cluster_bits=8
qf size-huge size=0x4000000000000000
qf snapshots-past-eof nb_snapshots=65536
qf backing-offset-past-eof backing_file_offset=0x10000000000
qf backing-size-huge backing_file_size=0xffffffff
qf header-length-huge header_length=0xfffffff0
qf refcount-order-7 refcount_order=7
cp q.qcow2 qcow2-snapshots-offset-past-eof.qcow2
$h qcow2-field qcow2-snapshots-offset-past-eof.qcow2 nb_snapshots=1
$h qcow2-field qcow2-snapshots-offset-past-eof.qcow2 snapshots_offset=eof+65536
cp q.qcow2 qcow2-refblock-past-eof.qcow2 && $h qcow2-refblock qcow2-refblock-past-eof.qcow2 eof+1048576
cp q.qcow2 qcow2-refblock-at-header.qcow2 && $h qcow2-refblock qcow2-refblock-at-header.qcow2 0
cp q.qcow2 qcow2-l2-is-l1.qcow2 && $h qcow2-l1-entry qcow2-l2-is-l1.qcow2 l1
cp q.qcow2 qcow2-ext-huge.qcow2 && $h qcow2-ext-huge qcow2-ext-huge.qcow2
qemu-img create -q -f raw z.raw 1M
qemu-io -f raw -c 'write -P 0x11 0 64k' z.raw >/dev/null
qemu-img convert -q -c -O qcow2 z.raw qcow2-compressed-past-eof.qcow2
$h qcow2-compressed-past-eof qcow2-compressed-past-eof.qcow2
qemu-img convert -q -c -O qcow2 -o compression_type=zstd z.raw qcow2-zstd-compressed-past-eof.qcow2
$h qcow2-compressed-past-eof qcow2-zstd-compressed-past-eof.qcow2
# A qcow2 image inside a GPT partition of a raw disk (the guest layer must not open it).
truncate -s 8M gpt-qcow2-partition.raw
sgdisk -q -n 1:2048:0 -t 1:8300 gpt-qcow2-partition.raw
dd if=q.qcow2 of=gpt-qcow2-partition.raw bs=512 seek=2048 conv=notrunc status=none
rm z.raw q.qcow2

# Dynamic VHD: 8 MiB, two blocks written.
qemu-img create -q -f vpc -o subformat=dynamic v.vhd 8M
qemu-io -f vpc -c 'write -P 0x5a 0 4k' -c 'write -P 0x33 4M 4k' v.vhd >/dev/null
vh() { cp v.vhd "vhd-$1.vhd" && $h "$2" "vhd-$1.vhd" "${@:3}"; }
vh header-footer-mismatch vhd-copy-mismatch
vh dyn-badsum vhd-dyn badsum
vh dyn-past-eof vhd-footer data_offset=0x10000000000
vh dyn-at-footer vhd-footer data_offset=0
vh bat-entries-huge vhd-dyn max_entries=0xffffffff
vh bat-offset-huge vhd-dyn table_offset=0xffffffffffff0000
vh block-size-zero vhd-dyn block_size=0
vh block-size-odd vhd-dyn block_size=0x180000
vh block-size-huge vhd-dyn block_size=0x80000000
vh bat-into-header vhd-bat0 0
vh bat-into-footer vhd-bat0 0x3fff
vh size-huge vhd-footer current_size=0x4000000000000000
vh disk-type-7 vhd-footer disk_type=7
rm v.vhd

# GPT with absurd header fields (CRC valid), looping extended MBR chains.
truncate -s 8M gpt.raw
sgdisk -q -n 1:2048:0 -t 1:8300 gpt.raw
cp gpt.raw gpt-entries-huge.raw && $h gpt gpt-entries-huge.raw entries=0xffffffff
cp gpt.raw gpt-entry-size-huge.raw && $h gpt gpt-entry-size-huge.raw entry_size=0x80000000
cp gpt.raw gpt-header-size-huge.raw && $h gpt gpt-header-size-huge.raw header_size=0xffffffff
rm gpt.raw
truncate -s 8M ebr-loop-self.raw && $h ebr-loop ebr-loop-self.raw self
truncate -s 8M ebr-loop-pair.raw && $h ebr-loop ebr-loop-pair.raw pair

# ext4 whole disks: a directory hard-linked into its own child, symlink loops, and a
# 100 MiB os-release (sparse: text, then a hole).
mkdir -p t/etc t/a/b
printf 'NAME="Loop"\nID=loop\n' > t/etc/os-release
ln -s b2 t/etc/b1 && ln -s b1 t/etc/b2 && ln -s self t/etc/self
ln -s /etc/loop/../loop t/etc/loop
truncate -s 64M ext4-loops.raw
mkfs.ext4 -q -F -d t ext4-loops.raw
debugfs -w -R 'ln /a /a/b/up' ext4-loops.raw 2>/dev/null
printf 'NAME="Huge"\nID=huge\n' > t/etc/os-release && truncate -s 100M t/etc/os-release
truncate -s 64M ext4-huge-os-release.raw
mkfs.ext4 -q -F -d t ext4-huge-os-release.raw
rm -r t
