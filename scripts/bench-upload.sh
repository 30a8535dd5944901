#!/usr/bin/env bash
# Benchmarks `imgport upload` against `aws s3 cp` (awscli from PyPI, in a venv) on the same
# machine and the same server: the embedded S3 server of `imgport sim` (s3s + its own
# file-system backend, src/sim/s3/) on 127.0.0.1. One run each, warm page cache; wall time
# and client CPU seconds from /usr/bin/time. The server keeps its objects in RAM (a
# directory under /dev/shm, when it has room) so that neither client is timed against this
# VM's disk write-back: on the disk both clients wait on ~250 MB/s of writes, which a real
# remote bucket would not impose (--server-on-disk measures that case instead). Then converting and uploading in one pass
# against uploading the already-converted file.
#
# Targets (issue 5): imgport wall ≤ 0.67 × aws, imgport CPU-s/GiB ≤ 0.5 × aws's;
# convert+upload ≤ 1.1 × upload of the converted file. It also prints what signing the part
# payloads costs against `--unsigned-payload`.
#
# usage: scripts/bench-upload.sh [--size-mib N] [--server-on-disk]   (default 1024 MiB)
# Uses target/release/imgport (build it first: cargo build --release), or $IMGPORT_BIN; the
# server runs from $IMGPORT_SIM_BIN (default: the same binary). Files in $BENCH_DIR
# (default target/bench-upload).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/bench-lib.sh
. "$root/scripts/bench-lib.sh"
size_mib=1024
server_on_disk=0
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mib) size_mib=$2; shift 2 ;;
    --server-on-disk) server_on_disk=1; shift ;;
    *) echo "usage: $0 [--size-mib N] [--server-on-disk]" >&2; exit 2 ;;
  esac
done
bin=${IMGPORT_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/imgport}
[ -x "$bin" ] || { echo "no $bin: run cargo build --release first" >&2; exit 1; }
dir=${BENCH_DIR:-$root/target/bench-upload}
mkdir -p "$dir"
venv=$dir/venv
bench_venv "$venv" awscli
src=$dir/rnd.bin
if [ ! -f "$src" ] || [ "$(stat -c %s "$src")" != $((size_mib << 20)) ]; then
  head -c $((size_mib << 20)) /dev/urandom > "$src"
fi

# The server: imgport sim prints its endpoints; it is stopped by PID and its store removed
# at exit. At most two objects are kept at once (settle removes them), so 3 × the size fits.
bench_server_store "$dir/state" $((size_mib * 3)) "$server_on_disk"
state=$server_store
[ "$state" != "$dir/state" ] || rm -rf "$state"
trap 'kill "${sim_pid:-}" 2>/dev/null || true; bench_server_store_cleanup' EXIT
bench_sim_start "${IMGPORT_SIM_BIN:-$bin}" "$dir" --state "$state" --bucket bench \
  --s3-unsigned-payload
endpoint=$sim_s3_endpoint key_id=$sim_key_id secret=$sim_secret
echo "server: $endpoint (imgport sim, pid $sim_pid)"

export AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=$dir/awsconfig AWS_SHARED_CREDENTIALS_FILE=/dev/null
: > "$AWS_CONFIG_FILE"
export ALIBABA_CLOUD_ACCESS_KEY_ID=$key_id ALIBABA_CLOUD_ACCESS_KEY_SECRET=$secret

# settle: removes the objects uploaded so far and flushes dirty pages, so no run pays for the
# write-back of an earlier run's gigabyte (the 4th upload in a row was throttled by it).
settle() {
  find "$state/s3/bench" -type f -delete 2>/dev/null || true
  sync
}

# measure NAME CMD...: one run from a settled page cache; prints and records "wall user sys".
measure() {
  local name=$1; shift
  settle
  /usr/bin/time -f "%e %U %S" -o "$dir/$name.time" "$@" > "$dir/$name.out" 2> "$dir/$name.err" \
    || { echo "$name failed:" >&2; cat "$dir/$name.err" >&2; exit 1; }
  read -r wall user sys < "$dir/$name.time"
  printf '%-26s wall %7.2f s   cpu %6.2f s (user %.2f sys %.2f)\n' \
    "$name" "$wall" "$(awk "BEGIN{print $user+$sys}")" "$user" "$sys"
}
val() { awk '{print $1}' "$dir/$1.time"; }
cpu() { awk '{print $2+$3}' "$dir/$1.time"; }
ratio() { bench_ratio "$@"; }

