"""Helpers for guest.sh (our own code, no third-party tools):

  proto DIR             print an mkfs.xfs protofile (xfs_mkfs(8) "-p") describing DIR, so an
                        XFS file system is filled from a tree without mounting anything
  place DISK OFFSET PE_START EXTENT IMAGE SEGMENTS...
                        copy IMAGE (a file-system image the size of an LV) into DISK where
                        LVM put the LV's extents: SEGMENTS are "lv_start_extent:pv_first-pv_last"
                        as `lvs --segments -o seg_start_pe,seg_pe_ranges` prints them; OFFSET is
                        the PV's byte offset on DISK, PE_START the PV's first-extent offset and
                        EXTENT the extent size, both in bytes.
"""
import os
import stat
import sys


def proto(root):
    out = ["/dev/null", "0 0"]

    def mode(st, kind):
        perm = stat.S_IMODE(st.st_mode)
        su = "u" if perm & stat.S_ISUID else "-"
        sg = "g" if perm & stat.S_ISGID else "-"
        return f"{kind}{su}{sg}{perm & 0o777:03o} {st.st_uid} {st.st_gid}"

    def walk(d, depth):
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            st = os.lstat(p)
            pad = " " * depth
            if stat.S_ISLNK(st.st_mode):
                out.append(f"{pad}{name} {mode(st, 'l')} {os.readlink(p)}")
            elif stat.S_ISDIR(st.st_mode):
                out.append(f"{pad}{name} {mode(st, 'd')}")
                walk(p, depth + 1)
                out.append(f"{pad}$")
            elif stat.S_ISREG(st.st_mode):
                out.append(f"{pad}{name} {mode(st, '-')} {os.path.abspath(p)}")

    out.append(mode(os.lstat(root), "d"))
    walk(root, 1)
    out.append("$")
    print("\n".join(out))


def place(disk, offset, pe_start, extent, image, segments):
    offset, pe_start, extent = int(offset), int(pe_start), int(extent)
    with open(image, "rb") as src, open(disk, "r+b") as dst:
        for seg in segments:
            lv_first, rng = seg.split(":", 1)
            first, last = (int(x) for x in rng.rsplit(":", 1)[-1].split("-"))
            count = last - first + 1
            src.seek(int(lv_first) * extent)
            data = src.read(count * extent)
            dst.seek(offset + pe_start + first * extent)
            dst.write(data)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "proto":
        proto(args[0])
    elif cmd == "place":
        place(args[0], args[1], args[2], args[3], args[4], args[5:])
    else:
        sys.exit(f"unknown command {cmd}")
