"""Hostile qcow2 variants for the qcow2 part of make-testdata (scripts/testdata/qcow2.sh).

qcow2.py OP FILE: patches FILE, a qemu-img-made 64 KiB-cluster image, in place.
  bomb      the first compressed cluster's data becomes a raw deflate stream of 64 MiB of zeros
  share-l2  L1 entry 1 points at the L2 table of entry 0 (two guest ranges, one table)
  l1-loop   L1 entry 0 points at the L1 table itself
  l1-size   l1_size becomes 0xFFFFFFFF (a 32 GiB L1 table)
"""
import struct
import sys
import zlib


def header(f):
    f.seek(20)
    (cbits,) = struct.unpack(">I", f.read(4))
    f.seek(36)
    l1n, l1off = struct.unpack(">IQ", f.read(12))
    return cbits, l1n, l1off


def main():
    op, path = sys.argv[1], sys.argv[2]
    with open(path, "r+b") as f:
        cbits, l1n, l1off = header(f)
        f.seek(l1off)
        l1 = list(struct.unpack(">%dQ" % l1n, f.read(8 * l1n)))
        mask = 0x00FFFFFFFFFFFE00
        if op == "share-l2":
            l1[1] = l1[0]
        elif op == "l1-loop":
            l1[0] = (1 << 63) | l1off
        elif op == "l1-size":
            f.seek(36)
            f.write(struct.pack(">I", 0xFFFFFFFF))
            return
        elif op == "bomb":
            l2off = l1[0] & mask
            n = (1 << cbits) // 8
            f.seek(l2off)
            l2 = list(struct.unpack(">%dQ" % n, f.read(8 * n)))
            i = next(i for i, e in enumerate(l2) if e & (1 << 62))
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            data = c.compress(b"\0" * (64 << 20)) + c.flush()
            f.seek(0, 2)
            off = (f.tell() + 511) // 512 * 512
            f.seek(off)
            f.write(data)
            f.write(b"\0" * ((-(off + len(data))) % 65536))
            x = 62 - (cbits - 8)
            extra = (off + len(data) - 1) // 512 - off // 512
            assert extra < (1 << (cbits - 8)), "bomb larger than one descriptor"
            l2[i] = (1 << 62) | (extra << x) | off
            f.seek(l2off)
            f.write(struct.pack(">%dQ" % n, *l2))
            return
        else:
            raise SystemExit("unknown op " + op)
        f.seek(l1off)
        f.write(struct.pack(">%dQ" % l1n, *l1))


main()
