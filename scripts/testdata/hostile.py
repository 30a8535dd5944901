#!/usr/bin/env python3
"""Patches real qemu-img / sgdisk / mkfs images into hostile ones for the hostile corpus
(scripts/testdata/hostile.sh). Each command edits one file in place and keeps every checksum
valid except the one it means to break, so the reader meets exactly one broken rule.
Usage: hostile.py COMMAND FILE [ARG]"""
import struct
import sys
import zlib


def rd(path):
    with open(path, "rb") as f:
        return bytearray(f.read())


def wr(path, data):
    with open(path, "wb") as f:
        f.write(data)


# --- qcow2 (big-endian header, docs/interop/qcow2.txt "Header") --------------------------

Q_FIELDS = {
    "backing_file_offset": (8, ">Q"),
    "backing_file_size": (16, ">I"),
    "cluster_bits": (20, ">I"),
    "size": (24, ">Q"),
    "l1_size": (36, ">I"),
    "l1_table_offset": (40, ">Q"),
    "refcount_table_offset": (48, ">Q"),
    "refcount_table_clusters": (56, ">I"),
    "nb_snapshots": (60, ">I"),
    "snapshots_offset": (64, ">Q"),
    "refcount_order": (96, ">I"),
    "header_length": (100, ">I"),
}


def qget(d, name):
    off, fmt = Q_FIELDS[name]
    return struct.unpack_from(fmt, d, off)[0]


def qset(d, name, value):
    off, fmt = Q_FIELDS[name]
    struct.pack_into(fmt, d, off, value)


def qcow2_field(path, spec):
    """FIELD=VALUE, VALUE an int or `eof+N` (the file size plus N)."""
    d = rd(path)
    name, value = spec.split("=")
    v = len(d) + int(value[4:]) if value.startswith("eof+") else int(value, 0)
    qset(d, name, v)
    wr(path, d)


def qcow2_refblock(path, value):
    """Points the first refcount table entry at VALUE (`eof+N` or an int)."""
    d = rd(path)
    rt = qget(d, "refcount_table_offset")
    v = len(d) + int(value[4:]) if value.startswith("eof+") else int(value, 0)
    struct.pack_into(">Q", d, rt, v)
    wr(path, d)


def qcow2_l1_entry(path, target):
    """Points L1[0] at `l1` (the L1 table itself) or `eof` (past the end), keeping COPIED."""
    d = rd(path)
    l1 = qget(d, "l1_table_offset")
    dest = l1 if target == "l1" else (len(d) + (1 << 20)) & ~0xFFFF
    struct.pack_into(">Q", d, l1, dest | (1 << 63))
    wr(path, d)


def qcow2_compressed_past_eof(path):
    """Moves the first compressed cluster of L2[0] past the end of the file."""
    d = rd(path)
    cb = qget(d, "cluster_bits")
    l1 = qget(d, "l1_table_offset")
    l2 = struct.unpack_from(">Q", d, l1)[0] & ((1 << 56) - 1) & ~0x1FF
    e = struct.unpack_from(">Q", d, l2)[0]
    assert e & (1 << 62), "L2[0] is not compressed"
    x = 62 - (cb - 8)
    offset_mask = (1 << x) - 1
    e = (e & ~offset_mask) | ((len(d) + (8 << 20)) & offset_mask)
    struct.pack_into(">Q", d, l2, e)
    wr(path, d)


def qcow2_ext_huge(path):
    """Appends an unknown header extension claiming 4 GiB of data after the header."""
    d = rd(path)
    at = qget(d, "header_length")
    struct.pack_into(">II", d, at, 0x12345678, 0xFFFFFFF0)
    wr(path, d)


# --- VHD (big-endian, VHD specification "Hard Disk Footer Format") -----------------------


def vhd_sum(buf, field):
    return ~sum(b for i, b in enumerate(buf) if not field <= i < field + 4) & 0xFFFFFFFF


def vhd_fix_footer(buf):
    struct.pack_into(">I", buf, 64, vhd_sum(buf[:512], 64))


def vhd_footers(d):
    return [0, len(d) - 512]


def vhd_footer_field(path, spec):
    """FIELD=VALUE in both footer copies (data_offset, current_size, disk_type)."""
    fields = {"data_offset": (16, ">Q"), "current_size": (48, ">Q"), "disk_type": (60, ">I")}
    d = rd(path)
    name, value = spec.split("=")
    off, fmt = fields[name]
    for at in vhd_footers(d):
        f = d[at:at + 512]
        struct.pack_into(fmt, f, off, int(value, 0))
        vhd_fix_footer(f)
        d[at:at + 512] = f
    wr(path, d)


