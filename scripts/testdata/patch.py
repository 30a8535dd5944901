#!/usr/bin/env python3
"""Byte-level patches that turn images made by real tools into the hostile or unusual cases
the tests need. Each operation names the field it changes; checksums are recomputed unless
the case is about a bad checksum."""
import struct
import sys


def rw(path):
    return open(path, "r+b")


def vhd_checksum(footer: bytes) -> int:
    b = bytearray(footer)
    b[64:68] = b"\0\0\0\0"
    return (~sum(b)) & 0xFFFFFFFF


def vhd_footers(path):
    """Offsets of the footer at EOF and, for dynamic disks, its copy at 0."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        offs = [size - 512]
        f.seek(0)
        if f.read(8) == b"conectix":
            offs.append(0)
    return offs


def vhd_patch(path, fn, fix_sum=True):
    with rw(path) as f:
        for off in vhd_footers(path):
            f.seek(off)
            b = bytearray(f.read(512))
            fn(b)
            if fix_sum:
                b[64:68] = struct.pack(">I", vhd_checksum(b))
            f.seek(off)
            f.write(b)


def vhd_dyn_header(f):
    f.seek(16)
    (hdr,) = struct.unpack(">Q", f.read(8))
    f.seek(hdr)
    h = bytearray(f.read(1024))
    return hdr, h


def main():
    op, path, *args = sys.argv[1:]
    if op == "vhd-badsum":
        vhd_patch(path, lambda b: b.__setitem__(slice(64, 68), struct.pack(">I", (vhd_checksum(b) + 1) & 0xFFFFFFFF)), fix_sum=False)
    elif op == "vhd-type":
        vhd_patch(path, lambda b: b.__setitem__(slice(60, 64), struct.pack(">I", int(args[0]))))
        if args[0] == "4":
            with rw(path) as f:
                hdr, h = vhd_dyn_header(f)
                name = "C:\\parent.vhd".encode("utf-16-be")
                h[64:64 + len(name)] = name
                h[36:40] = b"\0\0\0\0"
                h[36:40] = struct.pack(">I", (~sum(h)) & 0xFFFFFFFF)
                f.seek(hdr)
                f.write(h)
    elif op == "vhd-creator":
        creator = args[0].encode().decode("unicode_escape").encode("latin1")
        extra = int(args[1])

        def fn(b):
            b[28:32] = creator
            (cur,) = struct.unpack(">Q", b[48:56])
            b[48:56] = struct.pack(">Q", cur + extra)
        vhd_patch(path, fn)
    elif op == "vhd-legacy-511":
        # Virtual PC before 2004: a 511-byte footer (the last reserved byte dropped).
        with rw(path) as f:
            f.seek(0, 2)
            size = f.tell()
            f.truncate(size - 1)
    elif op == "vhd-fixed-size":
        vhd_patch(path, lambda b: b.__setitem__(slice(48, 56), struct.pack(">Q", struct.unpack(">Q", b[48:56])[0] + 1048576)))
    elif op == "vhd-bat":
        with rw(path) as f:
            hdr, h = vhd_dyn_header(f)
            (bat,) = struct.unpack(">Q", h[16:24])
            (n,) = struct.unpack(">I", h[28:32])
            f.seek(bat)
            entries = list(struct.unpack(">%dI" % n, f.read(4 * n)))
            used = [i for i, e in enumerate(entries) if e != 0xFFFFFFFF]
            if args[0] == "past-eof":
                entries[used[0]] = 0x7FFFFF00
            else:
                entries[used[1]] = entries[used[0]]
            f.seek(bat)
            f.write(struct.pack(">%dI" % n, *entries))
    elif op == "qcow2-incompat":
        with rw(path) as f:
            f.seek(72)
            (v,) = struct.unpack(">Q", f.read(8))
            f.seek(72)
            f.write(struct.pack(">Q", v | int(args[0], 0)))
    elif op == "qcow2-version":
        with rw(path) as f:
            f.seek(4)
            f.write(struct.pack(">I", int(args[0])))
    elif op == "qcow2-crypt-aes":
        src, dst = path, args[0]
        data = bytearray(open(src, "rb").read())
        data[32:36] = struct.pack(">I", 1)
        open(dst, "wb").write(data)
    elif op == "qcow2-datafile-ext":
        # An external-data-file name extension without the incompatible bit.
        with rw(path) as f:
            f.seek(100)
            (hlen,) = struct.unpack(">I", f.read(4))
            f.seek(hlen)
            exts = f.read(4096)
            pos = 0
            while True:
                t, l = struct.unpack(">II", exts[pos:pos + 8])
                if t == 0:
                    break
                pos += 8 + ((l + 7) & ~7)
            name = b"/etc/shadow"
            ext = struct.pack(">II", 0x44415441, len(name)) + name + b"\0" * (((len(name) + 7) & ~7) - len(name))
            f.seek(hlen + pos)
            f.write(ext + b"\0" * 8)
    elif op in ("qcow2-l2", "qcow2-l1"):
        with rw(path) as f:
            f.seek(20)
            (cbits,) = struct.unpack(">I", f.read(4))
            f.seek(36)
            (l1n,) = struct.unpack(">I", f.read(4))
            (l1off,) = struct.unpack(">Q", f.read(8))
            f.seek(l1off)
            l1 = struct.unpack(">%dQ" % l1n, f.read(8 * l1n))
            if op == "qcow2-l1":
                f.seek(l1off)
                f.write(struct.pack(">Q", (1 << 63) | (1 << 50)))
                return
            l2off = l1[0] & 0x00FFFFFFFFFFFE00
            f.seek(l2off)
            n = (1 << cbits) // 8
            l2 = list(struct.unpack(">%dQ" % n, f.read(8 * n)))
            i = next(i for i, e in enumerate(l2) if e & 0x00FFFFFFFFFFFE00)
            if args[0] == "past-eof":
                l2[i] = (1 << 63) | (1 << 50)
            else:
                l2[i] |= 0x2  # reserved bit 1
            f.seek(l2off)
            f.write(struct.pack(">%dQ" % n, *l2))
    elif op == "qcow2-over-mbr":
        hdr = bytearray(512)
        name = b"/etc/shadow"
        hdr[0:4] = b"QFI\xfb"
        struct.pack_into(">IQI", hdr, 4, 2, 200, len(name))
        struct.pack_into(">IQ", hdr, 20, 16, 16 << 20)
        hdr[200:200 + len(name)] = name
        with rw(path) as f:
            f.seek(0)
            old = f.read(512)
            hdr[446:512] = old[446:512]
            f.seek(0)
            f.write(hdr)
    elif op == "poke":
        # poke FILE OFFSET STRUCT-FORMAT VALUE: write one packed value at OFFSET.
        off, fmt, value = int(args[0], 0), args[1], int(args[2], 0)
        with rw(path) as f:
            f.seek(off)
            f.write(struct.pack(fmt, value))
    elif op == "mbr-case":
        # oslo test_gpt_mbr_check cases on its synthetic 10-sector GPT.
        case = args[0]
        b = bytearray(5120)
        b[510:512] = b"\x55\xaa"
        boot, chs, kind, lba = 0, b"\x00\x02\x00", 0xEE, 1
        if case == "boot-flag":
            boot = 0x0A
        elif case == "no-partitions":
            kind = 0
        elif case == "start-chs":
            chs = b"\x01\x02\x00"
        elif case == "start-lba":
            lba = 2
        b[446:462] = struct.pack("<B3sB3sII", boot, chs, kind, b"\x00\x00\x00", lba, 0)
        if case == "extra-partition":
            b[462:478] = struct.pack("<B3sB3sII", 0, b"\x00\x00\x00", 0x0C, b"\x00\x00\x00", 2048, 2048)
        open(path, "wb").write(b)
    elif op == "synthetic-gpt":
        # oslo's synthetic GPT: 10 sectors, protective MBR entry only.
        b = bytearray(5120)
        b[510:512] = b"\x55\xaa"
        b[446:462] = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\x00\x00\x00", 1, 0)
        open(path, "wb").write(b)
    else:
        sys.exit("unknown op " + op)


if __name__ == "__main__":
    main()
