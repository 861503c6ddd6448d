#!/usr/bin/env bash
# Run the atheris harnesses, each for BUDGET seconds (default 60).
#
#   fuzz/run.sh [BUDGET] [HARNESS.py ...]     # no harness named: every fuzz/fuzz_*.py
#
# Each harness starts from its own seeds (written by `HARNESS --seeds DIR`)
# in a fresh temporary corpus, with a fixed libFuzzer seed.  Exit status 0
# when no harness found anything; 1 when one did, its input kept in
# $FUZZ_ARTIFACTS (default: a temporary directory, printed) to replay with
# `.venv/bin/python fuzz/fuzz_NAME.py FILE`.  PYTHON overrides the venv's python.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
budget="${1:-60}"
shift $(( $# > 0 ? 1 : 0 ))
case "$budget" in
    ''|*[!0-9]*) echo "usage: $0 [BUDGET_SECONDS] [HARNESS.py ...]" >&2; exit 2 ;;
esac
python="${PYTHON:-$here/../.venv/bin/python}"
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
    harnesses=("$here"/fuzz_*.py)
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/ivr-fuzz.XXXXXX")"
artifacts="${FUZZ_ARTIFACTS:-$work/artifacts}"
mkdir -p "$artifacts"

status=0
for harness in "${harnesses[@]}"; do
    harness="$(realpath "$harness")"   # the fuzzing runs from $work
    name="$(basename "$harness" .py)"
    corpus="$work/corpus-$name"
    "$python" "$harness" --seeds "$corpus"
    echo "== $name: ${budget}s"
    # libFuzzer writes its crash-* files to the current directory unless told:
    # run from $work so nothing lands in the work tree.
    if ! (cd "$work" && "$python" "$harness" "$corpus" \
            -max_total_time="$budget" -seed=1 -max_len=4096 -timeout=10 \
            -rss_limit_mb=2048 -artifact_prefix="$artifacts/$name-"); then
        echo "!! $name found a problem: $(ls "$artifacts"/"$name"-* 2>/dev/null | tr '\n' ' ')"
        status=1
    fi
done

if [ "$status" -eq 0 ] && [ -z "${FUZZ_ARTIFACTS:-}" ]; then
    rm -rf "$work"
else
    echo "kept: $work"
fi
exit "$status"
