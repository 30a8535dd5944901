# VHDX inputs made by qemu-img convert -O vhdx from one small disk with data, zeros and
# holes (src.raw), for each option that changes the layout: subformat, block_size,
# log_size; 4096-byte sectors by patching the metadata (qemu-img cannot make them); a
# 5 GiB sparse disk whose BAT crosses a chunk (a sector bitmap entry interleaved); and the
# hostile variants of vhdx.py (a log to replay, differencing, out-of-bounds tables).
p="python3 $root/scripts/testdata/vhdx.py"
q() { qemu-img "$@" >/dev/null; }
truncate -s 24M src.raw
dd if=/dev/urandom of=src.raw bs=1M seek=2 count=3 conv=notrunc status=none
dd if=/dev/urandom of=src.raw bs=64K seek=200 count=2 conv=notrunc status=none
printf 'imgport vhdx pattern' | dd of=src.raw bs=1 seek=$((23*1048576+77)) conv=notrunc status=none
q convert -f raw -O vhdx src.raw dynamic.vhdx
q convert -f raw -O vhdx -o subformat=fixed src.raw fixed.vhdx
q convert -f raw -O vhdx -o block_size=1M src.raw block1m.vhdx
q convert -f raw -O vhdx -o block_size=32M src.raw block32m.vhdx
q convert -f raw -O vhdx -o log_size=8M src.raw log8m.vhdx
cp block1m.vhdx sector4k.vhdx && $p 4k sector4k.vhdx
q convert -f raw -O vhdx -o subformat=fixed,block_size=1M src.raw fixed4k.vhdx && $p 4k fixed4k.vhdx
truncate -s 5G big.raw
dd if=/dev/urandom of=big.raw bs=1M seek=1 count=1 conv=notrunc status=none
dd if=/dev/urandom of=big.raw bs=1M seek=4600 count=2 conv=notrunc status=none
q convert -f raw -O vhdx -o block_size=1M big.raw big.vhdx
rm big.raw
for op in dirty-log has-parent parent-locator bat-past-eof region-count metadata-count \
  item-length unknown-region unknown-item; do
  cp block1m.vhdx "$op.vhdx" && $p "$op" "$op.vhdx"
done
# vhdx.py rewrites whole files: give the zeros back as holes.
for f in *.vhdx; do fallocate -d "$f" 2>/dev/null || true; done
