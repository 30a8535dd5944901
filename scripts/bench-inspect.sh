#!/usr/bin/env bash
# Benchmark: `imgport inspect` against `qemu-img info` on the same 40 GiB container files,
# one run on one machine. Prints whole-process times, their ratio, and the bytes imgport read.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/make-testdata.sh
cargo build --release --quiet
bin=target/release/imgport
data=${IMGPORT_TESTDATA:-$root/testdata/cache}
command -v hyperfine >/dev/null || { apt-get install -y -qq hyperfine >/dev/null 2>&1 || true; }

printf '%-22s %12s %12s %8s %12s\n' image imgport_ms qemu_img_ms ratio bytes_read
for pair in "qcow2-40G.qcow2 qcow2" "big.qcow2 qcow2" "vhd-40G.vhd vpc" "big.vhd vpc"; do
  set -- $pair
  img=$data/$1 fmt=$2
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 3 --runs 30 --export-json /tmp/bench-inspect.json \
      "$bin inspect --json --no-guest $img" "qemu-img info -f $fmt --output=json $img" >/dev/null 2>&1 \
      || hyperfine -N --warmup 3 --runs 30 --export-json /tmp/bench-inspect.json \
      "$bin inspect --json $img" "qemu-img info -f $fmt --output=json $img" >/dev/null
    read -r ours theirs < <(python3 -c 'import json;r=json.load(open("/tmp/bench-inspect.json"))["results"];print(r[0]["median"]*1000, r[1]["median"]*1000)')
  else
    t() { local s e; s=$(date +%s%N); for _ in $(seq 30); do "$@" >/dev/null; done; e=$(date +%s%N); echo $(( (e - s) / 30000 )); }
    ours=$(t "$bin" inspect --json "$img"); theirs=$(t qemu-img info -f "$fmt" --output=json "$img")
  fi
  bytes=$("$bin" inspect --json "$img" | python3 -c 'import json,sys;print(json.load(sys.stdin)[0]["bytes_read"])')
  ratio=$(python3 -c "print(f'{$ours/$theirs:.2f}')")
  printf '%-22s %12.2f %12.2f %8s %12s\n' "$1" "$ours" "$theirs" "$ratio" "$bytes"
done
echo "goal: ratio <= 1.00 and bytes_read <= 1048576 for every 40 GiB container"
