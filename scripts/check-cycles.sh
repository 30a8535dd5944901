#!/usr/bin/env bash
# Checks that no two files of a crate depend on each other, directly or around a loop: builds
# each crate's file graph from its `crate::`/`super::`/`self::` paths (a file depends on the
# file defining the module or item it names) and prints every cycle. Exits 1 when there is one.
# A child module's use of its parent's definitions is not counted unless `--strict` is given
# (see scripts/check-cycles.py).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/check-cycles.py "$@" crates/*/src/lib.rs src/lib.rs src/main.rs
