#!/usr/bin/env bash
# Instructions per message of the typed producer and of raw pre-encoded bytes through rdkafka
# (the two sides of `cargo xtask bench`'s producer comparison): `cargo xtask producer-profile`
# (release build; the mock cluster and the local registry in the same process) under
# `valgrind --tool=callgrind`, each side run with SMALL and then LARGE messages after the same
# warm-up; the difference of the two totals over LARGE - SMALL is that side's instructions
# per message, with the process's start-up, the warm-up and the mock cluster's fixed costs
# cancelled out (the mock broker's work per message is counted: it is the same for both sides
# but for the typed side's `traceparent` header). Instruction counts repeat from run to run
# where timings on a shared machine do not. Leaves each run's callgrind.out in the run's
# directory for callgrind_annotate. Everything listens on 127.0.0.1 and ends with the script.
#
#   scripts/callgrind-producer.sh                  # release build, 2,000 and 12,000 messages
#
# Settings: SMALL (2000), LARGE (12000), CARGO_TARGET_DIR (target), XTASK_BIN (another xtask
# binary, e.g. one built from an earlier commit), OUT (the run's directory).
set -euo pipefail
cd "$(dirname "$0")/.."

SMALL=${SMALL:-2000}
LARGE=${LARGE:-12000}
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${XTASK_BIN:-}" ]; then
    cargo build --quiet --release -p xtask
    XTASK_BIN="$TARGET/release/xtask"
fi
dir=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/callgrind-producer.XXXXXX")}
mkdir -p "$dir"

total() {
    local side=$1 messages=$2 out="$dir/callgrind.$1.$2.out"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$XTASK_BIN" producer-profile --side "$side" --messages "$messages" \
        >"$dir/$side.$messages.log" 2>&1 ||
        { echo "producer-profile --side $side failed; see $dir/$side.$messages.log" >&2; exit 1; }
    awk '/^summary:/ { print $2 }' "$out"
}

declare -A per
for side in typed raw; do
    small=$(total "$side" "$SMALL")
    large=$(total "$side" "$LARGE")
    per[$side]=$(((large - small) / (LARGE - SMALL)))
    echo "$side: $small instructions with $SMALL messages, $large with $LARGE: ${per[$side]} per message"
done
awk -v t="${per[typed]}" -v r="${per[raw]}" \
    'BEGIN { printf "typed / raw instructions per message: %.2f (typed costs %d more)\n", t / r, t - r }'
echo "profiles: $dir (callgrind_annotate --inclusive=yes $dir/callgrind.typed.$LARGE.out)"
