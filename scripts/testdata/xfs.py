"""Builds the host source tree and the mkfs.xfs protofile for the xfs test images.

usage: xfs.py TREE PROTO
       xfs.py fixlink IMG INO FSB AGBLOCKS AGBLKLOG BLOCKSIZE UUID
The tree is what the reader's tests compare against; the protofile mirrors it exactly.

fixlink: mkfs.xfs 6.1 writes a remote symlink's target into its block without the v5 header
(xfs_repair then reports "bad symlink header"). This writes the block as the kernel does
(XFS Algorithms & Data Structures, "Symbolic Links"): XSLM magic, offset 0, byte count, CRC32C,
uuid, owner, disk address, lsn 0, then the target.
"""
import os
import random
import sys



def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def fixlink(img, ino, fsb, agblocks, agblklog, bs, uuid):
    linear = (fsb >> agblklog) * agblocks + (fsb & ((1 << agblklog) - 1))
    with open(img, "r+b") as f:
        f.seek(linear * bs)
        raw = f.read(bs)
        if raw[:4] == b"XSLM":
            return
        target = raw.rstrip(b"\0")
        assert 0 < len(target) <= bs - 56, len(target)
        hdr = (b"XSLM" + (0).to_bytes(4, "big") + len(target).to_bytes(4, "big") + bytes(4)
               + bytes.fromhex(uuid.replace("-", "")) + ino.to_bytes(8, "big")
               + (linear * bs // 512).to_bytes(8, "big") + bytes(8))
        block = bytearray(hdr + target + bytes(bs - 56 - len(target)))
        block[12:16] = crc32c(bytes(block)).to_bytes(4, "little")
        f.seek(linear * bs)
        f.write(block)


if sys.argv[1] == "fixlink":
    a = sys.argv[2:]
    fixlink(a[0], int(a[1]), int(a[2]), int(a[3]), int(a[4]), int(a[5]), a[6])
    sys.exit(0)

tree, proto = sys.argv[1], sys.argv[2]
bs = 4096
HOLES_SRC = os.path.join(os.path.dirname(os.path.abspath(proto)), "holes.src")
rng = random.Random(7)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def build():
    write(f"{tree}/usr/lib/os-release",
          b'NAME="Alibaba Cloud Linux"\nVERSION="3 (OpenAnolis Edition)"\nID="alinux"\n'
          b'VERSION_ID="3"\nPRETTY_NAME="Alibaba Cloud Linux 3 (OpenAnolis Edition)"\n')
    os.makedirs(f"{tree}/etc", exist_ok=True)
    os.symlink("../usr/lib/os-release", f"{tree}/etc/os-release")
    write(f"{tree}/etc/hostname", b"xfs-test\n")
    write(f"{tree}/empty", b"")
    # Short-form directory.
    for n in ("a", "bb", "ccc"):
        write(f"{tree}/small/{n}", n.encode() * 3)
    os.makedirs(f"{tree}/small/sub", exist_ok=True)
    # Block-form directory (~50 entries).
    for i in range(50):
        write(f"{tree}/block50/entry-{i:03}", f"{i}\n".encode())
    # Leaf-form directory (a few data blocks and one leaf block).
    for i in range(300):
        write(f"{tree}/leaf300/leaf-entry-{i:04}", b"")
    # Node-form directory (~2000 entries).
    for i in range(2000):
        write(f"{tree}/leaf2000/file-with-a-longer-name-{i:05}", b"")
    # Big directory: enough names for a multi-extent, probably btree-format, directory.
    for i in range(50000):
        write(f"{tree}/big50k/n{i:06}-{rng.randrange(1 << 30):08x}", b"")
    # Long names.
    write(f"{tree}/long/" + "L" * 255, b"max length name\n")
    write(f"{tree}/long/" + "m" * 200 + ".txt", b"two hundred\n")
    # Symlinks: inline and remote (target longer than the literal area, and > 1 KiB block).
    os.makedirs(f"{tree}/links", exist_ok=True)
    os.symlink("short-target", f"{tree}/links/inline")
    os.symlink("/" + "/".join(["d" * 20] * 10), f"{tree}/links/remote")
    # 960 bytes: remote on every image, and one block even at 1 KiB blocks with the v5 header.
    os.symlink("/" + "x" * 959, f"{tree}/links/remote-long")
    # Regular files: a tiny one, a one-block one, a multi-block random one, a 3 MiB one.
    write(f"{tree}/data/tiny", b"hi")
    write(f"{tree}/data/oneblock", bytes(rng.randrange(256) for _ in range(bs)))
    write(f"{tree}/data/random", os.urandom(5 * bs + 123))
    write(f"{tree}/data/big", os.urandom(3 << 20))
    # xfs.sh splits data/holes into extents with xfs_db: units 1 and 3 become holes, unit 4 an
    # unwritten extent. The image is made from holes.src (random everywhere, so reading an
    # unwritten extent's blocks would show); the tree keeps what a reader must see.
    src = os.urandom(6 * bs)
    write(HOLES_SRC, src)
    body = bytearray(src)
    for unit in (1, 3, 4):
        body[unit * bs:(unit + 1) * bs] = bytes(bs)
    write(f"{tree}/data/holes", bytes(body))


def emit(out, path, depth):
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        ind = " " * depth
        if os.path.islink(full):
            out.write(f"{ind}{name} l--777 0 0 {os.readlink(full)}\n")
        elif os.path.isdir(full):
            out.write(f"{ind}{name} d--755 0 0\n")
            emit(out, full, depth + 1)
            out.write(f"{ind}$\n")
        else:
            src = HOLES_SRC if full == f"{tree}/data/holes" else full
            out.write(f"{ind}{name} ---644 0 0 {src}\n")


build()
with open(proto, "w") as out:
    out.write("imgport\n0 0\nd--755 0 0\n")
    emit(out, tree, 1)
    out.write("$\n")
