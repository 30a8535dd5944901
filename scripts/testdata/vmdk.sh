# VMDK inputs: one image per subformat qemu-img writes, made from one small raw disk with
# data and holes (6 MiB + 36 KiB, so the last grain is partial); a 2100 MiB sparse disk split
# into two extent files (twoGbMaxExtent*); a VMware-layout streamOptimized (GD_AT_END, footer);
# and hostile variants (hostile-*), each breaking one rule. vmdk.py patches the images.
p="python3 $root/scripts/testdata/vmdk.py"
qemu-img create -q -f raw src.raw 6180K
qemu-io -f raw -c 'write -P 0xab 0 100k' -c 'write -P 0x11 1028k 8k' \
  -c 'write -P 0x5c 3M 64k' -c 'write -P 0xe7 6160k 20k' src.raw >/dev/null
for s in monolithicSparse monolithicFlat twoGbMaxExtentSparse twoGbMaxExtentFlat streamOptimized; do
  qemu-img convert -f raw -O vmdk -o subformat=$s src.raw $s.vmdk
done
cp streamOptimized.vmdk gd-at-end.vmdk && $p gd-at-end gd-at-end.vmdk

# Two extent files per split subformat: data on both sides of the 2 GiB split.
qemu-img create -q -f raw big.raw 2100M
qemu-io -f raw -c 'write -P 0x61 0 1M' -c 'write -P 0x62 2047M 2M' -c 'write -P 0x63 2099M 1M' \
  big.raw >/dev/null
qemu-img convert -f raw -O vmdk -o subformat=twoGbMaxExtentSparse big.raw big-sparse.vmdk
qemu-img convert -f raw -O vmdk -o subformat=twoGbMaxExtentFlat big.raw big-flat.vmdk

# Hostile: descriptors naming files outside their directory or not regular files.
desc() { # NAME CREATE-TYPE EXTENT-LINE [EXTRA-LINE]
  printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="%s"\n%s\n%s\n' \
    "$2" "$3" "${4:-}" > "$1"
}
desc hostile-dotdot.vmdk monolithicFlat 'RW 12360 FLAT "../monolithicFlat-flat.vmdk" 0'
desc hostile-absolute.vmdk monolithicFlat 'RW 12360 FLAT "/etc/hosts" 0'
desc hostile-json.vmdk monolithicFlat 'RW 12360 FLAT "json:{\"driver\":\"file\"}" 0'
ln -s monolithicFlat-flat.vmdk hostile-link-flat.img
desc hostile-symlink.vmdk monolithicFlat 'RW 12360 FLAT "hostile-link-flat.img" 0'
mkfifo hostile-fifo-flat.img
desc hostile-fifo.vmdk monolithicFlat 'RW 12360 FLAT "hostile-fifo-flat.img" 0'
desc hostile-self.vmdk monolithicFlat 'RW 1 FLAT "hostile-self.vmdk" 0'
desc hostile-short.vmdk monolithicFlat 'RW 99999 FLAT "monolithicFlat-flat.vmdk" 0'
desc hostile-parent.vmdk monolithicSparse 'RW 12360 SPARSE "monolithicSparse.vmdk"' \
  'parentFileNameHint="base.vmdk"'
sed 's/parentCID=ffffffff/parentCID=0badc0de/' monolithicFlat.vmdk > hostile-parentcid.vmdk
{ cat monolithicFlat.vmdk; head -c 1100000 /dev/zero | tr '\0' '#'; } > hostile-huge-desc.vmdk
# Hostile: sparse metadata.
cp monolithicSparse.vmdk hostile-gt-past-eof.vmdk && $p gt-past-eof hostile-gt-past-eof.vmdk
cp monolithicSparse.vmdk hostile-gd-past-eof.vmdk && $p gd-past-eof hostile-gd-past-eof.vmdk
cp streamOptimized.vmdk hostile-bomb.vmdk && $p bomb hostile-bomb.vmdk
