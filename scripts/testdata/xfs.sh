# XFS images for the read-only XFS reader (src/guest/fs/xfs), built without mounting:
# mkfs.xfs -p populates each from a protofile that mirrors tree/ (kept here: the tests compare
# every file and directory listing against it). Then xfs_db -x splits data/holes into extents
# with two holes and an unwritten extent, so the reader sees sparse, multi-extent data.
# Images are sparse (zeros not stored); each has a NAME.meta with xfs_db's uuid and label and
# a NAME.repair with the (clean) xfs_repair -n report.
python3 "$root/scripts/testdata/xfs.py" "$PWD/tree" proto

# holes IMG FORK: data/holes is one extent of 6 KiB-units (4096 bytes each); rewrite it as
# units 0, 2, 4 (unwritten) and 5, leaving 1 and 3 as holes (tree/data/holes has zeros there).
holes() {
  local img=$1 u=$2 bs k start
  bs=$(xfs_db -r -c 'sb 0' -c 'p blocksize' "$img" | sed 's/.*= //')
  k=$((4096 / bs))
  start=$(xfs_db -r -c 'path /data/holes' -c "p $u.bmx" "$img" | sed -n 's/^0:\[0,\([0-9]*\),.*/\1/p')
  [ -n "$start" ] || { echo "xfs.sh: no extent for data/holes in $img" >&2; exit 1; }
  xfs_db -x -c 'path /data/holes' -c 'write core.nextents 4' -c "write core.nblocks $((4 * k))" \
    -c "write $u.bmx[0].blockcount $k" \
    -c "write $u.bmx[1].startoff $((2 * k))" -c "write $u.bmx[1].startblock $((start + 2 * k))" \
    -c "write $u.bmx[1].blockcount $k" \
    -c "write $u.bmx[2].startoff $((4 * k))" -c "write $u.bmx[2].startblock $((start + 4 * k))" \
    -c "write $u.bmx[2].blockcount $k" -c "write $u.bmx[2].extentflag 1" \
    -c "write $u.bmx[3].startoff $((5 * k))" -c "write $u.bmx[3].startblock $((start + 5 * k))" \
    -c "write $u.bmx[3].blockcount $k" "$img" >/dev/null
}

# fixlink IMG: give v5 remote symlinks the header mkfs.xfs 6.1 leaves out (see xfs.py).
fixlink() {
  local img=$1 geo ino fsb
  geo=$(xfs_db -r -c 'sb 0' -c 'p agblocks agblklog blocksize uuid' "$img" | sed 's/.*= //' | tr '\n' ' ')
  ino=$(xfs_db -r -c 'path /links/remote-long' -c 'p v3.inumber' "$img" | sed 's/.*= //')
  fsb=$(xfs_db -r -c 'path /links/remote-long' -c 'p u3.bmx' "$img" | sed -n 's/^0:\[0,\([0-9]*\),1,0\]/\1/p')
  [ -n "$fsb" ] || { echo "xfs.sh: remote-long is not one block in $img" >&2; exit 1; }
  # shellcheck disable=SC2086
  python3 "$root/scripts/testdata/xfs.py" fixlink "$img" "$ino" "$fsb" $geo
}

# make NAME FORK MKFS-OPTIONS...: one image of 400 MiB (sparse; mkfs refuses < 300 MiB).
make() {
  local name=$1 u=$2
  shift 2
  truncate -s 400M "$name.img"
  # mkfs's notes are dropped: that v4 is deprecated (on stdout; the v4 image is deliberate)
  # and the protofile fill's "Transaction block reservation exceeded" (stderr); errors show.
  mkfs.xfs -q -f -p proto "$@" "$name.img" >/dev/null \
    2> >(grep -v 'Transaction block reservation exceeded' >&2)
  holes "$name.img" "$u"
  if [ "$u" = u3 ]; then fixlink "$name.img"; fi
  xfs_repair -n -f "$name.img" > "$name.repair" 2>&1 || { cat "$name.repair" >&2; exit 1; }
  # mkfs zeroes the log with unwritten extents; a sparse copy drops them.
  cp --sparse=always "$name.img" "$name.tmp"
  mv "$name.tmp" "$name.img"
  xfs_db -r -c uuid -c label "$name.img" > "$name.meta"
}

make v5 u3 -L imgport-v5
make v4 u -m crc=0 -n ftype=0 -i size=256 -L imgport-v4
make v5-1k u3 -b size=1024 -n size=8192 -L small-blocks
make v5-i1k u3 -i size=1024 -m reflink=1 -n size=65536
make v5-ci u3 -n version=ci -L CaseFold
