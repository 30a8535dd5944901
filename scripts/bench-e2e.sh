#!/usr/bin/env bash
# End-to-end benchmark (issue 7): a 40 GiB virtual QCOW2 holding 4 GiB of random data, from
# the file to an ECS image that is `Available`, done twice on the same machine against the
# same servers, one run each:
#   imgport: `imgport import SRC --to vhd --json` (inspect, plan, convert+hash+upload in one
#            pass by multipart, ImportImage, poll until Available);
#   chain:   `qemu-img convert -O vpc` to a temporary VHD, `sha256sum` of it, `aws s3 cp`
#            (awscli from PyPI), then scripts/bench-e2e-chain.py (Alibaba's official Python
#            SDK: ImportImage, DescribeImages until Available).
# Both sides talk to ONE `imgport sim` process (the ECS emulator + its embedded S3 server on
# 127.0.0.1), so the emulated import time (--import-seconds, default 3 s = the default of
# `imgport import --sandbox`) and the poll interval (--poll, default 0.5 s) are the same.
#
# Goals: imgport wall ≤ 0.35 × the chain's, imgport peak RSS ≤ 96 MiB, client CPU ≤ 1.2 s per
# GiB uploaded (issue 25), 0 temporary bytes.
# "Temporary bytes" is the peak growth of the client's TMPDIR and working directory (sampled
# every 0.2 s); the disk writes the client process caused (getrusage ru_oublock, /usr/bin/time
# %O × 512 B) are printed as a cross-check, and imgport's resume journal (kept state, a few
# KiB) is counted apart.
#
# The source is cached in $BENCH_DIR (default $CARGO_TARGET_DIR/bench or target/bench):
# CHUNKS extents of 64 MiB of random data, one every 640 MiB (as
# scripts/bench-convert.sh), made as a sparse RAW that is deleted once converted to QCOW2.
# Everything a run writes (the sim's objects, the chain's VHD) is in a directory removed at exit.
# Last, imgport imports a copy of the source grown to 2040 GiB (VHD's largest size; same data,
# cached beside it) once more, untimed against the chain: its peak RSS must equal the small
# one's, since memory follows the parts in flight, not the disk size.
# The sim keeps its objects in RAM (/dev/shm, when it has room; --server-on-disk to keep them
# on disk), so neither side is timed against this VM's disk write-back, which a remote
# bucket would not add; the chain's temporary VHD stays on disk, where the chain puts it.
#
# usage: scripts/bench-e2e.sh [--chunks N] [--import-seconds S] [--poll S] [--server-on-disk]
#   (--chunks 64 = 40 GiB virtual, 4 GiB data; smaller N for a quick trial)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"
chunks=64
import_seconds=3
poll=0.5
server_on_disk=0
while [ $# -gt 0 ]; do
  case "$1" in
    --chunks) chunks=$2; shift 2 ;;
    --import-seconds) import_seconds=$2; shift 2 ;;
    --poll) poll=$2; shift 2 ;;
    --server-on-disk) server_on_disk=1; shift ;;
    *) echo "usage: $0 [--chunks N] [--import-seconds S] [--poll S] [--server-on-disk]" >&2; exit 2 ;;
  esac
done
target=${CARGO_TARGET_DIR:-$root/target}
cache=${BENCH_DIR:-$target/bench}
mkdir -p "$cache"

work='' raw='' sim_pid='' sampler_pid=''
cleanup() {
  [ -z "$sampler_pid" ] || kill "$sampler_pid" 2>/dev/null || true
  [ -z "$sim_pid" ] || kill "$sim_pid" 2>/dev/null || true
  [ -z "$sim_pid" ] || wait "$sim_pid" 2>/dev/null || true
  [ -z "$raw" ] || rm -f "$raw" "$src.tmp"
  [ -z "$work" ] || rm -rf "$work"
  bench_server_store_cleanup
}
trap cleanup EXIT