def vhd_copy_mismatch(path):
    """The footer copy at offset 0 says another disk size than the footer (both valid)."""
    d = rd(path)
    f = d[:512]
    size = struct.unpack_from(">Q", f, 48)[0]
    struct.pack_into(">Q", f, 48, size * 2)
    vhd_fix_footer(f)
    d[:512] = f
    wr(path, d)


def vhd_dyn(d):
    return struct.unpack_from(">Q", d, len(d) - 512 + 16)[0]


def vhd_dyn_field(path, spec):
    """FIELD=VALUE in the dynamic header (table_offset, max_entries, block_size), checksum
    kept valid; `badsum` instead breaks only the checksum."""
    fields = {"table_offset": (16, ">Q"), "max_entries": (28, ">I"), "block_size": (32, ">I")}
    d = rd(path)
    at = vhd_dyn(d)
    h = d[at:at + 1024]
    if spec == "badsum":
        struct.pack_into(">I", h, 36, struct.unpack_from(">I", h, 36)[0] ^ 1)
    else:
        name, value = spec.split("=")
        off, fmt = fields[name]
        struct.pack_into(fmt, h, off, int(value, 0))
        struct.pack_into(">I", h, 36, vhd_sum(h, 36))
    d[at:at + 1024] = h
    wr(path, d)


def vhd_bat0(path, sector):
    """Sets BAT[0] to SECTOR (e.g. 0: the block overlaps the footer copy and headers)."""
    d = rd(path)
    bat = struct.unpack_from(">Q", d, vhd_dyn(d) + 16)[0]
    struct.pack_into(">I", d, bat, int(sector, 0))
    wr(path, d)


# --- GPT and MBR (UEFI 2.10 §5.3, little-endian) ----------------------------------------


def gpt_field(path, spec):
    """FIELD=VALUE in the primary GPT header (at LBA 1), header CRC recomputed."""
    fields = {"header_size": (12, "<I"), "entries": (80, "<I"), "entry_size": (84, "<I")}
    d = rd(path)
    name, value = spec.split("=")
    off, fmt = fields[name]
    h = 512
    struct.pack_into(fmt, d, h + off, int(value, 0))
    size = min(struct.unpack_from("<I", d, h + 12)[0], 512)
    struct.pack_into("<I", d, h + 16, 0)
    struct.pack_into("<I", d, h + 16, zlib.crc32(bytes(d[h:h + max(size, 92)])))
    wr(path, d)


def mbr_entry(d, sector, slot, ptype, start, count):
    at = sector * 512 + 446 + 16 * slot
    d[at:at + 16] = struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", ptype, b"\xfe\xff\xff",
                                start, count)
    d[sector * 512 + 510:sector * 512 + 512] = b"\x55\xaa"


def ebr_loop(path, kind):
    """An extended partition at LBA 2048 whose EBR chain loops: `self` (the first EBR links
    to itself) or `pair` (EBR 1 -> EBR 2 -> EBR 1)."""
    d = rd(path)
    ext_start, ext_len = 2048, len(d) // 512 - 2048
    mbr_entry(d, 0, 0, 0x05, ext_start, ext_len)
    # Logical partition entries are relative to their EBR; links relative to the extended.
    mbr_entry(d, ext_start, 0, 0x83, 63, 1000)
    if kind == "self":
        mbr_entry(d, ext_start, 1, 0x05, 0, 2048)
    else:
        mbr_entry(d, ext_start, 1, 0x05, 2048, 2048)
        mbr_entry(d, ext_start + 2048, 0, 0x83, 63, 1000)
        mbr_entry(d, ext_start + 2048, 1, 0x05, 0, 2048)
    wr(path, d)


COMMANDS = {
    "qcow2-field": qcow2_field,
    "qcow2-refblock": qcow2_refblock,
    "qcow2-l1-entry": qcow2_l1_entry,
    "qcow2-compressed-past-eof": qcow2_compressed_past_eof,
    "qcow2-ext-huge": qcow2_ext_huge,
    "vhd-footer": vhd_footer_field,
    "vhd-copy-mismatch": vhd_copy_mismatch,
    "vhd-dyn": vhd_dyn_field,
    "vhd-bat0": vhd_bat0,
    "gpt": gpt_field,
    "ebr-loop": ebr_loop,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
