#!/usr/bin/env python3
"""Encode a volume image as a fuzz seed in the SPRS form of fuzz/src/sparse.rs: the magic,
the volume size (u64 LE), then one chunk (offset u64 LE, length u32 LE, bytes) per run of
non-zero 512-byte sectors. With --drop-ff, sectors of all 0xFF (an empty NTFS $LogFile, which
the reader never opens) are left out too, keeping the seed small.
Usage: sparse.py [--drop-ff] IMAGE OUT"""
import struct
import sys

SECTOR = 512


def main(src, dst, drop_ff=False):
    with open(src, "rb") as f:
        data = f.read()
    out = bytearray(b"SPRS" + struct.pack("<Q", len(data)))
    start = None
    for off in range(0, len(data) + SECTOR, SECTOR):
        chunk = data[off:off + SECTOR]
        nonzero = bool(chunk) and any(chunk) and not (drop_ff and chunk == b"\xff" * SECTOR)
        if nonzero and start is None:
            start = off
        elif not nonzero and start is not None:
            out += struct.pack("<QI", start, off - start) + data[start:off]
            start = None
    with open(dst, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    args = sys.argv[1:]
    drop = args[0] == "--drop-ff"
    main(*args[drop:], drop_ff=drop)