(cd "$root" && cargo build --release --quiet)
bin=$target/release/imgport
aws_venv=$cache/awscli-venv
bench_venv "$aws_venv" awscli
sdk_venv=${IMGPORT_CACHE:-$root/target/cache}/sdk-venv # the one tests/it/cloud/sdk.rs makes
bench_venv "$sdk_venv" alibabacloud_ecs20140526

virtual_mib=$((chunks * 640))
data_mib=$((chunks * 64))
disk_gib=$(((virtual_mib + 1023) / 1024))
bench_e2e_source "$cache" "$chunks"

work=$(mktemp -d "$cache/e2e-run.XXXXXX")
mkdir -p "$work"/{imgport-cwd,imgport-tmp,imgport-journal,chain-cwd,chain-tmp}
# One object at a time (each is removed once checked): twice the data leaves room.
bench_server_store "$work/state" $((data_mib * 2 + 1024)) "$server_on_disk"
bench_sim_start "$bin" "$work" --state "$server_store" --bucket bench \
  --import-seconds "$import_seconds"
export ALIBABA_CLOUD_ACCESS_KEY_ID=$sim_key_id ALIBABA_CLOUD_ACCESS_KEY_SECRET=$sim_secret
export AWS_ACCESS_KEY_ID=$sim_key_id AWS_SECRET_ACCESS_KEY=$sim_secret AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=$work/awsconfig AWS_SHARED_CREDENTIALS_FILE=/dev/null
printf '[default]\ns3 =\n  addressing_style = path\n' > "$AWS_CONFIG_FILE"
echo "servers: ECS $sim_endpoint, S3 $sim_s3_endpoint (imgport sim, pid $sim_pid," \
  "import time ${import_seconds} s, poll ${poll} s)"
echo "source: $src ($virtual_mib MiB virtual, $data_mib MiB data, $(du -h "$src" | cut -f1) on disk)"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

# timed NAME CMD...: one run under /usr/bin/time; "wall_s peak_rss_kib fs_output_blocks user_s
# sys_s" in $work/NAME.time, the output in NAME.out / NAME.err.
timed() {
  local name=$1; shift
  /usr/bin/time -f '%e %M %O %U %S' -o "$work/$name.time" "$@" > "$work/$name.out" 2> "$work/$name.err" \
    || { echo "$name failed:" >&2; cat "$work/$name.err" >&2; exit 1; }
}
tf() { awk -v f="$2" '{v=$f} END{print v}' "$work/$1.time"; } # tf NAME FIELD (1 wall 2 rss 3 blocks)
cpu() { awk '{u=$4; s=$5} END{printf "%.2f", u + s}' "$work/$1.time"; } # client CPU seconds
sim_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$sim_pid/stat"; }
allocated() { du -s --block-size=1 "$@" | awk '{s+=$1} END{printf "%.0f\n", s}'; }

# ---- imgport ----
cat "$src" > /dev/null
sim0=$(sim_cpu)
scratch=("$work/imgport-cwd" "$work/imgport-tmp")
base=$(allocated "${scratch[@]}")
touch "$work/marker"
(
  cd "$work/imgport-cwd"
  timed imgport env TMPDIR="$work/imgport-tmp" "$bin" import "$src" --region cn-hangzhou \
    --bucket bench --to vhd --ecs-endpoint "$sim_endpoint" --oss-endpoint "$sim_s3_endpoint" \
    --path-style --poll-interval "$poll" --journal "$work/imgport-journal" --json \
    --allow-no-os # the source is random data, no system disk
) &
run_pid=$!
(
  peak=0
  while kill -0 "$run_pid" 2>/dev/null; do
    now=$(allocated "${scratch[@]}")
    [ "$now" -le "$peak" ] || { peak=$now; echo "$peak" > "$work/scratch.peak"; }
    sleep 0.2
  done
) &
sampler_pid=$!
wait "$run_pid"
sim1=$(sim_cpu)
wait "$sampler_pid" || true
sampler_pid=''
peak=$(cat "$work/scratch.peak" 2>/dev/null || echo "$base")
imgport_temp=$((peak > base ? peak - base : 0))
big_files=$(find "${scratch[@]}" "$work/imgport-journal" -newer "$work/marker" -type f -size +1M | wc -l)
journal_bytes=$(allocated "$work/imgport-journal")
imgport_writes=$(($(tf imgport 3) * 512))
imgport_rss=$(tf imgport 2)

