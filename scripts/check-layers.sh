#!/usr/bin/env bash
# Checks the workspace's layering that Cargo alone does not: no library crate depends (even
# through another) on the command-line crates (clap, indicatif) or on the emulator
# (imgport-sim), and each crate depends only on the crates below it in the data flow
# (docs/DESIGN.md). Prints each offending arrow and exits 1 when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each crate and the workspace crates it may depend on: the table in docs/DESIGN.md.
declare -A allowed=()
while IFS='|' read -r crate deps; do
    allowed[$crate]=$deps
done < <(awk -F'|' '/^\| imgport-/ {
    gsub(/ /, "", $2); gsub(/,/, " ", $3); gsub(/^ +| +$/, "", $3); print $2 "|" $3 }' docs/DESIGN.md)
if [ "${#allowed[@]}" = 0 ]; then
    echo "check-layers: no crate table found in docs/DESIGN.md"
    exit 1
fi
forbidden_everywhere="clap indicatif imgport-sim"

bad=0
members=$(cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json,sys; print("\n".join(p["name"] for p in json.load(sys.stdin)["packages"]))')
for crate in $members; do
    [ "$crate" = imgport ] && continue
    if [ -z "${allowed[$crate]+set}" ]; then
        echo "$crate: not in the crate table of docs/DESIGN.md; say which crates it may depend on"
        bad=1
        continue
    fi
    deps=$(cargo tree -p "$crate" -e normal --prefix none |
        awk '{print $1}' | sort -u)
    for d in $deps; do
        [ "$d" = "$crate" ] && continue
        case " $forbidden_everywhere " in *" $d "*)
            if [ "$crate" != imgport-sim ] || [ "$d" != imgport-sim ]; then
                echo "$crate -> $d: no library crate may depend on it"
                bad=1
            fi
            continue ;;
        esac
        case "$d" in imgport-*)
            case " ${allowed[$crate]} " in *" $d "*) ;; *)
                echo "$crate -> $d: against the data flow (docs/DESIGN.md)"
                bad=1 ;;
            esac ;;
        esac
    done
done
[ "$bad" = 0 ] && echo "check-layers: ok"
exit "$bad"
