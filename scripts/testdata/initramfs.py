#!/usr/bin/env python3
"""Byte patches for the initramfs part: each names the field or region it breaks."""
import sys


def poke(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def main():
    op, path = sys.argv[1], sys.argv[2]
    if op == "badhex":
        # newc header of the first member: magic(6) c_ino(8) c_mode(8) ...; byte 14 is the
        # first digit of c_mode, 'g' is not a hex digit.
        poke(path, 14, b"g")
    elif op == "corrupt-middle":
        # four 0xff bytes in the middle of a compressed body: the deflate data or its CRC breaks.
        with open(path, "rb") as f:
            size = len(f.read())
        poke(path, size // 2, b"\xff\xff\xff\xff")
    else:
        sys.exit(f"unknown op {op}")


if __name__ == "__main__":
    main()