cat "$src" > /dev/null
gib=$(awk "BEGIN{print $size_mib/1024}")
echo "file: $src ($size_mib MiB)"
measure aws-s3-cp "$venv/bin/aws" --endpoint-url "$endpoint" s3 cp "$src" s3://bench/aws.bin \
  --no-progress --only-show-errors
measure imgport-upload "$bin" upload "$src" --bucket bench --key imgport.bin \
  --endpoint "$endpoint" --path-style --region us-east-1 --journal "$dir/journal" --json
cmp -s "$src" "$state/s3/bench/imgport.bin" || { echo "uploaded object differs" >&2; exit 1; }
wall_ratio=$(ratio "$(val imgport-upload)" "$(val aws-s3-cp)")
cpu_aws=$(awk "BEGIN{print $(cpu aws-s3-cp)/$gib}")
cpu_imgport=$(awk "BEGIN{print $(cpu imgport-upload)/$gib}")
echo "aws CPU-s/GiB $cpu_aws, imgport CPU-s/GiB $cpu_imgport"
echo "ratio wall imgport/aws: $wall_ratio (target <= 0.67)"
echo "ratio CPU  imgport/aws: $(ratio "$cpu_imgport" "$cpu_aws") (target <= 0.5)"

# What signing each part's payload costs (issue 21: OSS wants the body's SHA-256 in
# x-amz-content-sha256): the same upload with UNSIGNED-PAYLOAD.
measure imgport-unsigned "$bin" upload "$src" --bucket bench --key unsigned.bin \
  --endpoint "$endpoint" --path-style --region us-east-1 --journal "$dir/journal" --json \
  --unsigned-payload
cpu_unsigned=$(awk "BEGIN{print $(cpu imgport-unsigned)/$gib}")
echo "signed part payloads: CPU-s/GiB $cpu_imgport vs $cpu_unsigned unsigned" \
  "(+$(awk "BEGIN{printf \"%.2f\", $cpu_imgport-$cpu_unsigned}") s/GiB)," \
  "wall ratio signed/unsigned $(ratio "$(val imgport-upload)" "$(val imgport-unsigned)")"

# Convert + upload in one pass vs upload of the already-converted file. The source is a
# sparse disk: the random file's data spread over twice its size as a QCOW2 (qemu-img), or
# as RAW when this build's QCOW2 reader cannot open it.
disk=$dir/disk.raw
if [ ! -f "$disk" ]; then
  truncate -s $((size_mib * 2))M "$disk.tmp"
  dd if="$src" of="$disk.tmp" bs=1M seek=0 conv=notrunc status=none
  mv "$disk.tmp" "$disk"
fi
conv_src=$dir/disk.qcow2
[ -f "$conv_src" ] || qemu-img convert -O qcow2 "$disk" "$conv_src"
if ! "$bin" convert "$conv_src" "$dir/converted.vhd" --to vhd --no-content-digest > /dev/null 2>&1; then
  echo "(this build cannot read QCOW2: converting the RAW disk instead)"
  conv_src=$disk
  "$bin" convert "$conv_src" "$dir/converted.vhd" --to vhd --no-content-digest > /dev/null
fi
cat "$dir/converted.vhd" "$conv_src" > /dev/null
measure upload-converted "$bin" upload "$dir/converted.vhd" --bucket bench --key conv1.vhd \
  --endpoint "$endpoint" --path-style --region us-east-1 --journal "$dir/journal" --json
measure convert-and-upload "$bin" upload "$conv_src" --to vhd --bucket bench --key conv2.vhd \
  --endpoint "$endpoint" --path-style --region us-east-1 --journal "$dir/journal" --json
cmp -s "$dir/converted.vhd" "$state/s3/bench/conv2.vhd" || { echo "converted object differs" >&2; exit 1; }
echo "ratio convert+upload / upload of converted: $(ratio "$(val convert-and-upload)" "$(val upload-converted)") (target <= 1.1)"