# imgport's JSON: status, the object's key, then the stage seconds.
{ read -r i_status; read -r key; read -r i_plan i_digest i_upload i_import i_wait i_total; } < <(
  python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
t = {s["stage"]: s["seconds"] for s in o["timings"]}
print(o["status"]); print(o["disks"][0]["key"])
print(" ".join("%.2f" % t.get(k, 0.0) for k in
  ("inspect and plan", "content digest", "upload disk 1", "ImportImage", "wait until Available",
   "total")))
' "$work/imgport.out")
[ "$i_status" = Available ] || { echo "imgport: image is $i_status" >&2; exit 1; }
i_wall=$(tf imgport 1)
object=$server_store/s3/bench/$key
object_bytes=$(stat -c %s "$object")
# Untimed check: the uploaded object holds the source's disk, then it is removed (disk space).
qemu-img compare -f vpc -F qcow2 "$object" "$src" > /dev/null \
  || { echo "imgport's uploaded VHD differs from the source" >&2; exit 1; }
rm -f "$object"

# ---- chain ----
cat "$src" > /dev/null
sim2=$(sim_cpu)
cd "$work/chain-cwd"
export TMPDIR=$work/chain-tmp
vhd=$work/chain-cwd/tmp.vhd
timed convert qemu-img convert -f qcow2 -O vpc -o force_size=on "$src" "$vhd"
chain_temp=$(allocated "$vhd")
timed sha256 sha256sum "$vhd"
timed upload "$aws_venv/bin/aws" --endpoint-url "$sim_s3_endpoint" s3 cp "$vhd" \
  s3://bench/chain/e2e.vhd --no-progress --only-show-errors
rm -f "$vhd"
timed sdk env SIM_ENDPOINT="${sim_endpoint#http://}" SIM_ACCESS_KEY_ID="$sim_key_id" \
  SIM_ACCESS_KEY_SECRET="$sim_secret" "$sdk_venv/bin/python" "$root/scripts/bench-e2e-chain.py" \
  bench chain/e2e.vhd "$disk_gib" "$poll" 600
sim3=$(sim_cpu)
cd "$root"
unset TMPDIR
c_convert=$(tf convert 1) c_sha=$(tf sha256 1) c_upload=$(tf upload 1) c_sdk=$(tf sdk 1)
read -r c_import c_wait < <(python3 -c '
import json, sys; o = json.load(open(sys.argv[1])); print(o["import_image_s"], o["wait_s"])
' "$work/sdk.out")
c_total=$(awk "BEGIN{print $c_convert + $c_sha + $c_upload + $c_sdk}")
chain_writes=0
for s in convert sha256 upload sdk; do chain_writes=$((chain_writes + $(tf "$s" 3) * 512)); done

# ---- memory as the disk grows: the same data in a 2040 GiB disk ----
big=$cache/e2e-$chunks-2040g.qcow2
if [ ! -f "$big" ]; then
  cp "$src" "$big.tmp" && qemu-img resize -q "$big.tmp" 2040G && mv "$big.tmp" "$big"
fi
cat "$big" > /dev/null
(
  cd "$work/imgport-cwd"
  timed imgport-big "$bin" import "$big" --region cn-hangzhou --bucket bench --to vhd \
    --ecs-endpoint "$sim_endpoint" --oss-endpoint "$sim_s3_endpoint" --path-style \
    --poll-interval "$poll" --journal "$work/imgport-journal" --json --allow-no-os
)
big_rss=$(tf imgport-big 2)
rm -rf "${server_store:?}/s3/bench/"*

# ---- report ----
row() { printf '%-46s %12s %12s\n' "$@"; }
f2() { awk "BEGIN{printf \"%.2f\", $1}"; }
mib() { awk "BEGIN{printf \"%.1f MiB\", $1 / 1048576}"; }
echo
row "stage (wall seconds)" imgport chain
row "inspect + plan" "$i_plan" -
row "content digest (imgport, during the upload)" "($i_digest)" -
row "convert (qemu-img convert -O vpc)" "in upload" "$c_convert"
row "sha256 (sha256sum)" "in upload" "$c_sha"
row "upload (imgport: convert+hash+upload, 1 pass)" "$i_upload" "$c_upload"
row "ImportImage call" "$i_import" "$(f2 "$c_import")"
row "wait until Available" "$i_wait" "$(f2 "$c_wait")"
row "process start/exit, SDK import, other" "$(f2 "$i_wall - $i_total")" \
  "$(f2 "$c_sdk - $c_import - $c_wait")"
row "total (process wall)" "$i_wall" "$(f2 "$c_total")"
echo
ratio=$(bench_ratio "$i_wall" "$c_total")
echo "ratio imgport / chain (wall): $ratio"
echo "peak RSS: imgport $(mib $((imgport_rss * 1024))); chain: qemu-img $(mib $(($(tf convert 2) * 1024))), sha256sum $(mib $(($(tf sha256 2) * 1024))), aws $(mib $(($(tf upload 2) * 1024))), python SDK $(mib $(($(tf sdk 2) * 1024)))"
echo "client CPU s: imgport $(cpu imgport); chain: qemu-img $(cpu convert), sha256sum $(cpu sha256), aws $(cpu upload), python SDK $(cpu sdk)"
echo "server CPU s (the imgport sim process, ECS + S3, same for both): imgport side $(f2 "$sim1 - $sim0"), chain side $(f2 "$sim3 - $sim2")"
echo "temporary bytes: imgport $imgport_temp (TMPDIR+cwd peak growth; $big_files new files > 1 MiB); chain $chain_temp ($(mib "$chain_temp"), the converted VHD)"
echo "disk writes by the client (ru_oublock): imgport $imgport_writes B (resume journal now $journal_bytes B); chain $chain_writes B ($(mib "$chain_writes"))"
echo "client CPU per GiB uploaded: imgport $(awk "BEGIN{printf \"%.2f\", $(cpu imgport) / ($object_bytes / 1073741824)}") s ($(mib "$object_bytes") object)"
echo "peak RSS, same data in a 2040 GiB disk: $(mib $((big_rss * 1024))) (40 GiB disk: $(mib $((imgport_rss * 1024))))"
echo "checked: imgport's object = source (qemu-img compare); both images Available"
goal() { if [ "$2" = 1 ]; then echo "goal $1: met"; else echo "goal $1: MISSED"; fi; }
goal "wall <= 0.35 x chain ($ratio)" "$(awk "BEGIN{print ($ratio <= 0.35)}")"
goal "peak RSS <= 96 MiB ($(mib $((imgport_rss * 1024))))" "$((imgport_rss <= 98304))"
cpu_gib=$(awk "BEGIN{printf \"%.2f\", $(cpu imgport) / ($object_bytes / 1073741824)}")
goal "client CPU <= 1.2 s per GiB uploaded ($cpu_gib s)" "$(awk "BEGIN{print ($cpu_gib <= 1.2)}")"
goal "peak RSS flat as the disk grows (2040 GiB: $(mib $((big_rss * 1024))), within 4 MiB)" \
  "$(( big_rss <= imgport_rss + 4096 ))"
goal "0 temp bytes ($imgport_temp B, $big_files big files, $imgport_writes B written)" \
  "$(( imgport_temp == 0 && big_files == 0 && imgport_writes <= 1048576 ))"
