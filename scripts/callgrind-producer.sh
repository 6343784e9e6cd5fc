#!/usr/bin/env bash
# Instructions per message of the typed producer and of raw pre-encoded bytes through rdkafka
# (the two sides of `cargo xtask bench`'s producer comparison): `cargo xtask producer-profile`
# (release build; the mock cluster and the local registry in the same process) under
# `valgrind --tool=callgrind`, each side run with SMALL and then LARGE messages after the same
# warm-up, its counts zeroed when the counted messages start (`--zero-before` the harness's
# `counting_starts`: building the orders, and the raw side's encoding them beforehand, are not
# counted); the difference of the two totals over LARGE - SMALL is that side's instructions
# per message of the send alone, with the process's shutdown and the mock cluster's fixed
# costs cancelled out (the mock broker's work per message is counted: it is the same for both
# sides but for the typed side's `traceparent` header). That total varies by a few hundred
# instructions per message from run to run (how librdkafka's threads batch the records
# depends on timing); the sending thread's share, printed beside it, does not. Instruction counts repeat from run to run
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
        --zero-before='xtask::bench::profile::counting_starts' \
        "$XTASK_BIN" producer-profile --side "$side" --messages "$messages" \
        >"$dir/$side.$messages.log" 2>&1 ||
        { echo "producer-profile --side $side failed; see $dir/$side.$messages.log" >&2; exit 1; }
    awk '/^summary:/ { print $2 }' "$out"
}

# What the sending thread did inside the harness's send loop (`send_typed` / `send_raw`),
# inclusive: the caller's share, which does not depend on how librdkafka batched the records.
caller() {
    callgrind_annotate --inclusive=yes "$dir/callgrind.$1.$2.out" |
        awk -v f="xtask::bench::producer::send_$1::{{closure}}" \
            '!found && $0 ~ /[?][?][?]:/ && index($0, f " [") { gsub(",", "", $1); print $1; found = 1 }'
}

declare -A per on_caller
for side in typed raw; do
    small=$(total "$side" "$SMALL")
    large=$(total "$side" "$LARGE")
    per[$side]=$(((large - small) / (LARGE - SMALL)))
    on_caller[$side]=$((($(caller "$side" "$LARGE") - $(caller "$side" "$SMALL")) / (LARGE - SMALL)))
    echo "$side: $small instructions with $SMALL messages, $large with $LARGE: ${per[$side]} per message, ${on_caller[$side]} of them on the sending thread"
done
awk -v t="${per[typed]}" -v r="${per[raw]}" \
    'BEGIN { printf "typed / raw instructions per message: %.2f (typed costs %d more)\n", t / r, t - r }'
awk -v t="${on_caller[typed]}" -v r="${on_caller[raw]}" \
    'BEGIN { printf "on the sending thread: %.2f (typed costs %d more)\n", t / r, t - r }'
echo "profiles: $dir (callgrind_annotate --inclusive=yes $dir/callgrind.typed.$LARGE.out)"
