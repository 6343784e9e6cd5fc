#!/usr/bin/env bash
# Instructions per order of fulfillment-service: the local stack (mock cluster, Schema
# Registry), ORDERS orders preloaded by order-producer, then fulfillment-service under
# `valgrind --tool=callgrind` until it has consumed every order and written its pick list and
# two statuses (its /metrics says so), then SIGTERM. Instruction counts are repeatable where
# timings are not (a shared machine). Prints the total, the instructions per order and the
# top functions (inclusive), and leaves callgrind.out in the run's directory for
# callgrind_annotate. Everything listens on 127.0.0.1 and ends with the script.
#
#   scripts/callgrind-fulfillment.sh                  # release builds, 5,000 orders
#   ORDERS=1000 scripts/callgrind-fulfillment.sh
#
# Settings: ORDERS (5000), PROFILE (release), CARGO_TARGET_DIR (target), FULFILLMENT_BIN
# (another fulfillment-service binary, e.g. one built from an earlier commit), TRANSACTIONAL
# (1: fulfillment with a transactional.id, exactly-once mode), OUT (the run's directory),
# STATISTICS_MS (fulfillment's `statistics.interval.ms`; 0 leaves librdkafka's statistics out,
# whose emissions, about 4.7 M instructions each, make the count depend on how long the run
# takes), BUILD (0: build nothing, use the binaries already in BIN_DIR), BIN_DIR (where
# xtask, order-producer and fulfillment-service are; $CARGO_TARGET_DIR/$PROFILE).
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS=${ORDERS:-5000}
PROFILE=${PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-target}
bin=${BIN_DIR:-$TARGET/$PROFILE}
profile_flag=()
[ "$PROFILE" = release ] && profile_flag=(--release)
if [ "${BUILD:-1}" != 0 ]; then
    cargo build --quiet "${profile_flag[@]}" -p order-producer -p fulfillment-service
    # The local stack from an xtask of the same profile (one build of the workspace, not two).
    cargo build --quiet "${profile_flag[@]}" -p xtask
fi

dir=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/callgrind.XXXXXX")}
mkdir -p "$dir"
pids=()
stop() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT

"$bin/xtask" stack --properties-out "$dir/client.properties" >"$dir/stack.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do [ -s "$dir/client.properties" ] && break; sleep 0.1; done
[ -s "$dir/client.properties" ] || { echo "the local stack did not start; see $dir/stack.log" >&2; exit 1; }
config="$dir/client.properties"
cp "$config" "$dir/fulfillment.properties"
if [ "${TRANSACTIONAL:-0}" = 1 ]; then
    echo "transactional.id=fulfillment-callgrind" >>"$dir/fulfillment.properties"
fi
if [ -n "${STATISTICS_MS:-}" ]; then
    echo "statistics.interval.ms=$STATISTICS_MS" >>"$dir/fulfillment.properties"
fi
config="$dir/fulfillment.properties"

"$bin/order-producer" --config "$dir/client.properties" --rate 1000000 --count "$ORDERS" \
    --seed 7 2>"$dir/order-producer.log" >/dev/null

port=$((20000 + RANDOM % 20000))
valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
    "${FULFILLMENT_BIN:-$bin/fulfillment-service}" --config "$config" \
    --listen "127.0.0.1:$port" --group "callgrind-$port" 2>"$dir/fulfillment.log" >/dev/null &
fulfillment=$!; pids+=("$fulfillment")

metric() {
    curl -sf "http://127.0.0.1:$port/metrics" 2>/dev/null |
        awk -v name="$1" '$1 == name { print $2 }' || true
}
started=$(date +%s)
while :; do
    consumed=$(metric fulfillment_orders_consumed_total)
    picklists=$(metric fulfillment_picklists_produced_total)
    statuses=$(metric fulfillment_statuses_produced_total)
    if [ "${consumed:-0}" -ge "$ORDERS" ] && [ "${picklists:-0}" -ge "$ORDERS" ] &&
        [ "${statuses:-0}" -ge $((2 * ORDERS)) ]; then
        break
    fi
    if ! kill -0 "$fulfillment" 2>/dev/null; then
        echo "fulfillment-service ended early; see $dir/fulfillment.log" >&2
        exit 1
    fi
    if [ $(($(date +%s) - started)) -gt 900 ]; then
        echo "not drained in 900 s (consumed ${consumed:-0}); see $dir/fulfillment.log" >&2
        exit 1
    fi
    sleep 1
done
kill -TERM "$fulfillment"
wait "$fulfillment" || true

total=$(awk '/^summary:/ { print $2 }' "$dir/callgrind.out")
echo "fulfillment-service, $ORDERS orders (each: a pick list and two statuses): $total instructions, $((total / ORDERS)) per order"
callgrind_annotate --inclusive=yes "$dir/callgrind.out" 2>/dev/null | sed -n '1,60p' >"$dir/top.txt" || true
echo "profile: $dir/callgrind.out (top functions: $dir/top.txt)"
