#!/usr/bin/env bash
# Uploads over long links (issue 25, point 6): one `imgport import` of the same source with 0,
# 50 and 150 ms of round-trip time added between the client and the S3 server, side by side:
# the upload stage's rate, its ratio to the zero-latency rate, and the parts in flight the
# upload chose from the measured rate (within the plan's cap: --concurrency and the part-buffer
# memory budget), and the client's peak RSS. Goals: at 50 and 150 ms, at least 0.90 of the
# zero-latency rate; peak RSS at most 96 MiB with the defaults.
#
# The link: `imgport sim --wan-rtt-ms` puts a delaying TCP proxy in front of its S3 server
# (crates/sim/src/wan.rs): every byte is delivered half a round trip after it was written, in
# both directions, and each connection has a window of --window-kib bytes that comes free half
# a round trip after delivery, so one connection moves at most window/RTT. The zero row goes
# through the same proxy without delay (the proxy's CPU is in every row); a "direct" row
# without the proxy is printed for reference. `tc netem` is not used: it needs the sch_netem
# module, which many CI machines and containers lack, and on the shared loopback it would slow
# every other process using 127.0.0.1.
#
# On a 2-core machine the zero-latency rate is CPU-bound (convert + SHA-256 + per-part SHA-256 and
# CRC-64 in the client, and the emulator's own checks, on the same cores).
#
# The source is cached in $BENCH_DIR (default $CARGO_TARGET_DIR/bench or target/bench): a
# QCOW2 with CHUNKS extents of 64 MiB of random data, one every 640 MiB, as
# scripts/bench-e2e.sh makes it (same file name, so the two share it). The server keeps its
# objects in RAM (/dev/shm when it has room), each removed after its run.
#
# usage: scripts/bench-wan.sh [--chunks N] [--rtts "0 50 150"] [--concurrency N]
#                             [--part-size SIZE] [--part-memory SIZE] [--window-kib K] [--to FORMAT]
#   (--chunks 24 = 1.5 GiB of data, the default)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"
chunks=24
rtts="0 50 150"
concurrency=''
part_size=''
part_memory=''
window_kib=4096
to=vhd
while [ $# -gt 0 ]; do
  case "$1" in
    --chunks) chunks=$2; shift 2 ;;
    --rtts) rtts=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --part-size) part_size=$2; shift 2 ;;
    --part-memory) part_memory=$2; shift 2 ;;
    --window-kib) window_kib=$2; shift 2 ;;
    --to) to=$2; shift 2 ;;
    *) echo "usage: $0 [--chunks N] [--rtts \"0 50 150\"] [--concurrency N] [--part-size SIZE] [--part-memory SIZE] [--window-kib K] [--to FORMAT]" >&2; exit 2 ;;
  esac
done
target=${CARGO_TARGET_DIR:-$root/target}
cache=${BENCH_DIR:-$target/bench}
mkdir -p "$cache"

work='' raw='' sim_pid=''
stop_sim() {
  [ -z "$sim_pid" ] || kill "$sim_pid" 2>/dev/null || true
  [ -z "$sim_pid" ] || wait "$sim_pid" 2>/dev/null || true
  sim_pid=''
}
cleanup() {
  stop_sim
  [ -z "$raw" ] || rm -f "$raw" "$src.tmp"
  [ -z "$work" ] || rm -rf "$work"
  bench_server_store_cleanup
}
trap cleanup EXIT

