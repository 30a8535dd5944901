"""VHDX variants for the vhdx part of make-testdata (scripts/testdata/vhdx.sh).

vhdx.py OP FILE: patches FILE, a qemu-img-made VHDX, in place (Microsoft "VHDX Format
Specification" v1.00 offsets; every checksum recomputed unless the case is about it).
  4k              logical and physical sector sizes become 4096 (qemu-img cannot make them)
  dirty-log       the headers get a LogGuid and the log a valid entry of it (needs a replay)
  has-parent      File Parameters HasParent set (a differencing disk)
  parent-locator  a Parent Locator metadata item added
  bat-past-eof    the first present block's BAT entry points past the end of the file
  region-count    the region table claims 5000 entries
  metadata-count  the metadata table claims 5000 entries
  item-length     the Virtual Disk Size item claims 16 MiB
  unknown-region  a required region of an unknown GUID added
  unknown-item    a required metadata item of an unknown GUID added
"""
import struct
import sys
import uuid

MIB = 1 << 20
BAT = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
META = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
FILE_PARAMS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
VDS = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
LSS = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F").bytes_le
PSS = uuid.UUID("CDA348C7-445D-4471-9CC9-E9885251C556").bytes_le
PARENT = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le
UNKNOWN = uuid.UUID("01234567-89AB-CDEF-0123-456789ABCDEF").bytes_le


def crc32c(data):
    table = crc32c.table
    if table is None:
        table = crc32c.table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            table.append(c)
    c = 0xFFFFFFFF
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


crc32c.table = None


def reseal(d, off, length):
    """Recomputes the CRC-32C at off+4 over length bytes."""
    d[off + 4:off + 8] = b"\0\0\0\0"
    d[off + 4:off + 8] = struct.pack("<I", crc32c(bytes(d[off:off + length])))


def regions(d):
    (n,) = struct.unpack_from("<I", d, 192 * 1024 + 8)
    out = {}
    for i in range(n):
        e = 192 * 1024 + 16 + 32 * i
        out[bytes(d[e:e + 16])] = struct.unpack_from("<QI", d, e + 16)
    return out


def items(d, meta):
    (n,) = struct.unpack_from("<H", d, meta + 10)
    out = {}
    for i in range(n):
        e = meta + 32 + 32 * i
        off, length = struct.unpack_from("<II", d, e + 16)
        out[bytes(d[e:e + 16])] = (e, meta + off, length)
    return out, n


def both_region_tables(d, fn):
    for t in (192 * 1024, 256 * 1024):
        fn(t)
        reseal(d, t, 64 * 1024)


def add_item(d, meta, guid, flags, payload):
    its, n = items(d, meta)
    end = max(off + length for (_, off, length) in its.values())
    off = (end + 4095) // 4096 * 4096
    d[off:off + len(payload)] = payload
    e = meta + 32 + 32 * n
    d[e:e + 32] = guid + struct.pack("<IIII", off - meta, len(payload), flags, 0)
    struct.pack_into("<H", d, meta + 10, n + 1)


def main():
    op, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        d = bytearray(f.read())
    regs = regions(d)
    meta = regs[META][0]
    bat = regs[BAT][0]
    its, n = items(d, meta)
    if op == "4k":
        for g in (LSS, PSS):
            struct.pack_into("<I", d, its[g][1], 4096)
    elif op == "dirty-log":
        guid = uuid.UUID("5B1C3E0A-2D4F-4A6B-8C9D-0E1F2A3B4C5D").bytes_le
        log_len, log_off = struct.unpack_from("<IQ", d, 64 * 1024 + 68)
        # One entry: header + one data descriptor in the first sector, then one data sector
        # that rewrites the first BAT sector with its own bytes.
        seq = 7
        e = bytearray(8192)
        struct.pack_into("<4sIIIQII16sQQ", e, 0, b"loge", 0, 8192, 0, seq, 1, 0, guid,
                         len(d), len(d))
        sector = d[bat:bat + 4096]
        struct.pack_into("<4sIQQQ", e, 64, b"desc", struct.unpack_from("<I", sector, 4092)[0],
                         struct.unpack_from("<Q", sector, 0)[0], bat, seq)
        struct.pack_into("<4sI", e, 4096, b"data", seq >> 32)
        e[4104:8188] = sector[8:4092]
        struct.pack_into("<I", e, 8188, seq & 0xFFFFFFFF)
        reseal(e, 0, 8192)
        d[log_off:log_off + 8192] = e
        for h in (64 * 1024, 128 * 1024):
            d[h + 48:h + 64] = guid
            reseal(d, h, 4096)
    elif op == "has-parent":
        e, off, _ = its[FILE_PARAMS]
        (flags,) = struct.unpack_from("<I", d, off + 4)
        struct.pack_into("<I", d, off + 4, flags | 2)
    elif op == "parent-locator":
        # Locator header: type GUID (the VHDX one), reserved, key-value count 0.
        loc = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913").bytes_le + struct.pack("<HH", 0, 0)
        add_item(d, meta, PARENT, 2 | 4, loc)
    elif op == "bat-past-eof":
        i = next(i for i in range(1 << 20)
                 if struct.unpack_from("<Q", d, bat + 8 * i)[0] & 7 == 6)
        struct.pack_into("<Q", d, bat + 8 * i, ((len(d) // MIB + 64) << 20) | 6)
    elif op == "region-count":
        both_region_tables(d, lambda t: struct.pack_into("<I", d, t + 8, 5000))
    elif op == "metadata-count":
        struct.pack_into("<H", d, meta + 10, 5000)
    elif op == "item-length":
        e = its[VDS][0]
        struct.pack_into("<I", d, e + 20, 16 * MIB)
    elif op == "unknown-region":
        last = max(off + length for (off, length) in regs.values())

        def add(t):
            (k,) = struct.unpack_from("<I", d, t + 8)
            e = t + 16 + 32 * k
            d[e:e + 32] = UNKNOWN + struct.pack("<QII", last, MIB, 1)
            struct.pack_into("<I", d, t + 8, k + 1)

        d.extend(b"\0" * max(0, last + MIB - len(d)))
        both_region_tables(d, add)
    elif op == "unknown-item":
        add_item(d, meta, UNKNOWN, 4, b"\1" * 8)
    else:
        raise SystemExit("unknown op " + op)
    with open(path, "wb") as f:
        f.write(d)


if __name__ == "__main__":
    main()
