#!/usr/bin/env bash
# The main job on a fresh machine, as README.md gives it: builds imgport while the Debian test
# disk is made (debootstrap waits on the network, the compiler on the CPU, so the two overlap),
# then imports that disk into the embedded sandbox, ending with an `Available` image. It builds
# the dev profile (dependencies optimised, see Cargo.toml), which the test command shares and
# which builds in a fraction of the release profile's time; `cargo build --release` is for use.
# Extra arguments go to `imgport import` (e.g. `--json`, `-v`).
set -euo pipefail
cd "$(dirname "$0")/.."
disk=${IMGPORT_TESTDATA:-testdata/cache}/guest/debian-gpt.qcow2

scripts/make-testdata.sh guest &
data=$!
if ! cargo build --locked; then
  kill "$data" 2>/dev/null || true
  exit 1
fi
wait "$data"
exec "${CARGO_TARGET_DIR:-target}/debug/imgport" import "$disk" \
  --region cn-hangzhou --bucket sandbox --sandbox "$@"
