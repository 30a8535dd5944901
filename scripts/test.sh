#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, builds the cached test
# images, checks formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# A one-off build gains nothing from incremental state, which would take gigabytes of disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
df -h . "${TMPDIR:-/tmp}"
scripts/install-deps.sh
scripts/make-testdata.sh
cargo fmt --check
scripts/check-citations.sh
scripts/check-cycles.sh --strict
cargo clippy --workspace --all-targets --locked -- -D warnings
scripts/check-layers.sh
cargo test --workspace --all-targets --locked
scripts/fuzz-smoke.sh
