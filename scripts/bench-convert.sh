#!/usr/bin/env bash
# Benchmarks `imgport convert --to vhd` (one pass: conversion + SHA-256 + CRC-64 per part,
# written with fsync) against `qemu-img convert -O vpc` followed by `sha256sum` of its output,
# and against `qemu-img convert -O vpc` alone (as qemu-img runs by default; `-W`, out-of-order
# writes, is printed too); prints medians, ratios, peak RSS and the goals (issue 25): imgport
# ≤ 0.35 × qemu-img + sha256sum, no slower than `qemu-img convert` alone, peak RSS ≤ 64 MiB.
# `--sparse` runs the sparse cases instead (see the end of this script).
#
# The source is a "target-sized" image: 40 GiB virtual with
# 64 chunks of 64 MiB random data, one every 640 MiB (4 GiB of data). `--chunks N` scales it
# down (N chunks: N × 640 MiB virtual, N × 64 MiB data) for quick runs. Images are cached in
# $BENCH_DIR (default $CARGO_TARGET_DIR/bench or target/bench). Timed with /usr/bin/time, the
# commands taking turns.
#
# `--source vmdk` converts from a streamOptimized VMDK (deflate-compressed grains) that
# qemu-img makes from the raw source.
#
# usage: scripts/bench-convert.sh [--chunks N] [--runs R] [--source raw|qcow2|vmdk] [--sparse]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"
chunks=64
runs=3
source_fmt=raw
sparse=0
while [ $# -gt 0 ]; do
  case "$1" in
    --chunks) chunks=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --source) source_fmt=$2; shift 2 ;;
    --sparse) sparse=1; shift ;;
    *) echo "usage: $0 [--chunks N] [--runs R] [--source raw|qcow2|vmdk] [--sparse]" >&2; exit 2 ;;
  esac
done
target=${CARGO_TARGET_DIR:-$root/target}
dir=${BENCH_DIR:-$target/bench}
mkdir -p "$dir"
if [ "$sparse" = 1 ]; then
  # shellcheck source=scripts/bench-convert-sparse.sh
  . "$root/scripts/bench-convert-sparse.sh"
  exit 0
fi
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
imgport=$target/release/imgport
out=$dir/out
rm -f "$out".*

ours="$imgport convert $src $out.ours.vhd --to vhd --no-content-digest --json"
qemu_sha="qemu-img convert -f $source_fmt -O vpc -o force_size=on $src $out.qemu.vhd && sha256sum $out.qemu.vhd"
qemu_alone="qemu-img convert -f $source_fmt -O vpc -o force_size=on $src $out.qemua.vhd"
qemu_w="qemu-img convert -W -f $source_fmt -O vpc -o force_size=on $src $out.qemuw.vhd"
names=("imgport convert --to vhd (+sha256, crc64/part, fsync)" "qemu-img convert -O vpc + sha256sum"
  "qemu-img convert -O vpc (alone)" "qemu-img convert -W -O vpc (alone)")
cmds=("$ours" "$qemu_sha" "$qemu_alone" "$qemu_w")

# One untimed warm-up of each, then RUNS rounds of the commands in turn (so load from other
# processes falls on all of them alike); per run: wall seconds, CPU seconds, peak RSS (KiB).
for c in "${cmds[@]}"; do rm -f "$out".*; bash -c "$c" >/dev/null 2>&1; done
declare -A wall cpu rss
for r in $(seq 1 "$runs"); do
  for i in "${!cmds[@]}"; do
    rm -f "$out".*
    /usr/bin/time -f '%e %U %S %M' -o "$dir/time.txt" bash -c "${cmds[$i]}" >/dev/null 2>&1
    read -r w u sy m < <(tail -1 "$dir/time.txt")
    wall[$i]="${wall[$i]:-} $w"
    cpu[$i]="${cpu[$i]:-} $(awk "BEGIN{print $u + $sy}")"
    rss[$i]="${rss[$i]:-} $m"
  done
done
median() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
maxof() { printf '%s\n' $1 | sort -g | tail -1; }

# The outputs must agree before the times mean anything.
rm -f "$out".*
bash -c "$ours" > "$out.ours.json"
qemu-img convert -W -f "$source_fmt" -O vpc -o force_size=on "$src" "$out.qemuw.vhd"
qemu-img compare -f vpc -F vpc "$out.ours.vhd" "$out.qemuw.vhd" >/dev/null
ours_sha=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$out.ours.json")
[ "$ours_sha" = "$(sha256sum "$out.ours.vhd" | cut -d' ' -f1)" ]
data_mib=$((chunks * 64))

echo
echo "source: $src ($((chunks * 640)) MiB virtual, $data_mib MiB data), $runs runs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in "${!cmds[@]}"; do
  m=$(median "${wall[$i]}")
  printf '%-56s median %7.3f s  %6.0f MiB/s of data  peak RSS %6.1f MiB\n' "${names[$i]}" \
    "$m" "$(awk "BEGIN {print $data_mib / $m}")" "$(awk "BEGIN {print $(maxof "${rss[$i]}") / 1024}")"
  echo "  runs wall s:${wall[$i]}; CPU s:${cpu[$i]}"
done
w0=$(median "${wall[0]}")
r_chain=$(bench_ratio "$w0" "$(median "${wall[1]}")")
r_alone=$(bench_ratio "$w0" "$(median "${wall[2]}")")
r_w=$(bench_ratio "$w0" "$(median "${wall[3]}")")
echo "ratio imgport / (qemu-img + sha256sum): $r_chain"
echo "ratio imgport / (qemu-img alone):       $r_alone"
echo "ratio imgport / (qemu-img -W alone):    $r_w"
echo "outputs checked: qemu-img compare identical; imgport's sha256 = sha256sum of its output"
# Every run, not only the median, is held to the goals.
worst() { local m=0 a b; read -ra a <<< "${wall[0]}"; read -ra b <<< "${wall[$1]}"
  for k in "${!a[@]}"; do m=$(awk "BEGIN{r=${a[$k]}/${b[$k]}; print (r>$m)?r:$m}"); done; echo "$m"; }
goal() { if [ "$2" = 1 ]; then echo "goal $1: met"; else echo "goal $1: MISSED"; fi; }
wc=$(worst 1) wa=$(worst 2)
goal "wall <= 0.35 x (qemu-img + sha256sum), every run (worst $wc)" "$(awk "BEGIN{print ($wc <= 0.35)}")"
goal "no slower than qemu-img convert alone, every run (worst $wa)" "$(awk "BEGIN{print ($wa <= 1)}")"
rk=$(maxof "${rss[0]}")
goal "peak RSS <= 64 MiB ($(awk "BEGIN{printf \"%.1f\", $rk / 1024}") MiB)" "$((rk <= 65536))"
rm -f "$out".*
