#!/usr/bin/env bash
# Benchmarks `imgport convert --to vhd` (one pass: conversion + SHA-256 + CRC-64 per part,
# written with fsync) against `qemu-img convert -O vpc` followed by `sha256sum` of its output,
# and against `qemu-img convert -W -O vpc` alone; prints medians, ratios and peak RSS.
#
# The source is a "target-sized" image: 40 GiB virtual with
# 64 chunks of 64 MiB random data, one every 640 MiB (4 GiB of data). `--chunks N` scales it
# down (N chunks: N × 640 MiB virtual, N × 64 MiB data) for quick runs. Images are cached in
# $BENCH_DIR (default target/bench). Uses hyperfine when installed, else /usr/bin/time.
#
# `--source vmdk` converts from a streamOptimized VMDK (deflate-compressed grains) that
# qemu-img makes from the raw source.
#
# usage: scripts/bench-convert.sh [--chunks N] [--runs R] [--source raw|qcow2|vmdk]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
chunks=64
runs=3
source_fmt=raw
while [ $# -gt 0 ]; do
  case "$1" in
    --chunks) chunks=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --source) source_fmt=$2; shift 2 ;;
    *) echo "usage: $0 [--chunks N] [--runs R] [--source raw|qcow2|vmdk]" >&2; exit 2 ;;
  esac
done
dir=${BENCH_DIR:-$root/target/bench}
mkdir -p "$dir"
src_raw=$dir/t$chunks.raw
src=$dir/t$chunks.$source_fmt

if [ ! -f "$src_raw" ]; then
  echo "building $src_raw ($((chunks * 640)) MiB virtual, $((chunks * 64)) MiB data)" >&2
  [ -f "$dir/rnd1g" ] || head -c 1G /dev/urandom > "$dir/rnd1g"
  truncate -s $((chunks * 640))M "$src_raw.tmp"
  for i in $(seq 0 $((chunks - 1))); do
    dd if="$dir/rnd1g" of="$src_raw.tmp" bs=64M count=1 skip=$((i % 16)) seek=$((i * 10)) \
      conv=notrunc status=none
  done
  mv "$src_raw.tmp" "$src_raw"
fi
if [ "$source_fmt" = qcow2 ] && [ ! -f "$src" ]; then
  qemu-img convert -f raw -O qcow2 "$src_raw" "$src.tmp" && mv "$src.tmp" "$src"
fi
if [ "$source_fmt" = vmdk ] && [ ! -f "$src" ]; then
  qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$src_raw" "$src.tmp" &&
    mv "$src.tmp" "$src"
fi

(cd "$root" && cargo build --release --quiet)
imgport=${CARGO_TARGET_DIR:-$root/target}/release/imgport
out=$dir/out
rm -f "$out".*

ours="$imgport convert $src $out.ours.vhd --to vhd --no-content-digest --json"
qemu_sha="qemu-img convert -f $source_fmt -O vpc -o force_size=on $src $out.qemu.vhd && sha256sum $out.qemu.vhd"
qemu_w="qemu-img convert -W -f $source_fmt -O vpc -o force_size=on $src $out.qemuw.vhd"
names=("imgport convert --to vhd (+sha256, crc64/part, fsync)" "qemu-img convert -O vpc + sha256sum" "qemu-img convert -W -O vpc")
cmds=("$ours" "$qemu_sha" "$qemu_w")

medians=()
if command -v hyperfine >/dev/null; then
  json=$dir/hyperfine.json
  hyperfine --runs "$runs" --warmup 1 --prepare "rm -f $out.*" --export-json "$json" \
    -n "${names[0]}" "${cmds[0]}" -n "${names[1]}" "${cmds[1]}" -n "${names[2]}" "${cmds[2]}" >&2
  mapfile -t medians < <(python3 -c 'import json,sys; [print(r["median"]) for r in json.load(open(sys.argv[1]))["results"]]' "$json")
else
  for c in "${cmds[@]}"; do
    times=()
    for _ in $(seq 0 "$runs"); do # first run is a warm-up
      rm -f "$out".*
      /usr/bin/time -f %e -o "$dir/time.txt" bash -c "$c" >/dev/null 2>&1
      times+=("$(tail -1 "$dir/time.txt")")
    done
    medians+=("$(printf '%s\n' "${times[@]:1}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')")
  done
fi

rss=()
for c in "${cmds[@]}"; do
  rm -f "$out".*
  /usr/bin/time -v -o "$dir/time.txt" bash -c "$c" >/dev/null 2>&1
  kb=$(awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}' "$dir/time.txt")
  rss+=("$kb")
done

# The outputs must agree before the times mean anything.
rm -f "$out".*
bash -c "$ours" > "$out.ours.json"
qemu-img convert -W -f "$source_fmt" -O vpc -o force_size=on "$src" "$out.qemuw.vhd"
qemu-img compare -f vpc -F vpc "$out.ours.vhd" "$out.qemuw.vhd" >/dev/null
ours_sha=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$out.ours.json")
[ "$ours_sha" = "$(sha256sum "$out.ours.vhd" | cut -d' ' -f1)" ]
data_mib=$((chunks * 64))

echo
echo "source: $src ($((chunks * 640)) MiB virtual, $data_mib MiB data), $runs runs, $(nproc) cores"
for i in 0 1 2; do
  printf '%-62s median %8.3f s  %7.0f MiB/s of data  peak RSS %7.1f MiB\n' "${names[$i]}" \
    "${medians[$i]}" "$(awk "BEGIN {print $data_mib / ${medians[$i]}}")" "$(awk "BEGIN {print ${rss[$i]} / 1024}")"
done
printf 'ratio imgport / (qemu-img + sha256sum): %.2f\n' "$(awk "BEGIN {print ${medians[0]} / ${medians[1]}}")"
printf 'ratio imgport / (qemu-img -W alone):     %.2f\n' "$(awk "BEGIN {print ${medians[0]} / ${medians[2]}}")"
echo "outputs checked: qemu-img compare identical; imgport's sha256 = sha256sum of its output"
rm -f "$out".*
