# The sparse cases of scripts/bench-convert.sh (issue 25), sourced by it for `--sparse`:
# `imgport convert --to raw` of a 1 TiB QCOW2 holding 1 GiB of random data (16 × 64 MiB, one
# every 64 GiB) and of an empty 100 GiB QCOW2, against `qemu-img convert -O raw`.
#
# Goals: without digests (`--no-sha256 --no-content-digest`) imgport within 2 × qemu-img's
# wall time; with the default digests no slower than qemu-img followed by `sha256sum` of the
# bytes those digests cover. By default the SHA-256 of an output holding more than 4 GiB of
# zeros is skipped with a notice (docs/PERFORMANCE.md §Sparse), so the default digests cover
# the data only: CRC-64 (zero runs in closed form) and the content digest (holes as records).
# imgport fsyncs its output, so its peer is `qemu-img convert -t writeback` (one flush at the
# end); qemu-img's default (`-t unsafe`, no flush) is printed too.
#
# Then one memory line: `imgport convert --to vhd` of the bench-e2e source (40 GiB virtual,
# 4 GiB data) and of a copy grown to 2040 GiB (VHD's largest size, same data) have the same
# peak RSS: memory follows the parts in flight, not the disk size.
#
# Expects from the sourcing script: root, target, dir (the cache), runs.
# shellcheck shell=bash

(cd "$root" && cargo build --release --quiet)
imgport=$target/release/imgport
out=$dir/sparse-out
[ -f "$dir/rnd1g" ] || head -c 1G /dev/urandom > "$dir/rnd1g"
empty=$dir/sparse-empty-100g.qcow2
[ -f "$empty" ] || qemu-img create -q -f qcow2 "$empty" 100G
tib=$dir/sparse-1t-1g.qcow2
if [ ! -f "$tib" ]; then
  echo "building $tib (1 TiB virtual, 1 GiB data)" >&2
  truncate -s 1T "$tib.raw.tmp"
  for i in $(seq 0 15); do
    dd if="$dir/rnd1g" of="$tib.raw.tmp" bs=64M count=1 skip="$i" seek=$((i * 1024)) \
      conv=notrunc status=none
  done
  qemu-img convert -f raw -O qcow2 "$tib.raw.tmp" "$tib.tmp"
  rm -f "$tib.raw.tmp"
  mv "$tib.tmp" "$tib"
fi

# sparse_time CMD: "wall cpu rss_kib" of one run of CMD (its output files removed first).
sparse_time() {
  rm -f "$out".*
  /usr/bin/time -f '%e %U %S %M' -o "$dir/time.txt" bash -c "$1" >/dev/null 2>&1 \
    || { echo "failed: $1" >&2; cat "$dir/time.txt" >&2; return 1; }
  awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$dir/time.txt"
}
median_of() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
goal() { if [ "$2" = 1 ]; then echo "goal $1: met"; else echo "goal $1: MISSED"; fi; }

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $runs runs each"
for case in "1 TiB, 1 GiB data:$tib:$dir/rnd1g" "100 GiB, empty:$empty:"; do
  IFS=: read -r label src covered <<< "$case"
  names=("qemu-img convert -O raw -t writeback" "qemu-img convert -O raw (default -t unsafe)"
    "imgport convert --to raw --no-sha256 --no-content-digest" "imgport convert --to raw (default digests)"
    "sha256sum of the bytes the default digests cover")
  cmds=("qemu-img convert -t writeback -f qcow2 -O raw $src $out.q.raw"
    "qemu-img convert -f qcow2 -O raw $src $out.q.raw"
    "$imgport convert $src $out.i.raw --to raw --no-sha256 --no-content-digest --json"
    "$imgport convert $src $out.i.raw --to raw --json"
    "sha256sum ${covered:-/dev/null}")
  for c in "${cmds[@]}"; do sparse_time "$c" > /dev/null; done # warm-up
  declare -A walls=() cpus=() rsss=()
  for _ in $(seq 1 "$runs"); do
    for i in "${!cmds[@]}"; do
      read -r w c m < <(sparse_time "${cmds[$i]}")
      walls[$i]="${walls[$i]:-} $w" cpus[$i]="${cpus[$i]:-} $c" rsss[$i]="${rsss[$i]:-} $m"
    done
  done
  # The outputs agree.
  rm -f "$out".*
  qemu-img convert -f qcow2 -O raw "$src" "$out.q.raw"
  "$imgport" convert "$src" "$out.i.raw" --to raw --json > "$out.json"
  qemu-img compare -q -f raw -F raw "$out.q.raw" "$out.i.raw" # skips holes, unlike cmp
  echo
  echo "source: $src ($label); output: raw, $(du -h "$out.i.raw" | cut -f1) allocated"
  python3 -c 'import json,sys; print("  imgport notices:", json.load(open(sys.argv[1]))["notices"])' "$out.json"
  rm -f "$out".*
  for i in "${!cmds[@]}"; do
    read -ra w <<< "${walls[$i]}"
    read -ra m <<< "${rsss[$i]}"
    printf '  %-58s median %7.3f s  peak RSS %6.1f MiB  (runs wall s:%s; CPU s:%s)\n' "${names[$i]}" \
      "$(median_of "${w[@]}")" "$(awk "BEGIN{print $(printf '%s\n' "${m[@]}" | sort -g | tail -1) / 1024}")" \
      "${walls[$i]}" "${cpus[$i]}"
  done
  # Every run is held to the goals (run k of imgport against run k of its peer).
  read -ra q <<< "${walls[0]}"
  read -ra n <<< "${walls[2]}"
  read -ra d <<< "${walls[3]}"
  read -ra s <<< "${walls[4]}"
  worst_nodig=0 worst_dig=0
  for k in "${!q[@]}"; do
    worst_nodig=$(awk "BEGIN{r=${n[$k]}/${q[$k]}; print (r>$worst_nodig)?r:$worst_nodig}")
    worst_dig=$(awk "BEGIN{r=${d[$k]}/(${q[$k]}+${s[$k]}); print (r>$worst_dig)?r:$worst_dig}")
  done
  goal "no digests within 2 x qemu-img -t writeback, every run (worst ratio $worst_nodig)" \
    "$(awk "BEGIN{print ($worst_nodig <= 2)}")"
  goal "default digests no slower than qemu-img + sha256sum of the covered bytes, every run (worst ratio $worst_dig)" \
    "$(awk "BEGIN{print ($worst_dig <= 1)}")"
done

# Memory flat as the disk grows.
small=$dir/e2e-64.qcow2
if [ -f "$small" ]; then
  big=$dir/e2e-64-2040g.qcow2
  if [ ! -f "$big" ]; then
    cp "$small" "$big.tmp" && qemu-img resize -q "$big.tmp" 2040G && mv "$big.tmp" "$big"
  fi
  echo
  r_small=$(sparse_time "$imgport convert $small $out.v.vhd --to vhd --json" | cut -d' ' -f3)
  r_big=$(sparse_time "$imgport convert $big $out.v.vhd --to vhd --json" | cut -d' ' -f3)
  rm -f "$out".*
  echo "peak RSS of imgport convert --to vhd, same 4 GiB of data: 40 GiB disk $((r_small / 1024)) MiB," \
    "2040 GiB disk $((r_big / 1024)) MiB"
  goal "memory flat as the disk grows (2040 GiB within 4 MiB of 40 GiB)" \
    "$(( r_big <= r_small + 4096 ))"
else
  echo "memory line skipped: $small not built (run scripts/bench-e2e.sh once)"
fi
