"""VMDK variants for the vmdk part of make-testdata (scripts/testdata/vmdk.sh).

vmdk.py OP FILE: patches FILE, a qemu-img-made sparse VMDK (64 KiB grains), in place.
  gd-at-end   rewrites a streamOptimized file as VMware lays it out: the header's gdOffset
              becomes GD_AT_END and the file ends with a footer marker, a footer (a copy of
              the header holding the real gdOffset) and the end-of-stream marker
  bomb        the first compressed grain's data becomes a zlib stream of two grains of zeros
  gt-past-eof the first allocated grain table entry points past the end of the file
  gd-past-eof the header's gdOffset points past the end of the file
  gt-share    grain directory entry 1 points at the grain table of entry 0
"""
import struct
import sys
import zlib

GD_AT_END = 0xFFFFFFFFFFFFFFFF


def main():
    op, path = sys.argv[1], sys.argv[2]
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        assert data[:4] == b"KDMV", path
        grain = struct.unpack_from("<Q", data, 20)[0]
        gtes = struct.unpack_from("<I", data, 44)[0]
        gd = struct.unpack_from("<Q", data, 56)[0]
        if op == "gd-at-end":
            # qemu-img ends a stream with one end-of-stream sector (zeros): replace it.
            assert data[-512:] == bytes(512)
            del data[-512:]
            footer_marker = struct.pack("<QII", 1, 0, 3) + bytes(496)
            footer = bytes(data[:512])
            struct.pack_into("<Q", data, 56, GD_AT_END)
            data += footer_marker + footer + bytes(512)
        elif op == "bomb":
            gt = struct.unpack_from("<I", data, gd * 512)[0]
            entry = struct.unpack_from("<I", data, gt * 512)[0]
            at = entry * 512
            lba, size = struct.unpack_from("<QI", data, at)
            bomb = zlib.compress(bytes(2 * grain * 512), 9)
            room = 512 - 12
            assert len(bomb) <= room, len(bomb)
            struct.pack_into("<QI", data, at, lba, len(bomb))
            data[at + 12 : at + 12 + len(bomb)] = bomb
        elif op == "gt-past-eof":
            gt = struct.unpack_from("<I", data, gd * 512)[0]
            for i in range(gtes):
                if struct.unpack_from("<I", data, gt * 512 + 4 * i)[0] > 1:
                    struct.pack_into("<I", data, gt * 512 + 4 * i, 0x7FFFFFF0)
                    break
        elif op == "gd-past-eof":
            struct.pack_into("<Q", data, 56, 0xFFFFFFF0)
        elif op == "gt-share":
            gt0 = struct.unpack_from("<I", data, gd * 512)[0]
            struct.pack_into("<I", data, gd * 512 + 4, gt0)
        else:
            sys.exit("vmdk.py: unknown op " + op)
        f.seek(0)
        f.write(data)
        f.truncate()


main()