if [ -z "${IMGPORT_BIN:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
fi
bin=${IMGPORT_BIN:-$target/release/imgport}

virtual_mib=$((chunks * 640))
data_mib=$((chunks * 64))
bench_e2e_source "$cache" "$chunks"

work=$(mktemp -d "$cache/wan-run.XXXXXX")
# One object at a time, removed after its run.
bench_server_store "$work/state" $((data_mib * 2 + 1024)) 0
echo "source: $src ($virtual_mib MiB virtual, $data_mib MiB data), --to $to"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "link: proxy window ${window_kib} KiB per connection and direction"

# run NAME RTT_MS|direct: one import against a fresh emulator; prints a result line into
# $work/results: name rtt upload_s bytes MB/s chosen start max changes median_part_s.
run() {
  local name=$1 rtt=$2 wan=()
  [ "$rtt" = direct ] || wan=(--wan-rtt-ms "$rtt" --wan-window-kib "$window_kib")
  rm -rf "${server_store:?}/s3" "$server_store/ecs-state.json"
  bench_sim_start "$bin" "$work" --state "$server_store" --bucket bench --import-seconds 0.5 \
    "${wan[@]}"
  local flags=()
  [ -z "$concurrency" ] || flags+=(--concurrency "$concurrency")
  [ -z "$part_size" ] || flags+=(--part-size "$part_size")
  [ -z "$part_memory" ] || flags+=(--part-memory "$part_memory")
  cat "$src" > /dev/null
  ALIBABA_CLOUD_ACCESS_KEY_ID=$sim_key_id ALIBABA_CLOUD_ACCESS_KEY_SECRET=$sim_secret \
    /usr/bin/time -f %M -o "$work/$name.rss" "$bin" -v import "$src" --region cn-hangzhou --bucket bench --to "$to" --name "wan-$name" \
    --ecs-endpoint "$sim_endpoint" --oss-endpoint "$sim_s3_endpoint" --path-style \
    --poll-interval 0.2 --journal "$work/journal" --no-dedupe --allow-no-os --json \
    "${flags[@]}" > "$work/$name.out" 2> "$work/$name.err" \
    || { echo "import $name failed:" >&2; tail -20 "$work/$name.err" >&2; exit 1; }
  stop_sim
  python3 - "$work/$name.out" "$name" "$rtt" "$work/$name.rss" >> "$work/results" <<'EOF'
import json, sys
o = json.load(open(sys.argv[1]))
rss = int(open(sys.argv[4]).read().split()[-1]) / 1024
assert o["status"] == "Available", o["status"]
d = o["disks"][0]
t = {s["stage"]: s["seconds"] for s in o["timings"]}
up = t["upload disk 1"]
f = d["in_flight"]
changes = "-".join([str(f["start"])] + [str(c["to"]) for c in f["changes"]])
print(sys.argv[2], sys.argv[3], "%.2f" % up, d["size"], "%.1f" % (d["size"] / up / 1e6),
      f["chosen"], f["start"], f["max"], changes, "%.3f" % f["part_seconds_median"],
      "%.1f" % rss)
EOF
}

: > "$work/results"
run direct direct
for rtt in $rtts; do run "rtt$rtt" "$rtt"; done

echo
printf '%-14s %10s %10s %8s %7s %5s %7s %9s  %s\n' "added RTT" "upload s" "MB/s" "vs 0 ms" \
  "chosen" "cap" "part s" "RSS MiB" "parts in flight (start-changes)"
zero=$(awk '$1 == "rtt0" {print $5}' "$work/results")
while read -r name rtt up _bytes rate chosen _start max changes median rss; do
  label="$rtt ms"; [ "$rtt" = direct ] && label="none (direct)"
  ratio=-; [ -n "$zero" ] && ratio=$(bench_ratio "$rate" "$zero")
  printf '%-14s %10s %10s %8s %7s %5s %7s %9s  %s\n' "$label" "$up" "$rate" "$ratio" "$chosen" \
    "$max" "$median" "$rss" "$changes"
done < "$work/results"
echo
echo "rates are the object's bytes over the 'upload disk 1' stage (convert+hash+upload, one pass)"
if [ -n "$zero" ]; then
  for rtt in $rtts; do
    [ "$rtt" = 0 ] && continue
    r=$(awk -v n="rtt$rtt" '$1 == n {print $5}' "$work/results")
    ratio=$(bench_ratio "$r" "$zero")
    if awk "BEGIN{exit !($ratio >= 0.90)}"; then m=met; else m=MISSED; fi
    echo "goal ${rtt} ms >= 0.90 x zero-latency rate ($ratio): $m"
  done
fi
peak=$(awk '{if ($11 > m) m = $11} END {print m}' "$work/results")
if [ -z "$concurrency$part_size$part_memory" ]; then
  if awk "BEGIN{exit !($peak <= 96)}"; then m=met; else m=MISSED; fi
  echo "goal peak RSS <= 96 MiB with the defaults ($peak MiB at most): $m"
fi
