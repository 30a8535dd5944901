#!/usr/bin/env python3
"""Writes Windows test inputs for scripts/testdata/windows.sh: registry hive files (regf) and
minimal PE executables. Our own generator, written from the public description of the regf
format (base block, hbins, nk/lh/vk/db cells); hivexget is used by windows.sh as an oracle.

  windows.py hives OUTDIR SET   writes OUTDIR/SOFTWARE and OUTDIR/SYSTEM for SET
  windows.py pe OUT MACHINE [SUBSYSTEM] [SIZE]   writes a PE file with COFF Machine MACHINE
"""
import struct
import sys

REG_SZ, REG_EXPAND_SZ, REG_BINARY, REG_DWORD, REG_MULTI_SZ, REG_QWORD = 1, 2, 3, 4, 7, 11
BIG_DATA_SEGMENT = 16344


class HiveWriter:
    """Allocates cells in 4096-byte hive bins (larger bins for large cells)."""

    def __init__(self):
        self.bins = bytearray()
        self.bin_start = 0
        self.bin_end = 0

    def _new_bin(self, need):
        self._close_bin()
        size = max(4096, (need + 32 + 4095) // 4096 * 4096)
        self.bin_start = len(self.bins)
        self.bins += b"hbin" + struct.pack("<III", self.bin_start, size, 0) + bytes(16)
        self.bins += bytes(size - 32)
        self.bin_end = self.bin_start + size
        self.pos = self.bin_start + 32

    def _close_bin(self):
        if self.bin_end and self.bin_end - self.pos >= 8:
            # The rest of the bin is one free cell (positive size).
            struct.pack_into("<i", self.bins, self.pos, self.bin_end - self.pos)

    def cell(self, data):
        size = (4 + len(data) + 7) // 8 * 8
        if not self.bin_end or self.pos + size > self.bin_end:
            self._new_bin(size)
        off = self.pos
        struct.pack_into("<i", self.bins, off, -size)
        self.bins[off + 4 : off + 4 + len(data)] = data
        self.pos += size
        return off

    def value(self, name, ty, data):
        if len(data) <= 4:
            size, off = 0x80000000 | len(data), struct.unpack("<I", data.ljust(4, b"\0"))[0]
        elif len(data) > BIG_DATA_SEGMENT:
            segs = [self.cell(data[i : i + BIG_DATA_SEGMENT])
                    for i in range(0, len(data), BIG_DATA_SEGMENT)]
            seglist = self.cell(b"".join(struct.pack("<I", s) for s in segs))
            off = self.cell(b"db" + struct.pack("<HI", len(segs), seglist))
            size = len(data)
        else:
            size, off = len(data), self.cell(data)
        n = name.encode("latin-1")
        return self.cell(b"vk" + struct.pack("<HIIIHH", len(n), size, off, ty, 1, 0) + n)

    def key(self, name, subkeys, values, parent=0, root=False):
        """Writes a key node; `subkeys` and `values` are lists of (name, offset)."""
        subkeys = sorted(subkeys, key=lambda s: s[0].upper())
        sl = 0xFFFFFFFF
        if subkeys:
            items = b""
            for sname, soff in subkeys:
                h = 0
                for ch in sname.upper():
                    h = (h * 37 + ord(ch)) & 0xFFFFFFFF
                items += struct.pack("<II", soff, h)
            sl = self.cell(b"lh" + struct.pack("<H", len(subkeys)) + items)
        vl = 0xFFFFFFFF
        if values:
            vl = self.cell(b"".join(struct.pack("<I", v) for v in values))
        n = name.encode("latin-1")
        flags = 0x2C if root else 0x20
        body = b"nk" + struct.pack(
            "<HQIIIIIIIIIIIIIIIHH",
            flags, 0, 0, parent, len(subkeys), 0, sl, 0xFFFFFFFF, len(values), vl,
            0xFFFFFFFF, 0xFFFFFFFF, 0, 0, 0, 0, 0, len(n), 0,
        ) + n
        return self.cell(body)

    def tree(self, name, node, root=False):
        """Writes a nested dict: keys map to dicts (subkeys); '=' holds [(name, ty, data)]."""
        subs = [(k, self.tree(k, v)) for k, v in node.items() if k != "="]
        vals = [self.value(n, t, d) for n, t, d in node.get("=", [])]
        off = self.key(name, subs, vals, root=root)
        for _, child in subs:
            struct.pack_into("<I", self.bins, child + 4 + 0x10, off)
        return off

    def file(self, root_name, tree, seq=(1, 1)):
        root = self.tree(root_name, tree, root=True)
        self._close_bin()
        base = bytearray(4096)
        base[0:4] = b"regf"
        struct.pack_into("<IIQIIIIIII", base, 4, seq[0], seq[1], 0, 1, 5, 0, 1, root,
                         len(self.bins), 1)
        x = 0
        for i in range(127):
            x ^= struct.unpack_from("<I", base, i * 4)[0]
        x = {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(x, x)
        struct.pack_into("<I", base, 508, x)
        return bytes(base) + bytes(self.bins)


def sz(s):
    return (s + "\0").encode("utf-16-le")


def dword(v):
    return struct.pack("<I", v)


def multi(items):
    return "".join(i + "\0" for i in items).encode("utf-16-le") + b"\0\0"


def current_version(product, build, edition, itype, major=None, display=None, ubr=None,
                    cv="6.3"):
    vals = [
        ("ProductName", REG_SZ, sz(product)),
        ("EditionID", REG_SZ, sz(edition)),
        ("InstallationType", REG_SZ, sz(itype)),
        ("CurrentVersion", REG_SZ, sz(cv)),
        ("CurrentBuild", REG_SZ, sz(build)),
        ("CurrentBuildNumber", REG_SZ, sz(build)),
        ("SystemRoot", REG_SZ, sz("C:\\Windows")),
        ("PathName", REG_EXPAND_SZ, sz("%SystemDrive%\\Windows")),
        # Large enough to be stored as big data (db segments).
        ("DigitalProductId4", REG_BINARY, bytes(range(256)) * 80),
    ]
    if major is not None:
        vals += [("CurrentMajorVersionNumber", REG_DWORD, dword(major)),
                 ("CurrentMinorVersionNumber", REG_DWORD, dword(0))]
    if display:
        vals.append(("DisplayVersion", REG_SZ, sz(display)))
    if ubr is not None:
        vals.append(("UBR", REG_DWORD, dword(ubr)))
    vals.append(("InstallDate", REG_QWORD, struct.pack("<Q", 0x01D8_0000_0000_0000)))
    return {"Microsoft": {"Windows NT": {"CurrentVersion": {"=": vals}},
                         "Windows": {"CurrentVersion": {"=": [
                             ("ProgramFilesDir", REG_SZ, sz("C:\\Program Files"))]}}}}


def service(start, image):
    return {"=": [("Type", REG_DWORD, dword(1 if image.endswith(".sys") else 16)),
                  ("Start", REG_DWORD, dword(start)),
                  ("ImagePath", REG_EXPAND_SZ, sz(image)),
                  ("DependOnService", REG_MULTI_SZ, multi(["PnP", "RpcSs"]))]}


def system(current, sets):
    """`sets` maps a control set number to (arch, {service: start})."""
    tree = {"Select": {"=": [("Current", REG_DWORD, dword(current)),
                             ("Default", REG_DWORD, dword(current)),
                             ("LastKnownGood", REG_DWORD, dword(current))]}}
    for n, (arch, services) in sets.items():
        svc = {name: service(start, f"system32\\drivers\\{name}.sys" if name != "cloudbase-init"
                             else "\"C:\\Program Files\\Cloudbase Solutions\\Cloudbase-Init\\bin\\OpenStackService.exe\"")
               for name, start in services.items()}
        svc["Tcpip"] = {"Parameters": {"=": [("Hostname", REG_SZ, sz("WIN-TEST"))]}}
        tree[f"ControlSet{n:03d}"] = {
            "Control": {"Session Manager": {"Environment": {"=": [
                ("PROCESSOR_ARCHITECTURE", REG_SZ, sz(arch)),
                ("OS", REG_SZ, sz("Windows_NT"))]}}},
            "Services": svc,
        }
    return tree


SETS = {
    # Server 2022 with virtio (boot-start) and cloudbase-init as a service.
    "win2022": (
        current_version("Windows Server 2022 Datacenter", "20348", "ServerDatacenter", "Server",
                        10, "21H2", 2227),
        system(1, {1: ("AMD64", {"viostor": 0, "vioscsi": 0, "netkvm": 3, "stornvme": 0,
                                 "cloudbase-init": 2})}),
        (1, 1),
    ),
    # Server 2019: Select\Current = 2; the stale ControlSet001 has virtio, the current does not.
    # The SYSTEM hive is dirty (sequence numbers differ).
    "win2019": (
        current_version("Windows Server 2019 Standard", "17763", "ServerStandard", "Server",
                        10, None, 5830),
        system(2, {1: ("AMD64", {"viostor": 0, "netkvm": 3}),
                   2: ("AMD64", {"stornvme": 3})}),
        (9, 8),
    ),
    # Server 2012 R2: no CurrentMajorVersionNumber; cloudbase-init only as files.
    "win2012r2": (
        current_version("Windows Server 2012 R2 Standard", "9600", "ServerStandard", "Server",
                        None, None, None),
        system(1, {1: ("AMD64", {"viostor": 3, "netkvm": 3, "stornvme": 0})}),
        (1, 1),
    ),
    # Windows 11 on arm64: ProductName still says Windows 10.
    "win11": (
        current_version("Windows 10 Pro", "22631", "Professional", "Client", 10, "23H2", 4169),
        system(1, {1: ("ARM64", {"stornvme": 0})}),
        (1, 1),
    ),
    # Server 2025: no ImportImage Platform value documented for it.
    "win2025": (
        current_version("Windows Server 2025 Datacenter", "26100", "ServerDatacenter", "Server",
                        10, "24H2", 1742),
        system(1, {1: ("AMD64", {"viostor": 0, "netkvm": 3, "stornvme": 0})}),
        (1, 1),
    ),
    # Server 2008 SP2, 32-bit.
    "win2008": (
        current_version("Windows Server (R) 2008 Standard", "6002", "ServerStandard", "Server",
                        None, None, None, cv="6.0"),
        system(1, {1: ("x86", {"viostor": 0})}),
        (1, 1),
    ),
}


def pe(machine, subsystem=3, size=65536):
    """A minimal PE image: DOS header, PE signature, COFF header, optional header, zeros."""
    lfanew = 0x80
    b = bytearray(size)
    b[0:2] = b"MZ"
    struct.pack_into("<I", b, 0x3C, lfanew)
    pe32plus = machine in (0x8664, 0xAA64)
    opt_size = 0xF0 if pe32plus else 0xE0
    b[lfanew : lfanew + 4] = b"PE\0\0"
    struct.pack_into("<HHIIIHH", b, lfanew + 4, machine, 0, 0, 0, 0, opt_size, 0x0022)
    opt = lfanew + 24
    struct.pack_into("<H", b, opt, 0x20B if pe32plus else 0x10B)
    struct.pack_into("<H", b, opt + 68, subsystem)
    text = b"This program cannot be run in DOS mode. imgport test image.\r\n"
    b[0x40 : 0x40 + len(text)] = text
    return bytes(b)


def main():
    if sys.argv[1] == "hives":
        outdir, name = sys.argv[2], sys.argv[3]
        software, system_tree, seq = SETS[name]
        with open(f"{outdir}/SOFTWARE", "wb") as f:
            f.write(HiveWriter().file("ROOT", software))
        with open(f"{outdir}/SYSTEM", "wb") as f:
            f.write(HiveWriter().file("ROOT", system_tree, seq))
    elif sys.argv[1] == "pe":
        out, machine = sys.argv[2], int(sys.argv[3], 0)
        subsystem = int(sys.argv[4]) if len(sys.argv) > 4 else 3
        size = int(sys.argv[5]) if len(sys.argv) > 5 else 65536
        with open(out, "wb") as f:
            f.write(pe(machine, subsystem, size))
    elif sys.argv[1] == "sets":
        print(" ".join(SETS))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")


if __name__ == "__main__":
    main()
