# Helpers shared by the bench scripts (sourced, not run).
# shellcheck shell=bash disable=SC2034  # the sim_* globals are for the sourcing script

# bench_venv VENV PACKAGE...: a Python venv with PACKAGE installed from PyPI, made once; the
# `.ready` marker (the one tests/it/cloud/sdk.rs uses) says the install finished.
bench_venv() {
  local venv=$1; shift
  [ -e "$venv/.ready" ] && return 0
  echo "installing $* into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q "$@"
  : > "$venv/.ready"
}

# bench_sim_start BIN DIR SIM-ARG...: starts `BIN sim SIM-ARG...` in the background (stdout in
# DIR/sim.out) and waits for its endpoints. Sets sim_pid, sim_endpoint (ECS), sim_s3_endpoint,
# sim_key_id and sim_secret (the emulator's fixed test credentials). The caller stops it.
bench_sim_start() {
  local bin=$1 dir=$2; shift 2
  "$bin" sim "$@" > "$dir/sim.out" 2> "$dir/sim.err" &
  sim_pid=$!
  for _ in $(seq 100); do grep -q '^s3_endpoint:' "$dir/sim.out" 2>/dev/null && break; sleep 0.1; done
  sim_endpoint=$(sed -n 's/^endpoint: //p' "$dir/sim.out")
  sim_s3_endpoint=$(sed -n 's/^s3_endpoint: //p' "$dir/sim.out")
  sim_key_id=$(sed -n 's/^access_key_id: //p' "$dir/sim.out")
  sim_secret=$(sed -n 's/^access_key_secret: //p' "$dir/sim.out")
  [ -n "$sim_s3_endpoint" ] || { echo "imgport sim did not start" >&2; cat "$dir/sim.err" >&2; return 1; }
}

# bench_server_store FALLBACK NEED_MIB ON_DISK: sets server_store to a fresh directory under
# /dev/shm when it has NEED_MIB free and ON_DISK is 0, else to FALLBACK, and prints which.
# A RAM store keeps the clients from being timed against this VM's disk write-back (~250
# MB/s here), which a remote bucket would not add. The caller removes it
# (bench_server_store_cleanup).
bench_server_store() {
  local fallback=$1 need_mib=$2 on_disk=$3 free_mib
  free_mib=$(df -Pm /dev/shm 2>/dev/null | awk 'NR==2{print $4}')
  if [ "$on_disk" = 0 ] && [ "${free_mib:-0}" -gt "$need_mib" ]; then
    server_store=$(mktemp -d /dev/shm/imgport-bench.XXXXXX)
    echo "server store: RAM ($server_store)"
  else
    server_store=$fallback
    echo "server store: disk ($server_store)"
  fi
}
bench_server_store_cleanup() {
  case ${server_store:-} in /dev/shm/imgport-bench.*) rm -rf "$server_store" ;; esac
}

# bench_e2e_source CACHE CHUNKS: sets src to CACHE/e2e-CHUNKS.qcow2, made once: CHUNKS × 640 MiB
# virtual, each 640 MiB starting with 64 MiB of random data. While it builds, raw and src.tmp
# name its temporary files, for the caller's cleanup.
bench_e2e_source() {
  local cache=$1 chunks=$2 i
  src=$cache/e2e-$chunks.qcow2
  [ -f "$src" ] && return 0
  echo "building $src ($((chunks * 640)) MiB virtual, $((chunks * 64)) MiB random data)" >&2
  raw=$cache/e2e-$chunks.raw.tmp
  truncate -s "$((chunks * 640))M" "$raw"
  for i in $(seq 0 $((chunks - 1))); do
    dd if=/dev/urandom of="$raw" bs=1M count=64 iflag=fullblock seek=$((i * 640)) \
      conv=notrunc status=none
  done
  qemu-img convert -f raw -O qcow2 "$raw" "$src.tmp"
  rm -f "$raw"
  mv "$src.tmp" "$src"
}

# bench_ratio A B: A/B with three decimals.
bench_ratio() { awk "BEGIN{printf \"%.3f\", $1/$2}"; }
