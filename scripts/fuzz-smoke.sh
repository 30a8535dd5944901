#!/usr/bin/env bash
# A short run of every fuzz target (a few seconds each) for the test suite; scripts/fuzz.sh
# runs them for longer. Fails only when a target crashes, hangs or passes its memory limit.
set -euo pipefail
exec "$(dirname "$0")/fuzz.sh" "${FUZZ_SMOKE_SECONDS:-10}" "$@"
