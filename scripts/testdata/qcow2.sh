# Hostile qcow2 images beyond the main set: a deflate bomb in a compressed cluster, L1
# entries that share or loop onto tables, an absurd L1 size. Each starts from a real
# qemu-img image and is patched by qcow2.py.
p="python3 $root/scripts/testdata/qcow2.py"
qemu-img create -q -f qcow2 base.qcow2 1G
qemu-io -f qcow2 -c 'write -P 0x5a 0 64k' -c 'write -P 0x33 600M 64k' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 bomb.qcow2 1M
qemu-io -f qcow2 -c 'write -c -P 0 0 64k' bomb.qcow2 >/dev/null
$p bomb bomb.qcow2
cp base.qcow2 share-l2.qcow2 && $p share-l2 share-l2.qcow2
cp base.qcow2 l1-loop.qcow2 && $p l1-loop l1-loop.qcow2
cp base.qcow2 l1-size.qcow2 && $p l1-size l1-size.qcow2
