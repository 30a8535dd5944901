#!/usr/bin/env bash
# Checks that comments and docs cite only what the repository holds:
#  1. no citation of files kept outside it (the specification notes the project was started
#     from: `cloud-api.md`, `performance-limits.md`, `../shared/…`, "seed 003", "reference §2.3");
#  2. every `*.md` file named exists in the repository (`docs/X.md`, `README.md`, …);
#  3. every `docs/X.md §Section` names a heading of that file.
# Prints each offending line as file:line: text and exits 1 when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

# The files that carry comments and docs (tracked, or new and not ignored); `crates` holds
# the workspace's member crates once `src/<module>` moves there.
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- \
    src crates tests scripts fuzz/src fuzz/fuzz_targets 'fuzz/*.sh' 'fuzz/*.py' README.md docs |
    grep -E '\.(rs|sh|py|md|toml)$' | sort -u)
# Files checked by hand (none today); an extended regex of `file:` prefixes.
exempt='^$'

bad=0
report() { # <why> : lines on stdin
    local why=$1 line
    while IFS= read -r line; do
        printf '%s\n    %s\n' "$line" "$why"
        bad=1
    done
}

# 1. Names of notes that live outside the repository.
outside='cloud-api\.md|performance-limits|image-formats-and-inspection|\.\./shared/|shared/(reference|seeds)/|reference/[A-Za-z-]+\.md|\b[Ss]eeds? 0[0-9]{2}\b|\breference §'
report "cites a file outside the repository; cite docs/ or a public spec instead" < <(
    grep -nHE "$outside" "${files[@]}" | grep -vE "$exempt" | grep -v '^scripts/check-citations\.sh:' || true)

# 2. Every named *.md file exists (a leading / or ./ is relative to the repository root).
while IFS= read -r hit; do
    loc=${hit%%:*}; rest=${hit#*:}; lineno=${rest%%:*}; name=${rest#*:}
    path=${name#./}; path=${path#/}
    if [[ $path == */* ]]; then
        [[ -f $path ]] && continue
    else
        [[ -f $path || -f docs/$path || -f $(dirname "$loc")/$path ]] && continue
    fi
    report "names a .md file the repository does not hold" <<<"$loc:$lineno: $name"
done < <(grep -noHE '[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b' "${files[@]}" |
    grep -vE "$exempt" | grep -v '^scripts/check-citations\.sh:' || true)

# 3. Every docs/X.md §Section names a heading (## Section) of docs/X.md.
while IFS= read -r hit; do
    loc=${hit%%:*}; rest=${hit#*:}; lineno=${rest%%:*}; cite=${rest#*:}
    doc=${cite%% *}; section=${cite##*§}
    [[ -f $doc ]] || continue # reported by 2.
    grep -qE "^#+ ${section}\$" "$doc" && continue
    report "names a section $doc does not have" <<<"$loc:$lineno: $cite"
done < <(grep -noHE 'docs/[A-Za-z0-9_-]+\.md §[A-Za-z0-9-]+' "${files[@]}" |
    grep -v '^scripts/check-citations\.sh:' || true)

if [[ $bad != 0 ]]; then
    echo "check-citations: failed" >&2
    exit 1
fi
echo "check-citations: ok (${#files[@]} files)"
